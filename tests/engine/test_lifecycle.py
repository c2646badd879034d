"""An index's lifecycle on real nodes of both engines: the model bound to its index, new
indices behind an alias (verified, swapped atomically, old ones retired, assets following),
a concrete index replaced by the alias of its name, deletes that stick in every mode."""

from __future__ import annotations

import json
import uuid

import pytest

from indexing.binding import model_binding, short_hash
from indexing.engine import as_engine
from indexing.registry import engine_spec
from tests.cli_run import one_line_error, run
from tests.engines import (
    each_engine,  # noqa: F401  (every test here runs on both engines)
    remove_prefixed,
)

MODES = ("hybrid", "sparse", "dense")


@pytest.fixture
def prefix(engine):
    """A fresh name prefix; every index (and OpenSearch search template) under it is removed
    afterwards."""
    name = f"test-life-{uuid.uuid4().hex[:8]}"
    yield name
    remove_prefixed(engine, name)


def ingest(engine, tmp_path, model, data, *args, split="test"):
    return run(
        "ingest", "--model", model.path, "--data", data, "--split", split,
        "--engine", engine.name, "--url", engine.url, "--rejects", tmp_path / "rejects.jsonl",
        *args,
    )  # fmt: skip


def query(engine, model, index, *args, text="a dog on a beach"):
    return run(
        "query", text, "--model", model.path, "--index", index,
        "--engine", engine.name, "--url", engine.url, *args,
    )  # fmt: skip


def hits(result) -> list[tuple[str, float, str]]:
    assert result.exit_code == 0, result.output
    return [(h["id"], h["score"], h["index"]) for h in json.loads(result.stdout)["hits"]]


def test_a_new_model_goes_live_behind_the_alias_and_old_indices_retire(
    engine, tmp_path, prefix, meta_corpus, trained_model, other_model
):
    adapter = as_engine(engine.client)
    a, b = (short_hash(model_binding(m)) for m in (trained_model, other_model))
    assert a != b
    first = ingest(engine, tmp_path, trained_model, meta_corpus, "--alias", prefix)
    assert first.exit_code == 0, first.output
    one = f"{prefix}-{a}-1"
    assert adapter.alias_targets(prefix) == [one]
    assert f"alias {prefix!r} now points to {one!r} (before: a new alias)" in first.stdout
    assert "verified" in first.stdout and "0 of" not in first.stdout.split("verified")[1][:12]
    assert "metadata fields for --filter: bucket (long), licence (keyword), tags (keyword)" in (
        first.stdout.replace(", year (long)", "")
    )
    # the alias answers like its index, with the index named in every hit
    through = hits(query(engine, trained_model, prefix, "--json"))
    assert through == hits(query(engine, trained_model, one, "--json"))
    assert {i for _, _, i in through} == {one}

    second = ingest(engine, tmp_path, other_model, meta_corpus, "--alias", prefix)
    assert second.exit_code == 0, second.output
    two = f"{prefix}-{b}-1"
    assert adapter.alias_targets(prefix) == [two]
    assert f"kept {one}; deleted none" in second.stdout
    # the old model is refused on the alias now, in one line naming both models
    refused = query(engine, trained_model, prefix)
    one_line_error(refused, a, b, "--allow-model-mismatch")
    forced = query(engine, trained_model, prefix, "--allow-model-mismatch", "--json")
    assert forced.exit_code == 0 and "warning:" in forced.stderr and "unsafe" in forced.stderr
    assert {i for _, _, i in hits(query(engine, other_model, prefix, "--json"))} == {two}

    third = ingest(
        engine, tmp_path, trained_model, meta_corpus, "--alias", prefix, "--keep-old", "0"
    )
    assert third.exit_code == 0, third.output
    three = f"{prefix}-{a}-2"
    assert adapter.alias_targets(prefix) == [three]
    assert not adapter.index_exists(one) and not adapter.index_exists(two)
    assert "deleted" in third.stdout and one in third.stdout and two in third.stdout
    listed = json.loads(run("indices", "--json", "--engine", engine.name, "--url", engine.url)
                        .stdout)  # fmt: skip
    mine = [row for row in listed if row["index"].startswith(prefix)]
    assert [(r["index"], r["aliases"], r["model"]) for r in mine] == [(three, [prefix], a)]
    if engine_spec(engine.name).stored_template:  # the alias's stored template follows it
        script = engine.client.get_script(id=f"sparse-mm-hybrid-{prefix}")["script"]["source"]
        w1, _ = trained_model.serving_weights()
        assert f'"boost": {2 * w1}' in script
        gone = engine.client.get_script(id=f"sparse-mm-hybrid-{one}", ignore=404)
        assert not gone.get("found", False)


@pytest.mark.parametrize("legacy", [False, True], ids=["bound", "built-before-bindings"])
def test_a_plain_index_of_the_alias_name_is_replaced_by_the_alias(
    engine, tmp_path, prefix, meta_corpus, trained_model, legacy
):
    plain = ingest(engine, tmp_path, trained_model, meta_corpus, "--index", prefix)
    assert plain.exit_code == 0, plain.output
    before = hits(query(engine, trained_model, prefix, "--json"))
    if legacy:  # what an older sparse-mm left (CI's cached node had one): no model checksums
        from indexing.index import index_meta

        meta = index_meta(engine.client, prefix)
        meta.pop("_properties"), meta.pop("binding")
        as_engine(engine.client).put_meta(prefix, meta)
        refused = query(engine, trained_model, prefix)
        one_line_error(refused, "built before", f"sparse-mm ingest --alias {prefix}")
    swapped = ingest(engine, tmp_path, trained_model, meta_corpus, "--alias", prefix)
    assert swapped.exit_code == 0, swapped.output
    assert f"({prefix!r}) was deleted in the same request" in swapped.stdout
    adapter = as_engine(engine.client)
    (target,) = adapter.alias_targets(prefix)
    after = hits(query(engine, trained_model, prefix, "--json"))
    assert [i for i, _, _ in after] == [i for i, _, _ in before]
    assert [s for _, s, _ in after] == pytest.approx([s for _, s, _ in before], abs=1e-6)
    assert {i for _, _, i in after} == {target}


def test_the_wrong_model_is_refused_on_ingest_and_query_unless_overridden(
    engine, tmp_path, prefix, meta_corpus, trained_model, other_model
):
    made = ingest(engine, tmp_path, trained_model, meta_corpus, "--index", prefix)
    assert made.exit_code == 0, made.output
    a, b = (short_hash(model_binding(m)) for m in (trained_model, other_model))
    one_line_error(ingest(engine, tmp_path, other_model, meta_corpus, "--index", prefix), a, b)
    one_line_error(query(engine, other_model, prefix), a, b)
    count = as_engine(engine.client).count(prefix)
    forced = ingest(
        engine, tmp_path, other_model, meta_corpus, "--index", prefix, "--allow-model-mismatch"
    )
    assert forced.exit_code == 0 and "warning:" in forced.stderr, forced.output
    assert as_engine(engine.client).count(prefix) == count  # the same ids, updated


def test_a_deleted_document_never_comes_back_in_any_mode(
    engine, tmp_path, prefix, meta_corpus, trained_model
):
    made = ingest(engine, tmp_path, trained_model, meta_corpus, "--alias", prefix)
    assert made.exit_code == 0, made.output
    texts = ("a dog on a beach", "a cat in a kitchen", "a red car on a street")
    top = {
        hit[0]
        for text in texts
        for mode in MODES
        for hit in hits(query(engine, trained_model, prefix, "--json", "--mode", mode, text=text))[
            :3
        ]
    }
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join([*sorted(top), "no-such-id"]) + "\n")
    before = as_engine(engine.client).count(prefix)
    deleted = run(
        "delete", "--index", prefix, "--ids", ids_file, "--engine", engine.name,
        "--url", engine.url,
    )  # fmt: skip
    assert deleted.exit_code == 0, deleted.output
    assert f"deleted {len(top)} of {len(top) + 1} documents" in deleted.stdout
    assert "not found: no-such-id" in deleted.stdout
    assert as_engine(engine.client).count(prefix) == before - len(top)
    for text in texts:
        for mode, extra in [*((m, ()) for m in MODES), ("hybrid", ("--exact",))]:
            found = hits(
                query(engine, trained_model, prefix, "--json", "--mode", mode, "-k", "50", *extra,
                      text=text)
            )  # fmt: skip
            assert found and not top & {i for i, _, _ in found}, (mode, extra)

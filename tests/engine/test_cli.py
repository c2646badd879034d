"""The commands as users run them (click's runner, in-process, real engine): the happy path of
ingest and query, and one clear line and a non-zero exit for each common misuse, with no index
left behind claiming success."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from indexing.engine import as_engine
from indexing.ingest import model_meta
from indexing.layout import IndexSettings
from sparse_mm.data import image_file, write_embeddings
from tests.cli_run import one_line_error, run
from tests.engines import (
    each_engine,  # noqa: F401  (every engine test here runs on both engines)
    send_template_request,
)


def test_ingest_then_query_from_the_command_line(engine, cli_index, trained_model):
    name, ingest = cli_index
    assert ingest.exit_code == 0, ingest.output
    assert "created index" in ingest.output and "failed 0" in ingest.output
    common = ("--model", trained_model.path, "--index", name, *_at(engine))
    table = run("query", "a dog on the beach", *common)
    assert table.exit_code == 0, table.output
    rows = table.output.splitlines()
    assert rows[0].split()[:5] == ["rank", "id", "score", "dense", "sparse"]
    assert len(rows) == 2 + 10 + 1 and rows[-1].startswith("hybrid: 10 hits")
    out = json.loads(run("query", "a dog on the beach", *common, "--json", "-k", "5").output)
    assert out["mode"] == "hybrid" and len(out["hits"]) == 5
    for hit in out["hits"]:
        assert hit["score"] == pytest.approx(hit["dense_part"] + hit["sparse_part"], rel=1e-4)
        assert hit["captions"], hit  # the index stores the captions of each image
    words = " ".join(c for hit in out["hits"] for c in hit["captions"])
    assert any(w in words for w in ("dog", "puppy", "pup"))


def _at(engine) -> tuple[str, ...]:
    """The options that point a command at the test's engine."""
    return ("--engine", engine.name, "--url", engine.url)


@pytest.mark.parametrize(
    ("name", "label"), [("opensearch", "OpenSearch"), ("elasticsearch", "Elasticsearch")]
)
def test_unreachable_engine(trained_model, name, label):
    where = ("--engine", name, "--url", "http://127.0.0.1:9")
    result = run("query", "a dog", "--model", trained_model.path, *where)
    one_line_error(result, f"cannot reach {label} at http://127.0.0.1:9")


def test_missing_index(engine, trained_model):
    result = run("query", "a dog", "--model", trained_model.path, *_at(engine), "--index", "nope-x")
    one_line_error(
        result, "index 'nope-x' does not exist", f"sparse-mm ingest --engine {engine.name}`"
    )
    dense = run("query", "a dog", "--model", trained_model.path, *_at(engine), "--index", "nope-x",
                "--mode", "dense")  # fmt: skip
    one_line_error(dense, "index 'nope-x' does not exist", f"--engine {engine.name}`")


def test_the_wrong_engine_is_named(request, trained_model):
    opensearch = request.getfixturevalue("opensearch_engine")
    elasticsearch = request.getfixturevalue("elasticsearch_engine")
    model = ("--model", trained_model.path)
    result = run("query", "a dog", *model, "--engine", "elasticsearch", "--url", opensearch.url)
    one_line_error(result, "is not Elasticsearch", "--engine opensearch")
    result = run("query", "a dog", *model, "--engine", "opensearch", "--url", elasticsearch.url)
    one_line_error(result, "is it Elasticsearch?", "--engine elasticsearch")


def test_https_against_a_plain_http_node_says_so(engine, trained_model):
    tls = engine.url.replace("http://", "https://", 1)
    result = run("query", "a dog", "--model", trained_model.path, "--engine", engine.name,
                 "--url", tls)  # fmt: skip
    one_line_error(result, f"{tls} speaks plain HTTP", f"use --url {engine.url}")
    assert "--ca-certs" not in result.stderr


def test_ctrl_c_during_ingest_says_what_is_kept(engine, corpus, trained_model, index_name,
                                               monkeypatch):  # fmt: skip
    """Ctrl-C (a KeyboardInterrupt in the main thread) after 30 documents were made, with
    chunks of 10: the two chunks sent are settled and flushed, the message counts them, and
    re-running the same ingest completes the index."""
    import functools

    import indexing.cli
    from indexing.documents import DocumentBuilder

    monkeypatch.setattr(
        indexing.cli, "BulkOptions", functools.partial(indexing.cli.BulkOptions, chunk_size=10)
    )
    real_build = DocumentBuilder.build

    def build_then_interrupt(self, *args, **kwargs):
        for made, doc in enumerate(real_build(self, *args, **kwargs)):
            if made == 25:
                raise KeyboardInterrupt
            yield doc

    args = ("ingest", "--model", trained_model.path, "--data", corpus, "--index", index_name,
            "--batch-size", "100", *_at(engine))  # fmt: skip
    with monkeypatch.context() as patch:
        patch.setattr(DocumentBuilder, "build", build_then_interrupt)
        stopped = run(*args)
    one_line_error(stopped, "interrupted: 20 documents of this run are written", "re-run the same")
    assert stopped.exit_code == 130
    engine.client.indices.refresh(index=index_name)
    assert engine.client.count(index=index_name)["count"] == 20
    completed = run(*args)
    assert completed.exit_code == 0, completed.output
    engine.client.indices.refresh(index=index_name)
    total = engine.client.count(index=index_name)["count"]
    assert total > 20 and f"indexed {total - 20}, updated 20" in completed.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("   ",), "the query TEXT is empty"),
        ((), "give either TEXT or --caption-id"),
        (("a dog", "-k", "0"), "0 is not in the range"),
    ],
)
def test_query_usage_errors(engine, trained_model, args, fragment):
    result = run("query", *args, "--model", trained_model.path, *_at(engine))
    one_line_error(result, fragment, code=2)


def test_query_with_no_known_words(engine, cli_index, trained_model):
    name, _ = cli_index
    common = ("--model", trained_model.path, "--index", name, *_at(engine))
    one_line_error(run("query", "xyzzy qwerty", *common), "no known words in query")


def test_unknown_words_are_named_and_the_search_still_runs(engine, cli_index, trained_model):
    common = ("--model", trained_model.path, "--index", cli_index[0], *_at(engine))
    out = run("query", "a dgo on the beach xyzzy", *common, "--json", "-k", "3")
    assert out.exit_code == 0, out.output
    answer = json.loads(out.stdout)
    assert answer["unknown_words"] == ["dgo", "xyzzy"] and len(answer["hits"]) == 3
    assert "left out of the query: dgo, xyzzy" in out.stderr
    table = run("query", "a dog on the beach", *common, "-k", "3")
    assert table.exit_code == 0 and "vocabulary" not in table.stderr


def test_a_very_long_query_is_searched(engine, cli_index, trained_model):
    common = ("--model", trained_model.path, "--index", cli_index[0], *_at(engine))
    text = "a dog on the beach " * 6000  # 114,000 characters, near the limit of one argv string
    out = run("query", text, *common, "--json", "-k", "3")
    assert out.exit_code == 0, out.output
    hits = json.loads(out.output)["hits"]
    assert len(hits) == 3 and all(h["matches"] for h in hits)


def test_bytes_that_are_not_utf8_are_replaced_with_a_warning(engine, cli_index, trained_model):
    common = ("--model", trained_model.path, "--index", cli_index[0], *_at(engine))
    # A real process with raw bytes in argv, as a shell with the wrong locale would pass them.
    raw = b"a dog \xff\xfe on the beach"
    command = [sys.executable, "-m", "sparse_mm.cli", "query", raw, *map(str, common), "--json"]
    done = subprocess.run(command, capture_output=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert done.returncode == 0, done.stderr.decode()
    warning = done.stderr.decode().strip().splitlines()
    assert len(warning) == 1 and "2 byte sequence(s) that are not UTF-8" in warning[0], warning
    clean = json.loads(run("query", "a dog on the beach", *common, "--json").output)
    assert [h["id"] for h in json.loads(done.stdout)["hits"]] == [h["id"] for h in clean["hits"]]
    # Nothing but such bytes: the warning, then the usual error for a query without known words.
    only_bad = run("query", "\udcff\udcfe", *common)
    assert only_bad.exit_code != 0
    assert [line.split(":")[0] for line in only_bad.stderr.splitlines()] == ["warning", "error"]
    assert "no known words in query" in only_bad.stderr


def test_missing_model_and_data(engine, tmp_path):
    one_line_error(run("query", "a dog", "--model", tmp_path / "none"), "does not exist")
    (tmp_path / "broken").mkdir()
    one_line_error(run("query", "a dog", "--model", tmp_path / "broken"), "config.json")
    result = run("ingest", "--data", tmp_path / "none", *_at(engine))
    one_line_error(result, "dataset folder", "does not exist")


def test_dimension_mismatch_leaves_the_index_untouched(engine, corpus, trained_model, index_name):
    meta = model_meta(trained_model)  # bound to the model: only the width differs
    as_engine(engine.client).create_index(index_name, 8, IndexSettings(), meta)
    result = run(
        "ingest", "--model", trained_model.path, "--data", corpus, "--index", index_name,
        *_at(engine),
    )  # fmt: skip
    one_line_error(result, "holds 8-d vectors", "makes 256-d")
    engine.client.indices.refresh(index=index_name)
    assert engine.client.count(index=index_name)["count"] == 0


def test_nan_rows_create_no_index(engine, corpus, trained_model, index_name, tmp_path):
    broken = tmp_path / "nan"
    shutil.copytree(corpus, broken)
    path = image_file(broken, "synth")
    table = pq.read_table(path)
    emb = np.array(table.column("emb").to_pylist(), np.float32)
    emb[123] = np.nan
    write_embeddings(path, table.column("id").to_pylist(), emb)
    result = run(
        "ingest", "--model", trained_model.path, "--data", broken, "--index", index_name,
        *_at(engine),
    )  # fmt: skip
    one_line_error(result, str(path), "row 123", "NaN")
    assert not engine.client.indices.exists(index=index_name)


def test_template_request_runs_in_the_engine_as_printed(engine, cli_index, trained_model):
    name, _ = cli_index
    common = ("--model", trained_model.path, "--index", name, "--engine", engine.name)
    printed = run("query", "a dog on the beach", *common, "--template-request", "-k", "4")
    assert printed.exit_code == 0, printed.output
    request = json.loads(printed.output)  # printed without contacting the engine
    if engine.name == "opensearch":
        assert request["id"] == f"sparse-mm-hybrid-{name}" and request["params"]["k"] == 4
    else:  # no stored template: the two requests, the second keeping the top 4
        assert [r["path"] for r in request["requests"]] == [f"/{name}/_search"] * 2
        assert request["requests"][1]["body"]["size"] == 4
    raw = send_template_request(engine, name, request)
    ours = json.loads(run("query", "a dog on the beach", *common, "--url", engine.url,
                          "--json", "-k", "4").output)["hits"]  # fmt: skip
    assert [h["_id"] for h in raw] == [h["id"] for h in ours]
    w1 = trained_model.config.w1
    assert [h["_score"] - w1 for h in raw] == pytest.approx([h["score"] for h in ours], rel=1e-6)

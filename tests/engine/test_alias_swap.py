"""A new model without downtime, on real nodes of both engines: four clients query the alias
without pause while `ingest --alias` builds the new model's index and swaps it in (zero
errors; every answer whole from the old index or the new one, equal to that index's own
answer); and a build killed with SIGKILL leaves the alias and the old index as they were,
and the same command run again completes the swap."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from indexing.bulk import BulkOptions
from indexing.engine import as_engine
from indexing.ingest import IngestOptions, source_from_dataset
from indexing.searcher import Searcher
from indexing.versions import ingest_alias
from tests.engines import (
    each_engine,  # noqa: F401  (every test here runs on both engines)
    remove_prefixed,
)

CLIENTS = 4
TEXTS = ("a dog on a beach", "a cat in a kitchen", "a red car on a street", "a person skiing")
AFTER_SWAP = 5  # answers each client still gets from the new index before the test ends
DEADLINE = 300.0  # seconds: the clients stop anyway (bounded load)


@pytest.fixture
def alias(engine):
    name = f"test-swap-{uuid.uuid4().hex[:8]}"
    yield name
    remove_prefixed(engine, name)


def _answer(searcher: Searcher, text: str, index: str | None = None):
    """(the concrete index that answered, [(id, score)]) of a hybrid search."""
    if index is not None:
        searcher = Searcher(searcher.model, index, searcher.engine)
    hits = searcher.search(text, mode="hybrid", k=10).response.hits
    answered = {h.index for h in hits}
    assert len(answered) == 1, f"one answer from several indices: {answered}"
    return answered.pop(), [(h.id, h.score) for h in hits]


def test_four_clients_see_no_error_and_no_mix_while_a_new_model_swaps_in(
    engine, alias, meta_corpus, trained_model, other_model, tmp_path
):
    source = source_from_dataset(meta_corpus, "test")
    options = IngestOptions(bulk=BulkOptions(rejects_path=tmp_path / "rejects.jsonl"))
    old = ingest_alias(engine.client, trained_model, source, options, alias, progress=False)
    expected = {old.index: {t: _answer(Searcher(trained_model, old.index, engine.client), t)[1]
                            for t in TEXTS}}  # fmt: skip
    answers: list[tuple[str, str, list]] = []
    errors: list[BaseException] = []
    swapped = threading.Event()
    stop = time.monotonic() + DEADLINE

    def client(n: int) -> None:
        # serve's way: follow the alias to the model its new index is bound to
        searcher = Searcher(trained_model, alias, engine.client, follow=True)
        searcher.bind()
        after = 0
        while after < AFTER_SWAP and time.monotonic() < stop:
            text = TEXTS[(n + len(answers)) % len(TEXTS)]
            try:
                index, found = _answer(searcher, text)
            except BaseException as exc:  # every failure is counted, none ends the test
                errors.append(exc)
                continue
            answers.append((index, text, found))
            after += swapped.is_set()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    while len(answers) < 4 * CLIENTS and time.monotonic() < stop:
        time.sleep(0.05)  # the clients are answering before the build starts
    new = ingest_alias(
        engine.client,
        other_model,
        source,
        options,
        alias,
        progress=False,
        before_swap=lambda _index: time.sleep(0.2),  # answers in flight around the swap
    )
    swapped.set()
    for t in threads:
        t.join()
    assert not errors, f"{len(errors)} errors, the first: {errors[0]!r}"
    expected[new.index] = {
        t: _answer(Searcher(other_model, new.index, engine.client), t)[1] for t in TEXTS
    }
    by_index = {old.index: 0, new.index: 0}
    for index, text, found in answers:
        assert index in expected, f"an answer from {index}, neither the old nor the new index"
        by_index[index] += 1
        want = expected[index][text]
        assert [i for i, _ in found] == [i for i, _ in want], (index, text)
        assert [s for _, s in found] == pytest.approx([s for _, s in want], abs=1e-6)
    print(f"answers during the swap: {by_index} ({len(answers)} in all, 0 errors)")
    assert by_index[old.index] >= 4 * CLIENTS and by_index[new.index] >= AFTER_SWAP * CLIENTS


def _build_command(engine, alias, model, data, tmp_path) -> list[str]:
    return [
        sys.executable, "-c", "from sparse_mm.cli import main; main()",
        "ingest", "--model", str(model.path), "--data", str(data), "--split", "train",
        "--alias", alias, "--engine", engine.name, "--url", engine.url,
        "--batch-size", "64", "--bulk-concurrency", "1",
        "--rejects", str(tmp_path / "rejects.jsonl"),
    ]  # fmt: skip


def _indexed(engine, index: str) -> int:
    """Index operations the engine has taken for `index` (refreshed or not)."""
    try:
        stats = engine.client.indices.stats(index=index, metric="indexing")
    except Exception:  # not created yet
        return 0
    primaries = stats["_all"]["primaries"]  # empty until the new index's shard has started
    return int(primaries.get("indexing", {}).get("index_total", 0))


def test_a_killed_build_leaves_the_alias_alone_and_a_rerun_completes_it(
    engine, alias, meta_corpus, trained_model, other_model, tmp_path
):
    adapter = as_engine(engine.client)
    source = source_from_dataset(meta_corpus, "train")
    options = IngestOptions(bulk=BulkOptions(rejects_path=tmp_path / "rejects.jsonl"))
    old = ingest_alias(engine.client, trained_model, source, options, alias, progress=False)
    before = {t: _answer(Searcher(trained_model, alias, engine.client), t) for t in TEXTS}
    count = adapter.count(old.index)

    build = subprocess.Popen(
        _build_command(engine, alias, other_model, meta_corpus, tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "TQDM_DISABLE": "1"},
    )  # fmt: skip
    from indexing.binding import model_binding, short_hash

    new_index = f"{alias}-{short_hash(model_binding(other_model))}-1"
    deadline = time.monotonic() + 120
    while _indexed(engine, new_index) == 0 and build.poll() is None:
        assert time.monotonic() < deadline, "the build never started writing"
        time.sleep(0.02)
    os.kill(build.pid, signal.SIGKILL)
    build.wait()
    assert build.returncode == -signal.SIGKILL, build.stderr.read().decode()[-2000:]
    # the alias and the old index are as they were
    assert adapter.alias_targets(alias) == [old.index]
    assert adapter.count(old.index) == count
    assert {t: _answer(Searcher(trained_model, alias, engine.client), t) for t in TEXTS} == before
    assert adapter.index_exists(new_index)  # the unfinished build stays, to be resumed

    rerun = subprocess.run(
        _build_command(engine, alias, other_model, meta_corpus, tmp_path),
        capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"}, check=False,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"verified {new_index!r} (an unfinished build, resumed)" in rerun.stdout
    assert adapter.alias_targets(alias) == [new_index]
    assert adapter.count(new_index) == len(source.ids)
    assert adapter.index_exists(old.index)  # kept (--keep-old 1)

"""Bulk-load settings and the HNSW profile on a real node of each engine: refresh off and async
translog during the load, the serving values back after it (also when it fails or is
interrupted), progress only after a flush, and the graph recorded in and checked against the
index's mapping."""

from __future__ import annotations

import pytest
import torch

from indexing.bulk import BulkOptions
from indexing.engine import as_engine
from indexing.index import index_meta
from indexing.ingest import IngestOptions, IngestSource, ingest
from indexing.layout import IndexSettings
from sparse_mm.checkpoint import load_model
from sparse_mm.demo import demo_model_dir
from sparse_mm.errors import DataError
from tests.engines import each_engine  # noqa: F401  (every test here runs on both engines)

BATCH = 64


@pytest.fixture(scope="module")
def model():
    return load_model(demo_model_dir())


class _Metadata(list):
    """Per-row metadata that runs `hook(row)` when the ingest reads a row's batch."""

    def __init__(self, n: int, hook) -> None:
        super().__init__(
            {"filename": f"{i}.jpg", "split": "test", "captions": []} for i in range(n)
        )
        self.hook = hook

    def __getitem__(self, item):
        self.hook(item.start)
        return super().__getitem__(item)


def _source(model, n: int, hook=lambda _row: None, nan_from: int | None = None) -> IngestSource:
    emb = torch.randn(n, model.config.heads.in_dim, generator=torch.Generator().manual_seed(0))
    if nan_from is not None:
        emb[nan_from:] = float("nan")
    return IngestSource([f"img-{i}" for i in range(n)], emb, _Metadata(n, hook), "test")


def _serving(engine, index: str) -> tuple[str | None, str | None]:
    return engine.refresh_interval(index), engine.translog_durability(index)


def _options(index: str, concurrency: int = 2, **settings) -> IngestOptions:
    bulk = BulkOptions(chunk_size=BATCH, checkpoint_docs=2 * BATCH, concurrency=concurrency)
    return IngestOptions(
        index=index, settings=IndexSettings(**settings), batch_size=BATCH, bulk=bulk
    )


def test_the_load_runs_with_bulk_settings_and_restores_the_serving_ones(client, index_name, model):
    engine = as_engine(client)
    seen, written = [], []

    def during(row: int) -> None:
        if row == BATCH:  # the index exists and the load has begun
            seen.append(_serving(engine, index_name))
        if row in (BATCH, 2 * BATCH):
            seen.append(sum(written))

    report = ingest(  # one request at a time: the checkpoint comes after the second batch
        engine, model, _source(model, 5 * BATCH, during), _options(index_name, concurrency=1),
        progress=False, on_written=lambda n: written.append(n),
    )  # fmt: skip
    assert seen[0] == ("-1", "async")
    # The first batch was acknowledged before the second was read, but no flush covered it
    # yet; after the second, one checkpoint (a flush) covered both: progress counts documents
    # only once a flush made them durable.
    assert seen[1:] == [0, 2 * BATCH]
    assert sum(written) == report.bulk.indexed == 5 * BATCH
    assert _serving(engine, index_name) == ("1s", "request")
    assert engine.count(index_name) == 5 * BATCH  # refreshed: searchable at once


@pytest.mark.parametrize("failure", ["bad document", "interrupted"])
def test_a_failing_ingest_restores_the_serving_settings(client, index_name, model, failure):
    engine = as_engine(client)
    ingest(engine, model, _source(model, BATCH), _options(index_name), progress=False)

    def interrupt(row: int) -> None:
        if failure == "interrupted" and row == 2 * BATCH:
            raise KeyboardInterrupt

    nan_from = 2 * BATCH if failure == "bad document" else None
    source = _source(model, 4 * BATCH, interrupt, nan_from)
    expected = DataError if failure == "bad document" else KeyboardInterrupt
    # One request at a time, so that the count is exact: with more, a chunk still queued when
    # the ingest stops is dropped unsent.
    with pytest.raises(expected):
        ingest(engine, model, source, _options(index_name, concurrency=1), progress=False)
    assert _serving(engine, index_name) == ("1s", "request")
    assert engine.count(index_name) == 2 * BATCH  # the batches before the failure


def test_a_leftover_of_a_crashed_load_is_not_taken_for_the_serving_values(
    client, index_name, model
):
    engine = as_engine(client)
    ingest(engine, model, _source(model, BATCH), _options(index_name), progress=False)
    engine.set_refresh_interval(index_name, "-1")  # as a SIGKILLed load leaves the index
    engine.set_translog_durability(index_name, "async")
    ingest(engine, model, _source(model, BATCH), _options(index_name), progress=False)
    assert _serving(engine, index_name) == ("1s", "request")


def test_the_graph_is_recorded_and_a_different_one_is_refused(client, index_name, model):
    engine = as_engine(client)
    legacy = _options(index_name, profile="legacy")
    report = ingest(engine, model, _source(model, BATCH), legacy, progress=False)
    meta = index_meta(engine, index_name)
    assert meta["hnsw"] == {"profile": "legacy", "m": 16, "ef_construction": 128, "ef_search": 64}
    assert engine.hnsw_parameters(meta["_properties"]) == (16, 128)
    assert "m 16, ef_construction 128 (profile legacy)" in report.describe()

    with pytest.raises(DataError) as caught:
        ingest(engine, model, _source(model, BATCH), _options(index_name, m=12), progress=False)
    message = str(caught.value)
    assert f"index {index_name!r} was built with m 16, ef_construction 128" in message
    assert "\n" not in message

    # No graph asked for: the existing index keeps its own, and says so.
    own = IngestOptions(index=index_name, settings=IndexSettings(check_graph=False))
    report = ingest(engine, model, _source(model, BATCH), own, progress=False)
    assert (report.settings.m, report.settings.ef_construction) == (16, 128)
    assert report.settings.graph["profile"] == "legacy"
    assert report.bulk.updated == BATCH

"""Inputs whose encoding the engine cannot store (an embedding so large that the dense vector
overflows) stop the ingest with a clear error and never leave a partial new index; in an
existing index the error says how many documents of the run were written, and the documents of
earlier runs are kept."""

from __future__ import annotations

import re

import pytest
import torch

from indexing.bulk import BulkOptions
from indexing.ingest import IngestOptions, IngestSource, ingest
from sparse_mm.checkpoint import load_model
from sparse_mm.demo import demo_model_dir
from sparse_mm.errors import DataError
from tests.engines import each_engine  # noqa: F401  (every test here runs on both engines)


def _source(n: int, bad_row: int) -> IngestSource:
    emb = torch.randn(n, 768, generator=torch.Generator().manual_seed(0))
    emb[bad_row] = 3e38  # finite float32, but its projection overflows
    return IngestSource([f"img-{i}" for i in range(n)], emb, None, "overflow test")


def test_overflow_after_chunks_were_sent_removes_the_new_index(client, index_name):
    model = load_model(demo_model_dir())
    options = IngestOptions(index=index_name, batch_size=256, bulk=BulkOptions(chunk_size=100))
    with pytest.raises(DataError) as caught:
        ingest(client, model, _source(1000, 900), options, progress=False)
    message = str(caught.value)
    assert "'img-900'" in message and "not finite" in message and "removed again" in message
    assert not client.indices.exists(index=index_name)


def test_overflow_in_an_existing_index_says_what_was_written(client, index_name):
    model = load_model(demo_model_dir())
    options = IngestOptions(index=index_name, batch_size=256, bulk=BulkOptions(chunk_size=100))
    earlier = _clean(100)
    ingest(client, model, earlier, options, progress=False)
    client.indices.refresh(index=index_name)
    before = {d["_id"]: d["_source"] for d in _all_documents(client, index_name)}
    assert len(before) == 100
    with pytest.raises(DataError) as caught:
        ingest(client, model, _source(1000, 900), options, progress=False)
    message = str(caught.value)
    assert "'img-900'" in message and "not finite" in message
    written = re.search(r"(\d+) documents of this run were already written", message)
    assert written, message
    client.indices.refresh(index=index_name)
    after = {d["_id"]: d["_source"] for d in _all_documents(client, index_name)}
    this_run = sorted(i for i in after if i.startswith("img-"))
    # the reported count is what the index holds from this run, all before the bad row
    assert len(this_run) == int(written.group(1)) > 0
    assert max(int(i.split("-")[1]) for i in this_run) < 900
    # the documents of earlier runs survive unchanged
    assert {i: after[i] for i in before} == before


def _all_documents(client, index: str) -> list[dict]:
    return client.search(index=index, body={"size": 10_000, "query": {"match_all": {}}})["hits"][
        "hits"
    ]


def _clean(n: int) -> IngestSource:
    """`n` sane images whose ids (earlier-<i>) no later run in these tests reuses."""
    emb = torch.randn(n, 768, generator=torch.Generator().manual_seed(1))
    return IngestSource([f"earlier-{i}" for i in range(n)], emb, None, "clean")

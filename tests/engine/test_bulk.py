"""Bulk indexing against the real engine: counts, idempotence, rejections with reasons,
and a clear error when the engine is unreachable."""

from __future__ import annotations

import json
import socket

import pytest

from indexing.bulk import BulkOptions, bulk_index
from indexing.client import ConnectionOptions
from indexing.engine import as_engine
from indexing.engine import connect_client as connect
from indexing.layout import IndexSettings
from sparse_mm.errors import EngineError
from tests.engines import (
    ENGINE_NAMES,
    each_engine,  # noqa: F401  (every engine test here runs on both engines)
)


def _docs(n: int, dim: int = 3) -> list[dict]:
    return [
        {"id": f"img-{i}", "dense": [1.0, float(i % 5), 0.5][:dim], "sparse": {"dog": 0.1 + i}}
        for i in range(n)
    ]


@pytest.fixture
def bulk_index_name(client, index_name):
    as_engine(client).create_index(index_name, 3, IndexSettings(), None)
    return index_name


def test_bulk_counts_and_is_idempotent(client, bulk_index_name, tmp_path):
    options = BulkOptions(chunk_size=7, rejects_path=tmp_path / "rejects.jsonl")
    first = bulk_index(client, bulk_index_name, _docs(40), options)
    assert (first.indexed, first.updated, first.failed) == (40, 0, 0)
    second = bulk_index(client, bulk_index_name, _docs(40), options)
    assert (second.indexed, second.updated, second.failed) == (0, 40, 0)
    client.indices.refresh(index=bulk_index_name)
    assert client.count(index=bulk_index_name)["count"] == 40


def test_rejected_documents_are_reported_with_reasons(client, bulk_index_name, tmp_path):
    docs = _docs(5)
    docs[1]["dense"] = [1.0, 2.0]  # wrong dimension
    docs[3]["sparse"] = {"dog": 0.0}  # not a positive normal float
    report = bulk_index(
        client, bulk_index_name, docs, BulkOptions(rejects_path=tmp_path / "rejects.jsonl")
    )
    assert (report.indexed, report.failed, report.retries) == (3, 2, 0)
    rejected = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rejected} == {"img-1", "img-3"}
    assert all(r["status"] == 400 and r["reason"] for r in rejected)
    assert "rejects.jsonl" in report.describe()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_unreachable_engine_gives_up_with_a_clear_error(name):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = ConnectionOptions(url=f"http://127.0.0.1:{port}", max_retries=0)
    client = connect(options, check=False, engine=name)
    with pytest.raises(EngineError, match=r"stayed unreachable .* after 2 retries"):
        bulk_index(client, "nowhere", _docs(3), BulkOptions(max_retries=2, initial_backoff=0.01))

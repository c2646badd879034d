"""Property: any token, encoded, is indexed by the engine and found by its own sparse query
(OpenSearch's rank_feature, Elasticsearch's sparse_vector), and by no other token's query; the
query builder never produces a rejected query. On each engine."""

from __future__ import annotations

import importlib
import struct
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexing.codec import encode_term
from indexing.engine import as_engine
from indexing.layout import SPARSE_FIELD, IndexSettings
from tests.engines import each_engine  # noqa: F401  (every test here runs on both engines)


def lucene_feature(value: float) -> float:
    bits = struct.unpack(">I", struct.pack(">f", value))[0]
    return struct.unpack(">f", struct.pack(">I", (bits >> 15) << 15))[0]


@pytest.fixture
def codec_index(client, index_name):
    client.indices.create(
        index=index_name, body=as_engine(client).index_body(2, IndexSettings(), None)
    )
    return index_name


@pytest.fixture
def sparse_query(engine):
    """The engine's own sparse query builder (indexing/<engine>/queries.py)."""
    return importlib.import_module(f"indexing.{engine.name}.queries").sparse_query


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tokens=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=4, unique=True))
def test_every_token_reaches_only_its_own_feature(client, codec_index, sparse_query, tokens):
    batch = uuid.uuid4().hex
    weights = {t: 0.5 + i for i, t in enumerate(tokens)}
    for i, token in enumerate(tokens):
        doc = {
            "id": f"{batch}-{i}",
            "split": batch,
            SPARSE_FIELD: {encode_term(token): weights[token]},
        }
        client.index(index=codec_index, id=doc["id"], body=doc)
    client.indices.refresh(index=codec_index)
    for i, token in enumerate(tokens):
        body = sparse_query({token: 2.0}, k=10)
        body["query"] = {"bool": {"must": [body["query"]], "filter": [{"term": {"split": batch}}]}}
        hits = client.search(index=codec_index, body=body)["hits"]["hits"]
        assert [h["_id"] for h in hits] == [f"{batch}-{i}"], token
        assert hits[0]["_score"] == pytest.approx(2.0 * lucene_feature(weights[token]), rel=1e-6)

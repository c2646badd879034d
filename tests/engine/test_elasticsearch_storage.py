"""What the real Elasticsearch node does with what sparse-mm sends, checked rather than assumed:
how it stores term weights (the in-memory reference quantises the same way), which feature names
it takes, its k-NN score, and the managed node's commands."""

from __future__ import annotations

import os
import uuid

import pytest
import torch
from click.testing import CliRunner
from elasticsearch import BadRequestError

from indexing.elasticsearch.adapter import ElasticsearchEngine
from indexing.elasticsearch.queries import dense_query, sparse_clause
from indexing.layout import DENSE_FIELD, SPARSE_FIELD, IndexSettings
from sparse_mm.cli import main
from sparse_mm.scores import quantize_feature

WEIGHTS = [1.2345678, 0.3, 2.0**-126, 3.3e38, 7.0]


@pytest.fixture
def es(elasticsearch_engine):
    engine = ElasticsearchEngine(elasticsearch_engine.client)
    name = f"test-es-storage-{uuid.uuid4().hex[:8]}"
    engine.create_index(name, 2, IndexSettings(), None)
    yield engine, name
    engine.delete_index(name)


def _score(engine, name, features) -> float:
    """The one hit's score for a sparse_vector query over raw feature names."""
    clause = sparse_clause({})
    clause["sparse_vector"]["query_vector"] = features
    body = {"query": clause}
    (hit,) = engine.client.search(index=name, body=body)["hits"]["hits"]
    return hit["_score"]


def test_term_weights_are_stored_with_9_significant_bits_like_rank_features(es):
    engine, name = es
    sparse = {f"t{i}": w for i, w in enumerate(WEIGHTS)}
    doc = {"id": "d", DENSE_FIELD: [1.0, 0.0], SPARSE_FIELD: sparse}
    engine.client.index(index=name, id="d", document=doc, refresh=True)
    stored = quantize_feature(torch.tensor(WEIGHTS)).tolist()
    assert stored[0] == 1.234375 != WEIGHTS[0]
    for i, expected in enumerate(stored):
        assert _score(engine, name, {f"t{i}": 1.0}) == pytest.approx(expected, rel=1e-7)
    # the query's weight is used as sent (no quantisation on that side)
    assert _score(engine, name, {"t0": 1.2345678}) == pytest.approx(1.234375 * 1.2345678, rel=1e-7)
    # sparse-mm's indices keep the vectors in _source, as sent (as OpenSearch does)
    source = engine.client.get(index=name, id="d")["_source"]
    assert source[SPARSE_FIELD]["t0"] == pytest.approx(1.2345678, rel=1e-7)
    assert source[DENSE_FIELD] == [1.0, 0.0]


def test_feature_names_with_dots_and_empty_ones_are_taken_very_long_ones_refused(es):
    engine, name = es
    for i, feature in enumerate(["u.s.", "", "a.b.c", "##s"]):
        doc = {"id": str(i), DENSE_FIELD: [1.0, 1.0], SPARSE_FIELD: {feature: 2.0}}
        engine.client.index(index=name, id=str(i), document=doc, refresh=True)
        assert _score(engine, name, {feature: 1.0}) == 2.0
    too_long = "x" * 32767  # over Lucene's 32,766-byte term limit
    with pytest.raises(BadRequestError, match="immense term"):
        doc = {"id": "long", DENSE_FIELD: [1.0, 1.0], SPARSE_FIELD: {too_long: 1.0}}
        engine.client.index(index=name, id="long", document=doc)
    for bad in (0.0, -1.0):
        with pytest.raises(BadRequestError, match="positive normal float"):
            doc = {"id": "bad", DENSE_FIELD: [1.0, 1.0], SPARSE_FIELD: {"t": bad}}
            engine.client.index(index=name, id="bad", document=doc)


def test_knn_scores_half_of_one_plus_the_cosine(es):
    engine, name = es
    vectors = {"a": [1.0, 0.0], "b": [0.6, 0.8], "c": [-0.8, 0.6]}
    for doc_id, vector in vectors.items():
        doc = {"id": doc_id, DENSE_FIELD: vector, SPARSE_FIELD: {"t": 1.0}}
        engine.client.index(index=name, id=doc_id, document=doc)
    engine.refresh(name)
    hits = engine.client.search(index=name, body=dense_query([0.6, 0.8], k=3))["hits"]["hits"]
    got = {h["_id"]: 2 * h["_score"] - 1 for h in hits}
    assert got == pytest.approx({"a": 0.6, "b": 1.0, "c": 0.0}, abs=1e-6)


def test_managed_node_commands_see_the_sessions_node(elasticsearch_engine):
    if elasticsearch_engine.kind != "managed":
        pytest.skip("the session's Elasticsearch is not a managed node")  # docker or url
    port = elasticsearch_engine.url.rsplit(":", 1)[1]
    status = CliRunner().invoke(main, ["elasticsearch", "status", "--port", port])
    assert status.exit_code == 0 and "Elasticsearch 9.5.3 running" in status.output
    again = CliRunner().invoke(main, ["elasticsearch", "start", "--port", port])
    assert again.exit_code == 0 and "already running" in again.output, again.output
    assert os.path.exists(status.output.split("log ")[1].split()[0])

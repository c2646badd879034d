"""The engine facts that sparse-mm's score reproduction stands on, checked on a real node."""

from __future__ import annotations

import math
import struct

import pytest


def lucene_feature(value: float) -> float:
    """What Lucene's FeatureField keeps of a float: its bits with the low 15 cleared."""
    bits = struct.unpack(">I", struct.pack(">f", value))[0]
    return struct.unpack(">f", struct.pack(">I", (bits >> 15) << 15))[0]


@pytest.fixture
def basics_index(client, index_name):
    client.indices.create(
        index=index_name,
        body={
            "settings": {"index": {"knn": True, "number_of_shards": 1, "number_of_replicas": 0}},
            "mappings": {
                "properties": {
                    "dense": {
                        "type": "knn_vector",
                        "dimension": 3,
                        "method": {
                            "name": "hnsw",
                            "engine": "lucene",
                            "space_type": "cosinesimil",
                            "parameters": {"m": 16, "ef_construction": 100},
                        },
                    },
                    "sparse": {"type": "rank_features"},
                }
            },
        },
    )
    docs = {
        "a": ([1.0, 0.0, 0.0], {"dog": 0.3, "beach": 1.7}),
        "b": ([0.6, 0.8, 0.0], {"dog": 1e-3, "frisbee": 2.5}),
        "c": ([0.0, 0.0, 1.0], {"beach": 0.123456}),
    }
    for doc_id, (dense, sparse) in docs.items():
        client.index(index=index_name, id=doc_id, body={"dense": dense, "sparse": sparse})
    client.indices.refresh(index=index_name)
    return index_name, docs


def test_knn_returns_nearest_first_with_cosine_score(client, basics_index):
    index, docs = basics_index
    query = [0.8, 0.6, 0.0]
    hits = client.search(
        index=index, body={"size": 3, "query": {"knn": {"dense": {"vector": query, "k": 3}}}}
    )["hits"]["hits"]
    cos = {
        doc_id: sum(q * d for q, d in zip(query, dense, strict=True)) / math.hypot(*dense)
        for doc_id, (dense, _) in docs.items()
    }
    assert hits[0]["_id"] == max(cos, key=cos.get) == "b"
    for hit in hits:
        assert hit["_score"] == pytest.approx((1 + cos[hit["_id"]]) / 2, rel=1e-5)


def test_rank_feature_linear_scores_boost_times_truncated_value(client, basics_index):
    index, docs = basics_index
    query_terms = {"dog": 2.0, "beach": 0.5}
    body = {
        "query": {
            "bool": {
                "should": [
                    {"rank_feature": {"field": f"sparse.{t}", "linear": {}, "boost": w}}
                    for t, w in query_terms.items()
                ]
            }
        }
    }
    hits = client.search(index=index, body=body)["hits"]["hits"]
    assert {h["_id"] for h in hits} == {"a", "b", "c"}
    for hit in hits:
        stored = docs[hit["_id"]][1]
        expected = sum(w * lucene_feature(stored[t]) for t, w in query_terms.items() if t in stored)
        assert hit["_score"] == pytest.approx(expected, rel=1e-6)
        untruncated = sum(w * stored[t] for t, w in query_terms.items() if t in stored)
        if hit["_id"] == "a":  # 0.3 and 1.7 are not representable in 9 bits: truncation shows
            assert hit["_score"] < untruncated * (1 - 1e-4)


def test_k_nn_plugin_is_installed(client):
    plugins = client.cat.plugins(format="json")
    assert "opensearch-knn" in {p["component"] for p in plugins}

"""The Elasticsearch adapter's pure logic: its query bodies (the score algebra and the exact
second step), its mapping, and how a lost connection in a bulk round becomes failed items."""

from __future__ import annotations

import json

import pytest
from elasticsearch import Elasticsearch

from indexing.bulk import connection_failure
from indexing.elasticsearch.adapter import ElasticsearchEngine
from indexing.elasticsearch.mapping import index_body
from indexing.elasticsearch.queries import (
    MAX_CANDIDATES,
    all_ids_query,
    candidates_query,
    dense_query,
    exact_query,
    sparse_query,
)
from indexing.engine import as_engine
from indexing.layout import DENSE_FIELD, SPARSE_FIELD, IndexSettings
from sparse_mm.errors import ConfigError, DataError

V = [0.6, 0.8]


def test_the_mapping_keeps_float_hnsw_with_cosine_and_a_sparse_vector():
    body = index_body(2, IndexSettings(m=8, ef_construction=64), {"w1": 0.1})
    props = body["mappings"]["properties"]
    assert props[DENSE_FIELD]["similarity"] == "cosine"
    # not the int8 quantised default: scores must be exact floats
    assert props[DENSE_FIELD]["index_options"] == {"type": "hnsw", "m": 8, "ef_construction": 64}
    assert props[SPARSE_FIELD] == {"type": "sparse_vector"}
    assert body["mappings"]["_meta"]["w1"] == 0.1
    with pytest.raises(ConfigError, match="dense dimension"):
        index_body(4097, IndexSettings())


def test_sparse_query_is_exact_and_encodes_term_names():
    clause = sparse_query({"u.s.": 1.5, "dog": 2.0}, k=7)["query"]["sparse_vector"]
    assert clause["prune"] is False  # 9.x prunes query terms unless told not to
    assert clause["query_vector"] == {"u%2Es%2E": 1.5, "dog": 2.0}
    with pytest.raises(DataError, match="no terms left"):
        sparse_query({})


def test_hybrid_steps_boost_the_knn_clause_by_2_w1_and_the_sparse_clause_by_w2():
    first = candidates_query(V, {"dog": 1.0}, w1=0.3, w2=0.7, window=50)
    assert first["size"] == 50
    # ids from doc values, no stored fields read, no hit count
    assert first["stored_fields"] == "_none_" and first["docvalue_fields"] == ["id"]
    assert first["track_total_hits"] is False
    knn, sparse = first["query"]["bool"]["should"]
    assert (knn["knn"]["k"], knn["knn"]["num_candidates"], knn["knn"]["boost"]) == (50, 50, 0.6)
    assert sparse["sparse_vector"]["boost"] == 0.7
    second = exact_query(V, {"dog": 1.0}, ["a", "b", "c"], w1=0.3, w2=0.7, k=2)
    assert second["size"] == 2
    assert second["query"]["bool"]["filter"] == [{"ids": {"values": ["a", "b", "c"]}}]
    knn = second["query"]["bool"]["should"][0]["knn"]
    # filtered to the candidates and asking for all of them: Lucene scores them exhaustively
    assert knn["filter"] == [{"ids": {"values": ["a", "b", "c"]}}]
    assert knn["k"] == knn["num_candidates"] == 3 and knn["boost"] == 0.6
    placeholder = exact_query(V, {}, ["<ids>"], w1=0.3, w2=0.7, at_most=100)
    assert placeholder["query"]["bool"]["should"][0]["knn"]["k"] == 100
    assert len(placeholder["query"]["bool"]["should"]) == 1  # no terms: no sparse clause


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: candidates_query(V, {}, w1=0.0, w2=1.0), "weights must be positive"),
        (lambda: candidates_query(V, {}, w1=1, w2=1, window=MAX_CANDIDATES + 1), "at most"),
        (lambda: dense_query(V, k=MAX_CANDIDATES + 1), "at most"),
        (lambda: all_ids_query(MAX_CANDIDATES + 1), "at most 10000"),
        (lambda: dense_query([0.0, 0.0]), "all zeros"),
        (lambda: dense_query([float("nan"), 1.0]), "NaN"),
    ],
)
def test_queries_the_engine_would_refuse_are_refused_first(build, message):
    with pytest.raises((ConfigError, DataError), match=message):
        build()


def test_a_bare_client_gets_its_adapter():
    client = Elasticsearch("http://127.0.0.1:9")
    engine = as_engine(client)
    assert isinstance(engine, ElasticsearchEngine) and engine.client is client
    assert engine.address() == "127.0.0.1:9"
    assert as_engine(engine) is engine


def test_a_lost_connection_in_a_bulk_round_fails_every_unsettled_item():
    engine = ElasticsearchEngine(Elasticsearch("http://127.0.0.1:9", max_retries=0))
    actions = [{"_op_type": "index", "_index": "x", "_id": str(i), "_source": {}} for i in range(3)]
    outcomes = list(engine.bulk(actions, max_chunk_bytes=1 << 20, request_timeout=1.0))
    assert [ok for ok, _ in outcomes] == [False] * 3
    items = [item["index"] for _, item in outcomes]
    assert [i["_id"] for i in items] == ["0", "1", "2"]
    assert all(i["status"] == "N/A" and "exception" in i for i in items)  # retried as lost
    # the one-line reason names the refusal, as OpenSearch's does (elastic_transport's own
    # message is only "Connection error")
    reason = connection_failure(items[0]["exception"])
    assert reason == "ConnectionError: [Errno 111] Connection refused"


def test_without_retries_leaves_the_callers_client_alone():
    client = Elasticsearch("http://127.0.0.1:9", max_retries=3)
    quiet = ElasticsearchEngine(client).without_retries()
    assert quiet.client is not client and quiet.client._max_retries == 0
    assert client._max_retries == 3


class _Answer:
    def __init__(self, body):
        self.body = body


class _AliasMovingClient:
    """Answers step 1 from index `old`; records where each request went."""

    def __init__(self):
        self.asked = []
        self.indices = self

    def get_mapping(self, index):  # no mapping answered: the one-request probe waits
        return {}

    def search(self, index, body):
        self.asked.append(index)
        hit = {"_id": "a", "_index": "photos-old", "_score": 1.5, "_source": {},
               "fields": {"id": ["a"]}}  # fmt: skip
        return _Answer({"took": 1, "hits": {"hits": [hit]}})


def test_the_exact_step_asks_the_index_that_gave_the_candidates():
    from indexing.search import SearchOptions

    client = _AliasMovingClient()
    result = ElasticsearchEngine(client).search(
        "photos", V, {"dog": 1.0}, SearchOptions(mode="hybrid", k=1), 0.1, 0.2, []
    )
    # the alias may have moved to a new index in between: never mix its scores in
    assert client.asked == ["photos", "photos-old"]
    assert result.hits[0].index == "photos-old" and result.round_trips == 2


class _NodeWithDenseVectorQuery:
    """A stand-in for an Elasticsearch that knows the exact dense_vector query (9.6+): it
    validates the probe, scores it like knn (or `off` from it), and records every search."""

    def __init__(self, off: float = 0.0):
        self.off, self.bodies = off, []
        self.indices = self

    def get_mapping(self, index):
        return {"photos-1": {"mappings": {"properties": {"dense": {"dims": 2}}}}}

    def validate_query(self, index, body, explain):
        assert "dense_vector" in body["query"]
        return {"valid": True}

    def search(self, index, body):
        self.bodies.append(body)
        query = json.dumps(body.get("query", {}))
        score = 0.75 + (self.off if "dense_vector" in query else 0.0)
        hit = {"_id": "a", "_index": "photos-1", "_score": score, "_source": {},
               "fields": {"id": ["a"]}}  # fmt: skip
        return _Answer({"took": 1, "hits": {"hits": [hit]}})


def test_a_node_with_the_exact_dense_vector_query_answers_the_hybrid_in_one_request():
    from indexing.search import SearchOptions

    node = _NodeWithDenseVectorQuery()
    engine = ElasticsearchEngine(node)
    available, why = engine.one_request("photos")
    assert available and "checked against knn on document 'a'" in why
    node.bodies.clear()
    result = engine.search(
        "photos", V, {"dog": 1.0}, SearchOptions(mode="hybrid", k=1), 0.1, 0.2, []
    )
    (body,) = node.bodies  # one request: candidates, then the exact rescore of the window
    rescore = body["rescore"]["query"]["rescore_query"]["bool"]["should"]
    assert rescore[0] == {"dense_vector": {"field": "dense", "query_vector": V, "boost": 0.2}}
    assert rescore[1]["sparse_vector"]["boost"] == 0.2
    assert (
        result.round_trips == 1 and engine.capabilities("photos")["one_request_hybrid"]["available"]
    )


def test_a_dense_vector_query_that_scores_otherwise_is_not_used():
    engine = ElasticsearchEngine(_NodeWithDenseVectorQuery(off=0.25))
    available, why = engine.one_request("photos")
    assert not available and "scores" in why

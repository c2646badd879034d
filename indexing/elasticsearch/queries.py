"""Elasticsearch query bodies: dense (`knn` query), sparse (`sparse_vector` query) and a hybrid
that returns exactly the integrated score without scripts (the minimal distribution has no
painless; the full one has, but one design serves both).

Engine scores (checked on the node):
- the `knn` query on a cosine `dense_vector` scores (1 + cos) / 2, like OpenSearch's;
- the `sparse_vector` query with `prune: false` scores the exact dot product of the query's
  weights (as sent, float32) and the stored weights (9 significant bits, mapping.py);
- a `bool` sums its `should` clauses' scores, each times its boost.
So bool(should: [knn boosted 2 * w1, sparse_vector boosted w2]) scores
w1 * (1 + cos) + w2 * sparse, and the integrated score is that minus w1 (query_terms.model_score),
as on OpenSearch.

A `knn` query scores only the documents its HNSW search found, so one bool cannot be exact for
documents the graph search missed. Hybrid therefore takes two requests:
1. candidates: the bool above with the knn clause asking for `window` neighbours, top `window`
   hits, ids only;
2. exact scores of those candidates: the same bool restricted to their ids, its knn clause
   filtered to the same ids with k = the number of ids. Lucene searches a filtered k-NN query
   exhaustively when the filter matches no more documents than k, so every candidate gets its
   exact cosine, and the sparse part is exact anyway.
Round trips: dense 1, sparse 1, hybrid 2; `exact` (every document, small indices only) 2: the
ids of all documents, then step 2 over them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from indexing.codec import encode_term
from indexing.layout import DENSE_FIELD, SPARSE_FIELD
from indexing.query_terms import DEFAULT_KNN_K, DEFAULT_WINDOW, DENSE_EF_SEARCH, checked_vector
from sparse_mm.errors import ConfigError, DataError

MAX_CANDIDATES = 10_000  # the knn query's limit on num_candidates (and so on a window)
# Step 1 needs only the ids of its `window` hits: read from the `id` field's doc values, with no
# stored fields fetched. Fetching `_id` alone still decompresses each hit's stored-fields block,
# which holds whole documents' _source (vectors included): hundreds of hits cost more than
# the search (bench/results/peers: ES hybrid took 35 ms at 100k documents, against 2-5 ms for
# dense and sparse). No hit count either: counting keeps Lucene from skipping.
NO_HIT_COUNT = {"track_total_hits": False}
IDS_ONLY = {"stored_fields": "_none_", "docvalue_fields": ["id"], **NO_HIT_COUNT}


def _knn(
    vector: object, k: int, num_candidates: int, boost: float = 1.0, ids=None, filters=None
) -> dict:
    clause: dict = {
        "field": DENSE_FIELD,
        "query_vector": vector,
        "k": k,
        "num_candidates": num_candidates,
        "boost": boost,
    }
    # the knn query's own filter is a pre-filter: the k nearest among the filtered documents
    if ids is not None:
        clause["filter"] = [{"ids": {"values": list(ids)}}]
    elif filters:
        clause["filter"] = list(filters)
    return {"knn": clause}


def _filtered(query: dict, filters: list | None) -> dict:
    """`query` restricted to the documents `filters` keep (scores unchanged)."""
    return {"bool": {"must": [query], "filter": filters}} if filters else query


def sparse_clause(terms: Mapping[str, float], boost: float = 1.0) -> dict:
    """One `sparse_vector` query over the encoded term names, no pruning (exact)."""
    vector = {encode_term(t): float(w) for t, w in terms.items()}
    return {
        "sparse_vector": {
            "field": SPARSE_FIELD,
            "query_vector": vector,
            "prune": False,
            "boost": boost,
        }
    }


def _check_window(n: int, what: str) -> None:
    if n > MAX_CANDIDATES:
        raise ConfigError(
            f"{what} is {n}; Elasticsearch's knn query takes at most {MAX_CANDIDATES} candidates"
        )


def dense_query(
    vector: Sequence[float],
    *,
    k: int = 10,
    num_candidates: int = DENSE_EF_SEARCH,
    filters: list | None = None,
) -> dict:
    """Approximate k-NN (`num_candidates`: the default profile's ef_search unless given) among
    the documents `filters` keep; a hit's cosine is 2 * score - 1."""
    candidates = max(num_candidates, k)
    _check_window(candidates, "the number of k-NN candidates")
    knn = _knn(checked_vector(vector), k, candidates, filters=filters)
    return {"size": k, **NO_HIT_COUNT, "query": knn}


def sparse_query(terms: Mapping[str, float], *, k: int = 10, filters: list | None = None) -> dict:
    """Sum over shared terms of query weight x stored document weight; score is that sum."""
    if not terms:
        raise DataError("the query has no terms left to search the sparse field with")
    return {"size": k, **NO_HIT_COUNT, "query": _filtered(sparse_clause(terms), filters)}


def _weights(w1: float, w2: float) -> None:
    if w1 <= 0 or w2 <= 0:
        raise ConfigError(f"hybrid weights must be positive, got w1={w1}, w2={w2}")


def candidates_query(
    vector: Sequence[float],
    terms: Mapping[str, float],
    *,
    w1: float,
    w2: float,
    window: int = DEFAULT_WINDOW,
    num_candidates: int | None = None,
    filters: list | None = None,
    knn_k: int = DEFAULT_KNN_K,
) -> dict:
    """Step 1 of hybrid: the top `window` documents of knn + sparse, ids only, among the
    documents `filters` keep (the knn clause pre-filtered, so its neighbours are all kept
    ones). `knn_k`: the neighbours the knn clause adds (at most the window)."""
    _weights(w1, w2)
    _check_window(window, "the hybrid window")
    neighbours = min(knn_k or window, window)
    candidates = max(num_candidates or neighbours, neighbours)
    _check_window(candidates, "the hybrid window")
    should = [_knn(checked_vector(vector), neighbours, candidates, 2 * w1, filters=filters)]
    if terms:
        should.append(sparse_clause(terms, w2))
    query: dict = {"should": should}
    if filters:
        query.update(filter=filters, minimum_should_match=1)
    return {"size": window, **IDS_ONLY, "query": {"bool": query}}


def all_ids_query(count: int, filters: list | None = None) -> dict:
    """Step 1 of an exact search: the ids of every document `filters` keep (at most
    MAX_CANDIDATES)."""
    _check_window(count, "the number of documents an exact search scores")
    query = {"bool": {"filter": filters}} if filters else {"match_all": {}}
    return {"size": count, **IDS_ONLY, "sort": ["_doc"], "query": query}


def exact_query(
    vector: Sequence[float],
    terms: Mapping[str, float],
    ids: Sequence[str],
    *,
    w1: float,
    w2: float,
    k: int = 10,
    at_most: int | None = None,
) -> dict:
    """Step 2: exactly w1 * (1 + cos) + w2 * sparse for each of `ids` (the top k of them).
    `at_most`: the most ids the request will carry (default: len(ids)), when `ids` are
    placeholders for a client to fill in; the knn clause must ask for that many neighbours."""
    _weights(w1, w2)
    n = max(at_most or len(ids), 1)
    _check_window(n, "the number of documents to score exactly")
    should = [_knn(checked_vector(vector), n, n, 2 * w1, ids=ids)]
    if terms:
        should.append(sparse_clause(terms, w2))
    query = {"bool": {"filter": [{"ids": {"values": list(ids)}}], "should": should}}
    return {"size": k, **NO_HIT_COUNT, "query": query}


def dense_vector_clause(vector: object, boost: float = 1.0, field: str = DENSE_FIELD) -> dict:
    """The exact, k-free `dense_vector` query (Elasticsearch 9.6+; unknown to 9.5): every
    matching document's similarity, no HNSW search."""
    return {"dense_vector": {"field": field, "query_vector": vector, "boost": boost}}


def one_request_hybrid(
    vector: Sequence[float],
    terms: Mapping[str, float],
    *,
    w1: float,
    w2: float,
    k: int = 10,
    window: int = DEFAULT_WINDOW,
    num_candidates: int | None = None,
    filters: list | None = None,
    knn_k: int = DEFAULT_KNN_K,
) -> dict:
    """The hybrid in ONE request where the engine has the exact `dense_vector` query
    (`ElasticsearchEngine.one_request`): step 1's candidates, then the top `window` of them
    rescored by bool(should: [dense_vector boosted 2 * w1, sparse_vector boosted w2]), which
    scores w1 * (1 + cos) + w2 * sparse for each, as OpenSearch's rescore does."""
    first = candidates_query(
        vector, terms, w1=w1, w2=w2, window=window, num_candidates=num_candidates,
        filters=filters, knn_k=knn_k,
    )  # fmt: skip
    exact = [dense_vector_clause(checked_vector(vector), 2 * w1)]
    if terms:
        exact.append(sparse_clause(terms, w2))
    window = max(window, k)
    return {
        "size": k,
        **NO_HIT_COUNT,
        "query": first["query"],
        "rescore": {
            "window_size": window,
            "query": {
                "rescore_query": {"bool": {"should": exact}},
                "query_weight": 0.0,
                "rescore_query_weight": 1.0,
            },
        },
    }

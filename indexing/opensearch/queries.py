"""OpenSearch query builders: dense (k-NN), sparse (`rank_feature` clauses) and hybrid (the
integrated score).

Engine scores and how each mode turns them back into the model's scores:
- k-NN and the exact `knn_score` script with `cosinesimil` both score (1 + cos) / 2;
- a `rank_feature` clause with the `linear` function scores boost * stored value, the stored
  value being the document's weight truncated to 9 significant bits (Lucene's FeatureField);
- hybrid = bool(should: [dense boosted 2*w1, bool(sparse clauses) boosted w2]) scores
  w1 * (1 + cos) + w2 * sparse, so the integrated score is the engine's score minus w1.
Hybrid candidates come from the union of a k-NN clause (top `window` by HNSW) and the sparse
clauses, in one flat disjunction ranked like the integrated score; the candidate window is then
rescored exactly (the vector script scores documents the k-NN clause did not reach), so every
returned score is exact. `exact=True` skips HNSW and scores every document by brute force: the
engine-side oracle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from indexing.codec import encode_term
from indexing.layout import DENSE_FIELD, SPARSE_FIELD
from indexing.query_terms import DEFAULT_KNN_K, DEFAULT_WINDOW, checked_vector
from sparse_mm.errors import ConfigError, DataError

# sparse-mm never reads the hit count; counting hits (by default up to 10,000) keeps Lucene from
# skipping the documents that cannot reach the top k (block-max WAND / MaxScore) until then.
NO_HIT_COUNT = {"track_total_hits": False}


def sparse_clauses(terms: Mapping[str, float]) -> list[dict]:
    """One `rank_feature` clause per query term, boost = the query's weight for the term."""
    return [
        {"rank_feature": {"field": f"{SPARSE_FIELD}.{encode_term(t)}", "linear": {}, "boost": w}}
        for t, w in terms.items()
    ]


def _dense_script(vector: object, boost: float, filters: list | None = None) -> dict:
    script = {
        "source": "knn_score",
        "lang": "knn",
        "params": {"field": DENSE_FIELD, "query_value": vector, "space_type": "cosinesimil"},
    }
    scored = {"bool": {"filter": filters}} if filters else {"match_all": {}}
    return {"script_score": {"query": scored, "script": script, "boost": boost}}


def _knn(
    vector: object, k: object, ef_search: int | None, boost: float = 1.0, filters=None
) -> dict:
    clause: dict = {"vector": vector, "k": k, "boost": boost}
    if ef_search:
        clause["method_parameters"] = {"ef_search": ef_search}
    if filters:  # the Lucene engine's filtered search: the k nearest among the filtered set
        clause["filter"] = {"bool": {"filter": filters}}
    return {"knn": {DENSE_FIELD: clause}}


def _any_of(clauses: list, filters: list | None, boost: float | None = None) -> dict:
    """bool(should: clauses), under `filters`: a filter clause makes `should` optional, so at
    least one must match (else every filtered document would come back with score 0)."""
    query: dict = {"should": clauses}
    if filters:
        query.update(filter=filters, minimum_should_match=1)
    if boost is not None:
        query["boost"] = boost
    return {"bool": query}


def dense_query(
    vector: Sequence[float],
    *,
    k: int = 10,
    ef_search: int | None = None,
    filters: list | None = None,
) -> dict:
    """Approximate k-NN (among the documents `filters` keep); a hit's cosine is 2 * score - 1."""
    knn = _knn(checked_vector(vector), k, ef_search and max(ef_search, k), filters=filters)
    return {"size": k, **NO_HIT_COUNT, "query": knn}


def sparse_query(terms: Mapping[str, float], *, k: int = 10, filters: list | None = None) -> dict:
    """Sum over shared terms of query weight x stored document weight; score is that sum."""
    if not terms:
        raise DataError("the query has no terms left to search the sparse field with")
    return {"size": k, **NO_HIT_COUNT, "query": _any_of(sparse_clauses(terms), filters)}


def hybrid_query(
    vector: Sequence[float],
    terms: Mapping[str, float],
    *,
    w1: float,
    w2: float,
    k: int = 10,
    window: int = DEFAULT_WINDOW,
    ef_search: int | None = None,
    exact: bool = False,
    filters: list | None = None,
    knn_k: int = DEFAULT_KNN_K,
) -> dict:
    """The integrated score w1 * cos + w2 * sparse (engine score minus w1; see the module doc),
    over the documents `filters` keep. `knn_k`: the neighbours the k-NN clause adds to the
    candidates (at most the window)."""
    if w1 <= 0 or w2 <= 0:
        raise ConfigError(f"hybrid weights must be positive, got w1={w1}, w2={w2}")
    window = max(window, k)
    neighbours = min(knn_k or window, window)
    return hybrid_body(
        checked_vector(vector),
        sparse_clauses(terms),
        w1=w1,
        w2=w2,
        k=k,
        window=None if exact else window,
        # the k-NN clause searches as wide as the neighbours it adds (the index's own ef_search
        # is dense mode's, for recall@10 of a whole answer), as Elasticsearch's num_candidates
        ef_search=max(ef_search or neighbours, neighbours),
        filters=filters,
        knn_k=neighbours,
    )


def hybrid_body(
    vector: object,
    clauses: list,
    *,
    w1: float,
    w2: float,
    k: object,
    window: object | None,
    ef_search: int | None = None,
    filters: list | None = None,
    knn_k: object | None = None,
) -> dict:
    """The hybrid request from its parts, placed as given (values or template placeholders):
    `window` None scores every document exactly; otherwise k-NN + sparse candidates, the top
    `window` of them rescored exactly. `filters` (query clauses) apply to every phase: the
    k-NN clause searches among the filtered documents (pre-filtering, so the window is full of
    them), the sparse clauses and the exact rescore match only them."""
    sparse_part = [{"bool": {"should": clauses, "boost": w2}}] if clauses else []
    exact_scoring = _any_of([_dense_script(vector, 2 * w1, filters), *sparse_part], filters)
    if window is None:
        return {"size": k, **NO_HIT_COUNT, "query": exact_scoring}
    # Candidates: one flat disjunction, the k-NN clause beside every rank_feature clause, so
    # that Lucene skips non-competitive documents across all of them (a nested sparse bool
    # made the query 5x slower at 1M documents: bench/results/report.md of commit 686bb3b).
    # Their score is the integrated one divided by w2 (the k-NN clause is boosted 2 * w1 / w2
    # instead of every clause by w2, which a template cannot do): the same order, and the
    # rescore replaces it.
    knn = _knn(vector, knn_k or window, ef_search, 2 * w1 / w2, filters)
    candidates = _any_of([knn, *clauses], filters)
    return {
        "size": k,
        **NO_HIT_COUNT,
        "query": candidates,
        "rescore": {
            "window_size": window,
            "query": {
                "rescore_query": exact_scoring,
                "query_weight": 0.0,
                "rescore_query_weight": 1.0,
            },
        },
    }

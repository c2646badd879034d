"""Query builders: dense (k-NN), sparse (`rank_feature` clauses) and hybrid (the integrated score).

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

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from indexing.codec import encode_term
from indexing.mapping import DENSE_FIELD, SPARSE_FIELD
from sparse_mm.errors import ConfigError, DataError

MODES = ("hybrid", "sparse", "dense")
DEFAULT_MAX_CLAUSES = 1024  # OpenSearch's default indices.query.bool.max_clause_count
# Query term weights sparse-mm sends. The engine scores in float32: a clause scores
# boost x stored weight, and past 3.4e38 a score is Infinity (and some queries are refused).
# A sparse head's weights are log-saturated, tens at most; 1e4 leaves room for any real model
# while 1,024 clauses x 1e4 x stored weights up to 3e31 stay finite. Below float32's smallest
# normal number a weight rounds to a boost of (nearly) 0 and counts as 0, i.e. it is dropped.
MAX_QUERY_WEIGHT = 1e4
MIN_QUERY_WEIGHT = 2.0**-126
# HNSW candidates of a dense-mode search (raised to k when k is larger). With ef = k = 10, at
# 1M documents the k-NN top-10 shared 0.895 of its hits with exact search; with 64, 0.973
# (bench/results/report.md). Hybrid searches use their candidate window (100) instead.
DENSE_EF_SEARCH = 64


@dataclass(frozen=True)
class PruneReport:
    kept: int
    dropped_topk: int = 0
    dropped_min_weight: int = 0
    dropped_clause_limit: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_topk + self.dropped_min_weight + self.dropped_clause_limit

    def describe(self) -> str:
        parts = [
            f"{n} {why}"
            for n, why in (
                (self.dropped_min_weight, "below the minimum weight"),
                (self.dropped_topk, "beyond the top-k"),
                (self.dropped_clause_limit, "beyond the engine's clause limit"),
            )
            if n
        ]
        return f"query terms: kept {self.kept}, dropped " + ", ".join(parts) if parts else ""


def prune_terms(
    terms: Mapping[str, float],
    *,
    top_k: int | None = None,
    min_weight: float = 0.0,
    max_clauses: int = DEFAULT_MAX_CLAUSES,
) -> tuple[dict[str, float], PruneReport]:
    """Keep the heaviest query terms: weight > `min_weight`, at most `top_k` and `max_clauses`.

    Raises DataError for a weight that is NaN, infinite, negative or above MAX_QUERY_WEIGHT;
    weights below MIN_QUERY_WEIGHT count as 0.
    """
    for token, weight in terms.items():
        if not math.isfinite(weight) or weight < 0:
            raise DataError(
                f"query term {token!r} has weight {weight}; weights must be finite >= 0"
            )
        if weight > MAX_QUERY_WEIGHT:
            raise DataError(
                f"query term {token!r} has weight {weight:.6g}, above the {MAX_QUERY_WEIGHT:g} "
                "that sparse-mm sends (the engine scores in float32); check the model's outputs"
            )
    positive = sorted(
        ((t, float(w)) for t, w in terms.items() if w >= MIN_QUERY_WEIGHT),
        key=lambda tw: (-tw[1], tw[0]),
    )
    above = [(t, w) for t, w in positive if w > min_weight]
    limit_k = len(above) if top_k is None else min(top_k, len(above))
    limit = min(limit_k, max_clauses)
    report = PruneReport(
        kept=limit,
        dropped_min_weight=len(positive) - len(above),
        dropped_topk=len(above) - limit_k,
        dropped_clause_limit=limit_k - limit,
    )
    return dict(above[:limit]), report


def sparse_clauses(terms: Mapping[str, float]) -> list[dict]:
    """One `rank_feature` clause per query term, boost = the query's weight for the term."""
    return [
        {"rank_feature": {"field": f"{SPARSE_FIELD}.{encode_term(t)}", "linear": {}, "boost": w}}
        for t, w in terms.items()
    ]


def _dense_script(vector: object, boost: float) -> dict:
    script = {
        "source": "knn_score",
        "lang": "knn",
        "params": {"field": DENSE_FIELD, "query_value": vector, "space_type": "cosinesimil"},
    }
    return {"script_score": {"query": {"match_all": {}}, "script": script, "boost": boost}}


def _knn(vector: object, k: object, ef_search: int | None, boost: float = 1.0) -> dict:
    clause: dict = {"vector": vector, "k": k, "boost": boost}
    if ef_search:
        clause["method_parameters"] = {"ef_search": ef_search}
    return {"knn": {DENSE_FIELD: clause}}


def checked_vector(vector: Sequence[float]) -> list[float]:
    """The query's dense vector as a list; DataError for a NaN, an infinity or all zeros (the
    cosine is undefined for it, and the engine refuses it)."""
    values = [float(v) for v in vector]
    if not all(math.isfinite(v) for v in values):
        raise DataError("the query's dense vector has a NaN or an infinite value")
    if not any(values):
        raise DataError("the query's dense vector is all zeros; its cosine is undefined")
    return values


def dense_query(vector: Sequence[float], *, k: int = 10, ef_search: int | None = None) -> dict:
    """Approximate k-NN; a hit's cosine is 2 * score - 1."""
    return {"size": k, "query": _knn(checked_vector(vector), k, ef_search and max(ef_search, k))}


def sparse_query(terms: Mapping[str, float], *, k: int = 10) -> dict:
    """Sum over shared terms of query weight x stored document weight; score is that sum."""
    if not terms:
        raise DataError("the query has no terms left to search the sparse field with")
    return {"size": k, "query": {"bool": {"should": sparse_clauses(terms)}}}


def hybrid_query(
    vector: Sequence[float],
    terms: Mapping[str, float],
    *,
    w1: float,
    w2: float,
    k: int = 10,
    window: int = 100,
    ef_search: int | None = None,
    exact: bool = False,
) -> dict:
    """The integrated score w1 * cos + w2 * sparse (engine score minus w1; see the module doc)."""
    if w1 <= 0 or w2 <= 0:
        raise ConfigError(f"hybrid weights must be positive, got w1={w1}, w2={w2}")
    window = max(window, k)
    return hybrid_body(
        checked_vector(vector),
        sparse_clauses(terms),
        w1=w1,
        w2=w2,
        k=k,
        window=None if exact else window,
        ef_search=ef_search and max(ef_search, window),
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
) -> dict:
    """The hybrid request from its parts, placed as given (values or template placeholders):
    `window` None scores every document exactly; otherwise k-NN + sparse candidates, the top
    `window` of them rescored exactly."""
    sparse_part = [{"bool": {"should": clauses, "boost": w2}}] if clauses else []
    exact_scoring = {"bool": {"should": [_dense_script(vector, 2 * w1), *sparse_part]}}
    if window is None:
        return {"size": k, "query": exact_scoring}
    # Candidates: one flat disjunction, the k-NN clause beside every rank_feature clause, so
    # that Lucene skips non-competitive documents across all of them (a nested sparse bool
    # made the query 5x slower at 1M documents, bench/results/report.md). Their score is the
    # integrated one divided by w2 (the k-NN clause is boosted 2 * w1 / w2 instead of every
    # clause by w2, which a template cannot do): the same order, and the rescore replaces it.
    candidates = {"bool": {"should": [_knn(vector, window, ef_search, 2 * w1 / w2), *clauses]}}
    return {
        "size": k,
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


def model_score(engine_score: float, mode: str, w1: float) -> float:
    """Turn an engine score back into the model's score for `mode`."""
    if mode == "dense":
        return 2.0 * engine_score - 1.0
    if mode == "hybrid":
        return engine_score - w1
    if mode == "sparse":
        return engine_score
    raise ConfigError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")

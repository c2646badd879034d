"""What every engine's query starts from: the modes, the checks on a query's dense vector and
term weights, the pruning of query terms, and turning an engine score back into the model's.

Every adapter scores so that dense = (1 + cos) / 2 and hybrid = w1 * (1 + cos) + w2 * sparse;
`model_score` undoes that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from indexing.layout import DEFAULT_PROFILE, PROFILES
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
# HNSW candidates of a dense-mode search (raised to k when k is larger): the default index
# profile's (indexing.layout.PROFILES, where its measured recall is);
# `sparse-mm query` uses the one recorded in the index's `_meta`. Hybrid searches use their
# candidate window instead.
DENSE_EF_SEARCH = PROFILES[DEFAULT_PROFILE].ef_search
# Hybrid candidates rescored exactly (raised to k), every engine's and the CLI's default. At
# 100k documents a window of 100 gave a top-10 identical to exact search in 95% of 200 queries on
# both engines, 200 in 100% (bench/results/engines_100k_windows.json); at 1M images of the demo
# model, 200 gave 91.5% (bench/results/model_1m), 400 98% and 600 100% (runs on an uncommitted
# tree behind commit b907f1c, in its history only); the report at a clean commit
# (bench/results/peers) has 600 at 100% on both engines and workloads at 1M: the window a
# collection needs grows with it.
DEFAULT_WINDOW = 600


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


def checked_vector(vector: Sequence[float]) -> list[float]:
    """The query's dense vector as a list; DataError for a NaN, an infinity or all zeros (the
    cosine is undefined for it, and the engine refuses it)."""
    values = [float(v) for v in vector]
    if not all(math.isfinite(v) for v in values):
        raise DataError("the query's dense vector has a NaN or an infinite value")
    if not any(values):
        raise DataError("the query's dense vector is all zeros; its cosine is undefined")
    return values


def model_score(engine_score: float, mode: str, w1: float) -> float:
    """Turn an engine score back into the model's score for `mode`."""
    if mode == "dense":
        return 2.0 * engine_score - 1.0
    if mode == "hybrid":
        return engine_score - w1
    if mode == "sparse":
        return engine_score
    raise ConfigError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")

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
# Hybrid candidates at k = 10: the top DEFAULT_WINDOW of the candidate query are rescored
# exactly, and its k-NN clause adds DEFAULT_KNN_K of them (the rest come from the sparse
# clauses). With the k-NN clause asking for the whole window, its neighbours filled the window
# and crowded out documents that only the sparse part ranks high (at 1M images of the demo
# model 200 left 2.5% of top-10s short of exact). With 50 neighbours, the candidate order is
# the same whatever the window, so a wider window is a superset and never less exact. Chosen on
# two seeds' grids at 1M (100 queries each, both engines, both workloads):
# bench/results/choice_1m_seed7 was exact from a window of 100; in bench/results/
# choice_1m_seed11 the model workload, a world the demo model was not trained on (its dense
# and sparse heads disagree there, as a model used outside its domain), missed 3.8% of top-10
# hits at 100, 0.5% at 200, 0.1% at 400 and none at 1000; lsr-30k was exact from 100 on both.
# 1000 is the smallest window exact on both; the peers report's seed 13 (held-out queries)
# confirms it. Both grow with k (candidate_window).
DEFAULT_WINDOW = 1000
DEFAULT_KNN_K = 50
MEASURED_UP_TO = 1_000_000  # documents: the largest collection the choice was measured on
# Both engines' limit on a rescored window (OpenSearch's index.max_rescore_window and
# Elasticsearch's knn num_candidates, 10,000 by default): a default never asks for more.
MAX_WINDOW = 10_000
# A filter that keeps at most this many documents is searched exactly (brute force over the
# kept documents): a k-NN search restricted to a few is approximate and cheap to avoid.
EXACT_FILTERED = 2_000


def window_of(options) -> tuple[int, int]:
    """(window, k-NN neighbours) of SearchOptions, the defaults for its k where it left them
    open (indexing.search.resolved fills them in, with the index's size when known)."""
    window, knn_k = candidate_window(options.k)
    return max(options.window or window, options.k), options.knn_k or knn_k


def candidate_window(k: int, n_docs: int | None = None) -> tuple[int, int]:
    """(window, k-NN neighbours) for `k` hits over `n_docs` documents: the measured defaults at
    k = 10, in proportion to k above it; above MEASURED_UP_TO documents (not measured) twice
    as many per tenfold, erring towards exactness; never past MAX_WINDOW (nor below k)."""
    scale = max(1.0, k / 10)
    if n_docs and n_docs > MEASURED_UP_TO:
        scale *= 2 ** math.ceil(math.log10(n_docs / MEASURED_UP_TO))
    window = max(min(math.ceil(DEFAULT_WINDOW * scale), MAX_WINDOW), k)
    return window, min(math.ceil(DEFAULT_KNN_K * scale), window)


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

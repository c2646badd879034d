"""Pure numbers: latency percentiles, the latency = a + b * N fit, parity and R@k."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

K = 10
TIE_REL = 1e-6  # scores this close (relatively) to the 10th exact score count as tied with it


def percentiles(values_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 (linear interpolation between closest ranks), mean; NaN when empty."""
    if len(values_ms) == 0:
        return {"p50": math.nan, "p95": math.nan, "p99": math.nan, "mean": math.nan}
    a = np.asarray(values_ms, dtype=np.float64)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(a.mean())}


def fit_linear(n: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Least-squares y = a + b * n. With one point: a = y, b = 0. `r2` is NaN when y is flat."""
    x, t = np.asarray(n, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(t)
    x, t = x[keep], t[keep]
    if len(x) == 0:
        return {"a": math.nan, "b": math.nan, "r2": math.nan, "points": 0}
    if len(set(x.tolist())) < 2:
        return {"a": float(t.mean()), "b": 0.0, "r2": math.nan, "points": len(x)}
    b, a = np.polyfit(x, t, 1)
    residual = float(((t - (a + b * x)) ** 2).sum())
    total = float(((t - t.mean()) ** 2).sum())
    r2 = 1 - residual / total if total > 0 else math.nan
    return {"a": float(a), "b": float(b), "r2": r2, "points": len(x)}


def query_parity(
    engine_ids: Sequence[str],
    engine_scores: Sequence[float],
    exact_ids: Sequence[str],
    exact_scores: Sequence[float],
    exact_score_of: Mapping[str, float],
    k: int = K,
) -> dict[str, float]:
    """One query's agreement between the engine's top-k and the exact top-k.

    `exact_score_of` gives the exact score of every id the engine returned. Returns:
    overlap (|E ∩ R| / k), overlap_ties (an engine hit whose exact score ties the k-th exact
    score also counts), recall (|E ∩ R| / |R+|, R+ the exact hits with a positive score, the
    ones an engine can return), identical (1.0 if the ranked lists are equal) and the relative
    score errors of the engine's hits against their exact scores."""
    e, r = list(engine_ids[:k]), list(exact_ids[:k])
    ref = set(r)
    common = sum(1 for i in e if i in ref)
    kth = exact_scores[len(r) - 1] if r else math.nan
    tied = sum(
        1
        for i in e
        if i not in ref and abs(exact_score_of[i] - kth) <= TIE_REL * max(abs(kth), 1e-30)
    )
    positive = sum(1 for s in exact_scores[:k] if s > 0) or len(r)
    errors = [
        abs(s - exact_score_of[i]) / abs(exact_score_of[i]) if exact_score_of[i] else abs(s)
        for i, s in zip(e, engine_scores, strict=False)
    ]
    return {
        "overlap": common / k,
        "overlap_ties": min(common + tied, k) / k,
        "recall": min(common, positive) / positive if positive else 1.0,
        "identical": float(e == r),
        "errors": errors,
    }


def aggregate_parity(per_query: Sequence[dict]) -> dict[str, float]:
    """Means over queries, and max / median of the relative score errors of every hit."""
    errors = [x for q in per_query for x in q["errors"]]
    n = max(len(per_query), 1)
    return {
        f"overlap@{K}": sum(q["overlap"] for q in per_query) / n,
        f"overlap@{K}_ties": sum(q["overlap_ties"] for q in per_query) / n,
        f"recall@{K}_vs_exact": sum(q["recall"] for q in per_query) / n,
        f"top{K}_identical": sum(q["identical"] for q in per_query) / n,
        "score_rel_err_max": max(errors) if errors else 0.0,
        "score_rel_err_median": float(np.median(errors)) if errors else 0.0,
    }


def recall_at(ranked: Sequence[Sequence[str]], relevant: Sequence[str], ks=(1, 5, 10)) -> dict:
    """R@k: the fraction of queries whose relevant id is in their first k results."""
    n = max(len(relevant), 1)
    return {
        f"R@{k}": sum(rel in list(ids[:k]) for ids, rel in zip(ranked, relevant, strict=True)) / n
        for k in ks
    }

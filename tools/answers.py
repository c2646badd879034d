"""Checking a load run's answers against exact search (tools.load): a sample of the answers the
clients received, each compared with the exact in-memory top-k (bench.reference), so that a run
that answered quickly but wrongly says so.

An answer is a mismatch when a hit's score differs from its exact score by more than
`SCORE_REL_TOL`, or, in a mode whose top-k must equal the exact one (`EXACT_MODES`), when its
ids differ from the exact top-k other than among hits whose exact scores tie at the cut. Dense
and hybrid candidates come from HNSW, so their ids may differ: that is reported as
recall@k against exact, not as a mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.collection import Queries
from bench.metrics import K, query_parity
from bench.reference import exact_scores
from sparse_mm.retriever import ExactRetriever, top_k

SCORE_REL_TOL = 1e-4  # the hybrid parity target's bound; every mode's scores are exact
EXACT_MODES = ("sparse",)
BLOCK = 32  # queries whose full exact score rows are held at once


@dataclass(frozen=True)
class Answer:
    """What one request returned: query `query` (its index in the run's queries) in `mode`."""

    query: int
    mode: str
    ids: tuple[str, ...]
    scores: tuple[float, ...]


def check_answers(
    answers: Sequence[Answer], retriever: ExactRetriever, queries: Queries, k: int = K
) -> dict:
    """Per mode and overall: answers checked, mismatches, recall@k against exact, the largest
    relative score error; and the first few mismatches described."""
    position = {doc: i for i, doc in enumerate(retriever.ids)}
    per_mode: dict[str, dict] = {}
    examples: list[str] = []
    for mode in sorted({a.mode for a in answers}):
        mine = [a for a in answers if a.mode == mode]
        rows = sorted({a.query for a in mine})
        parity = {}
        for lo in range(0, len(rows), BLOCK):
            block = rows[lo : lo + BLOCK]
            scores = exact_scores(retriever, queries, block, mode)
            values, idx = top_k(scores, k)
            for r, q in enumerate(block):
                exact_ids = [retriever.ids[i] for i in idx[r].tolist()]
                parity[q] = (exact_ids, values[r].tolist(), scores[r])
        stats = {"checked": len(mine), "mismatches": 0, "score_rel_err_max": 0.0}
        recalls = []
        for a in mine:
            exact_ids, exact_values, row = parity[a.query]
            score_of = {d: float(row[position[d]]) for d in a.ids}
            p = query_parity(a.ids, a.scores, exact_ids, exact_values, score_of, k)
            worst = max(p["errors"], default=0.0)
            recalls.append(p["recall"])
            stats["score_rel_err_max"] = max(stats["score_rel_err_max"], worst)
            wrong_ids = mode in EXACT_MODES and p["overlap_ties"] < 1.0
            if worst > SCORE_REL_TOL or wrong_ids:
                stats["mismatches"] += 1
                if len(examples) < 5:
                    examples.append(
                        f"{mode} query {a.query}: ids {list(a.ids)} vs exact {exact_ids}, "
                        f"largest score error {worst:.2e}"
                    )
        stats[f"recall@{k}_vs_exact"] = sum(recalls) / len(recalls)
        per_mode[mode] = stats
    return {
        "checked": sum(m["checked"] for m in per_mode.values()),
        "mismatches": sum(m["mismatches"] for m in per_mode.values()),
        "score_rel_tol": SCORE_REL_TOL,
        "exact_modes": list(EXACT_MODES),
        "modes": per_mode,
        "examples": examples,
    }


def describe_answers(answers: dict, k: int = K) -> str:
    """One sentence on `check_answers`'s result, for a markdown report."""
    modes = "; ".join(
        f"{mode} {m['checked']} checked, {m['mismatches']} mismatches, recall@{k} vs exact "
        f"{m[f'recall@{k}_vs_exact']:.3f}, largest score error {m['score_rel_err_max']:.1e}"
        for mode, m in answers["modes"].items()
    )
    return (
        f"{answers['checked']} answers checked against exact in-memory search, "
        f"{answers['mismatches']} mismatches (a score off by more than "
        f"{answers['score_rel_tol']:g} relative, or in {', '.join(answers['exact_modes'])} mode "
        f"ids other than the exact top-{k}, ties aside): {modes}."
    )

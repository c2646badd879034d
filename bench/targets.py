"""What a finished run list says: the cost model per system and mode, the work per query against
the memory-bandwidth limit, and the issue's targets (met / not met; never a timed test).

Runs of different workloads sit in one list; each is grouped by `workload_key` (the workload's
`label`, or its `name`), and a model or target is computed within a group.
"""

from __future__ import annotations

import math

from bench.metrics import fit_linear
from indexing.registry import ENGINES
from sparse_mm.retriever import MODES

ISSUE_N = 1_000_000  # the issue asks for the targets at 1M documents
ISSUE_WORKLOADS = ("model", "lsr-30k")  # issue 26: at 1M, on both workloads, both engines
HYBRID_P50_MS = 10.0
ENGINE_ORDER = tuple(ENGINES)  # the registry's order (indexing.registry)


def workload_key(run: dict) -> str:
    w = run.get("workload") or {}
    return str(w.get("label") or w.get("name") or "unnamed")


def by_workload(runs: list[dict]) -> dict[str, list[dict]]:
    """Runs grouped by workload, in first-seen order, each group sorted by N."""
    out: dict[str, list[dict]] = {}
    for r in runs:
        out.setdefault(workload_key(r), []).append(r)
    return {k: sorted(v, key=lambda r: r["n_docs"]) for k, v in out.items()}


def engine_groups(reports: dict[str, dict]) -> dict[str, list[tuple[str, dict, dict]]]:
    """{engine: report} -> {workload: [(engine, run, report)]}, by N, engines in a fixed order."""
    out: dict[str, list] = {}
    for name in sorted(reports, key=lambda n: (*ENGINE_ORDER, n).index(n)):
        for key, runs in by_workload(reports[name]["runs"]).items():
            out.setdefault(key, []).extend((name, r, reports[name]) for r in runs)
    return {k: sorted(v, key=lambda x: x[1]["n_docs"]) for k, v in out.items()}


def scale_fit(runs: list[dict]) -> dict:
    """latency p50 = a + b * N per mode, for the engine and each in-memory device (the runs of
    one workload)."""
    sizes = [r["n_docs"] for r in runs]
    fits: dict = {"engine": {}}
    for mode in MODES:
        fits["engine"][mode] = fit_linear(
            sizes, [r["modes"][mode]["latency_ms"]["p50"] for r in runs]
        )
    for device in sorted({d for r in runs for d in r["reference"]}):
        pts = [(r["n_docs"], r["reference"][device]) for r in runs if device in r["reference"]]
        fits[device] = {
            mode: fit_linear([n for n, _ in pts], [d[mode]["latency_ms"]["p50"] for _, d in pts])
            for mode in MODES
        }
    return fits


def scale_fits(runs: list[dict]) -> dict:
    """`scale_fit` per workload."""
    return {key: scale_fit(group) for key, group in by_workload(runs).items()}


def _hybrid_parity(r: dict):
    m = r["modes"]["hybrid"]
    ok = m["top10_identical"] >= 0.99 and m["score_rel_err_max"] <= 1e-4
    return ok, {
        "top10_identical": m["top10_identical"],
        "score_rel_err_max": m["score_rel_err_max"],
    }


def _sparse_parity(r: dict):
    m = r["modes"]["sparse"]
    return m["overlap@10_ties"] >= 0.999, {
        "overlap@10": m["overlap@10"],
        "overlap@10_ties": m["overlap@10_ties"],
    }


def _dense_recall(r: dict):
    m = r["modes"]["dense"]
    return m["recall@10_vs_exact"] >= 0.95, {"recall@10_vs_exact": m["recall@10_vs_exact"]}


def _faster(mode: str):
    def check(r: dict):
        e = r["modes"][mode]["latency_ms"]["p50"]
        t = r["reference"]["torch_cpu"][mode]["latency_ms"]["p50"]
        return e < t, {"engine_p50_ms": e, "torch_cpu_p50_ms": t}

    return check


def _ingest(r: dict):
    """None (not measured) when the run searched a reused index."""
    rate = r["ingest"]["docs_per_s"]
    return (None if rate is None else rate >= 2000), {"docs_per_s": rate}


def _hybrid_p50(r: dict):
    p50 = r["modes"]["hybrid"]["latency_ms"]["p50"]
    return p50 <= HYBRID_P50_MS, {"engine_p50_ms": p50}


TARGETS = (
    (f"engine hybrid p50 <= {HYBRID_P50_MS:g} ms", _hybrid_p50),
    ("engine hybrid p50 < exact PyTorch single-query hybrid p50", _faster("hybrid")),
    ("engine sparse p50 < exact PyTorch single-query sparse p50", _faster("sparse")),
    ("hybrid top-10 identical to exact >= 99% and score error <= 1e-4", _hybrid_parity),
    ("sparse overlap@10 >= 0.999 (exact ties aside)", _sparse_parity),
    ("dense recall@10 vs exact >= 0.95", _dense_recall),
    ("ingest >= 2,000 docs/s (bulk to searchable)", _ingest),
)


def check_targets(runs: list[dict]) -> list[dict]:
    """The issue's targets, each met or not at the largest N of each workload, with its numbers.
    The issue asks for them at 1M on lsr-30k: `at_issue_scale` says whether this run is that."""
    out = []
    for key, group in by_workload(runs).items():
        r = group[-1]
        for name, check in TARGETS:
            met, detail = check(r)
            out.append(
                {
                    "target": name,
                    "workload": key,
                    "n_docs": r["n_docs"],
                    "status": "not measured" if met is None else "met" if met else "not met",
                    "at_issue_scale": key in ISSUE_WORKLOADS and r["n_docs"] >= ISSUE_N,
                    **detail,
                }
            )
    return out


def cost_rows(fits: dict) -> list[dict]:
    """Flat rows {workload, system, mode, a_ms, b_ms_per_million, r2, points} from
    {engine name: scale_fits(...)} (the in-memory sides appear once, from the first engine)."""
    rows, seen = [], set()
    for engine, per_workload in fits.items():
        for workload, sides in per_workload.items():
            for side, per_mode in sides.items():
                system = engine if side == "engine" else side
                if (workload, system) in seen:
                    continue
                seen.add((workload, system))
                for mode, f in per_mode.items():
                    b = f["b"]
                    rows.append(
                        {
                            "workload": workload,
                            "system": system,
                            "mode": mode,
                            "a_ms": f["a"],
                            "b_ms_per_million": b * 1e6 if b is not None else math.nan,
                            "r2": f["r2"],
                            "points": f["points"],
                        }
                    )
    return rows

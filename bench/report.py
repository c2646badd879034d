"""Writing a benchmark report: JSON (schema in bench/README.md), Markdown and PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.provenance import guard_results
from sparse_mm.retriever import MODES

PLOTS = ("latency_vs_n.png", "pruning.png", "throughput.png")


def write_json(report: dict, path: Path) -> None:
    """Every results JSON is written here: strict JSON, and refused in bench/results/ unless
    measured at a clean commit (bench.provenance.guard_results)."""
    path = Path(path)
    report = guard_results(report, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(report), indent=2) + "\n", encoding="utf-8")


def _finite(value):
    """NaN and infinities become null: strict JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_report(report: dict, folder: Path, *, with_json: bool = True) -> list[Path]:
    """report.json (unless `with_json` is false), report.md and the PNG plots into `folder`;
    returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if with_json:
        write_json(report, folder / "report.json")
        written.append(folder / "report.json")
    plots = plot_all(report, folder)
    written += plots
    (folder / "report.md").write_text(markdown(report, [p.name for p in plots]))
    return [*written, folder / "report.md"]


def _f(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, int):
        return f"{x:,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(_f(c) if not isinstance(c, str) else c for c in r) + " |" for r in rows
    ]
    return [*lines, ""]


def markdown(report: dict, plots: list[str]) -> str:
    runs = report["runs"]
    m, e = report["machine"], report["engine"]
    ram = f"{m['ram_bytes'] / 2**30:.0f} GiB" if m.get("ram_bytes") else "?"
    out = [
        "# sparse-mm benchmark: OpenSearch vs exact in-memory PyTorch",
        "",
        *([f"**STALE: {report['stale']}**", ""] if report.get("stale") else []),
        *([f"**{report['WARNING']}**", ""] if report.get("WARNING") else []),
        "Produced by:",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {ram} RAM, torch {m['torch']} "
        f"({m['torch_threads']} threads), GPU: {m.get('gpu') or 'none'}; "
        f"OpenSearch {e['opensearch']} (Lucene {e.get('lucene')}), JDK {e['jdk']}, heap "
        f"{(e.get('heap_max_bytes') or 0) / 2**30:.0f} GiB; "
        f"git {report.get('git') or m.get('git_commit')}; {report['created']}.",
        f"Model: {report['model']['path']} (w1 = {report['model']['w1']}, "
        f"w2 = {report['model']['w2']}, vocabulary {report['model']['vocab_size']:,})"
        + _digests(report["model"].get("sha256"))
        + ".",
        "",
        "The engine and the in-memory reference run in the same process on the same cores, one "
        "after the other; absolute times on this shared machine are noisy, the ratios less so. "
        "The in-memory reference is `ExactRetriever` with the stored weights quantised like "
        "Lucene's (so its scores are what the engine must return): dense = one matrix product, "
        "sparse = only the query terms' posting columns (CSC), hybrid = both.",
        "",
    ]
    out += _targets(report)
    out += ["## Parity (engine vs exact, per mode)", ""]
    rows = []
    for r in runs:
        for mode in MODES:
            x = r["modes"][mode]
            re, rx = x["R@k"]["engine"], x["R@k"]["exact"]
            rows.append(
                [
                    f"{r['n_docs']:,}",
                    mode,
                    *parity_cells(x),
                    x["score_rel_err_median"],
                    f"{re['R@1']:.3f} / {rx['R@1']:.3f}",
                    f"{re['R@5']:.3f} / {rx['R@5']:.3f}",
                    f"{re['R@10']:.3f} / {rx['R@10']:.3f}",
                ]
            )
    out += _table(
        [
            "N",
            "mode",
            "overlap@10",
            "overlap@10 (ties)",
            "recall@10 vs exact",
            "identical top-10",
            "max rel. err",
            "median rel. err",
            "R@1 engine / exact",
            "R@5",
            "R@10",
        ],
        rows,
    )
    out += ["## Latency (ms, single queries) and throughput (queries/s)", ""]
    rows = []
    for r in runs:
        for mode in MODES:
            x, t = r["modes"][mode], r["reference"]["torch_cpu"][mode]
            q, tq = x["qps_by_clients"], t["qps_by_clients"]
            rows.append(
                [
                    f"{r['n_docs']:,}",
                    mode,
                    x["latency_ms"]["p50"],
                    x["latency_ms"]["p95"],
                    x["latency_ms"]["p99"],
                    x["took_ms"]["p50"],
                    t["latency_ms"]["p50"],
                    t["latency_ms"]["p95"],
                    t["latency_ms"]["p99"],
                    " / ".join(_f(q[c]) for c in sorted(q, key=int)),
                    " / ".join(_f(tq[c]) for c in sorted(tq, key=int)),
                    t["batched"]["qps"],
                ]
            )
    out += _table(
        [
            "N",
            "mode",
            "engine p50",
            "p95",
            "p99",
            "engine took p50",
            "torch p50",
            "p95",
            "p99",
            "engine qps 1/2/4 clients",
            "torch qps 1/2/4 threads",
            f"torch batched qps ({runs[0]['reference']['torch_cpu']['dense']['batched']['batch']})",
        ],
        rows,
    )
    out += [
        "Batching is where in-memory dense retrieval shines: one (B, D) x (D, N) product "
        "amortises reading the document matrix over B queries; the engine answers one request "
        "at a time.",
        "",
    ]
    if any("torch_cuda" in r["reference"] for r in runs):
        rows = [
            [f"{r['n_docs']:,}", mode, g[mode]["latency_ms"]["p50"], g[mode]["batched"]["qps"]]
            for r in runs
            if (g := r["reference"].get("torch_cuda"))
            for mode in MODES
        ]
        out += ["### In-memory on GPU", ""]
        out += _table(["N", "mode", "p50 ms", "batched qps"], rows)
    out += ["## Ingest", ""]
    rows = [
        [
            f"{r['n_docs']:,}",
            r["ingest"]["docs_per_s"],
            r["ingest"]["bulk_seconds"],
            r["ingest"]["time_until_searchable_s"],
            r["ingest"]["client_build_json_s_estimate"],
            r["ingest"]["encode_docs_per_s"],
            r["ingest"]["end_to_end_docs_per_s"],
            r["ingest"]["index_bytes"] / 2**20,
            r["ingest"]["segments"],
            r["terms_per_doc"],
        ]
        for r in runs
    ]
    out += _table(
        [
            "N",
            "docs/s (bulk + refresh)",
            "bulk s",
            "until searchable s",
            "client docs+JSON s (est.)",
            "encode docs/s",
            "end-to-end docs/s",
            "index MiB",
            "segments",
            "terms/doc",
        ],
        rows,
    )
    out += _scale(report)
    out += _pruning(runs[-1])
    out += _profile(runs[-1])
    out += _engine_profile(runs[-1])
    out += _variants(runs[-1])
    out += _ingest_profile(runs[-1])
    out += [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(out)


def parity_cells(mode: dict) -> list:
    """A mode's parity with exact, as table cells: overlap@10, the same with ties, recall@10
    against exact, the share of identical top-10 lists, the largest relative score error."""
    keys = ("overlap@10", "overlap@10_ties", "recall@10_vs_exact", "top10_identical")
    return [*(mode[k] for k in keys), mode["score_rel_err_max"]]


def _digests(sha256: dict | None) -> str:
    """`; sha256 model.safetensors 2e0b91f4..., ...` (the first 12 hex digits) or nothing."""
    if not sha256:
        return "; no weights digest recorded"
    return "; sha256 " + ", ".join(f"{name} {h[:12]}" for name, h in sha256.items())


def _targets(report: dict) -> list[str]:
    out = ["## Targets", ""]
    for t in report.get("targets", []):
        detail = ", ".join(
            f"{k} {_f(v, 4)}"
            for k, v in t.items()
            if k != "n_docs" and isinstance(v, int | float) and not isinstance(v, bool)
        )
        out.append(
            f"- **{t['status']}** at N = {t['n_docs']:,}: {t['target']}"
            + (f" ({detail})" if detail else "")
        )
    return [*out, ""]


def _scale(report: dict) -> list[str]:
    fits = report.get("scale_fit", {})
    if not fits:
        return []
    rows = [
        [side, mode, f["a"], f["b"] * 1e6 if f["b"] is not None else None, f["r2"], f["points"]]
        for side, per_mode in fits.items()
        for mode, f in per_mode.items()
    ]
    out = ["## Cost per query as N grows: p50 latency = a + b * N", ""]
    return out + _table(["side", "mode", "a (ms)", "b (ms per 1M docs)", "R²", "points"], rows)


def _pruning(run: dict) -> list[str]:
    rows = [
        [
            p["mode"],
            str(p["query_top_k"]) if p["query_top_k"] else "all",
            str(p["window"]) if p["window"] else "–",
            str(p["ef_search"]) if p["ef_search"] else "index",
            p["latency_ms"]["p50"],
            p["took_ms"]["p50"],
            p["overlap@10"],
            p["R@10"],
        ]
        for p in run["pruning"]
    ]
    for mode in MODES:
        x = run["modes"][mode]
        rows.append(
            [
                f"{mode} (default)",
                "all",
                "100" if mode == "hybrid" else "–",
                "index",
                x["latency_ms"]["p50"],
                x["took_ms"]["p50"],
                x["overlap@10"],
                x["R@k"]["engine"]["R@10"],
            ]
        )
    out = [f"## Pruning trade-offs at N = {run['n_docs']:,}", ""]
    return out + _table(
        ["mode", "query top-k", "window", "ef_search", "p50 ms", "took p50", "overlap@10", "R@10"],
        rows,
    )


def _profile(run: dict) -> list[str]:
    rows = [
        [
            mode,
            p["client_p50_ms"],
            p["engine_took_p50_ms"],
            p["outside_engine_p50_ms"],
            p["torch_cpu_p50_ms"],
        ]
        for mode, p in run["profile"].items()
    ]
    out = [f"## Where a query's time goes at N = {run['n_docs']:,} (p50, ms)", ""]
    return out + _table(
        ["mode", "client total", "inside engine (took)", "client + HTTP (rest)", "torch"], rows
    )


def _engine_profile(run: dict) -> list[str]:
    prof = run.get("engine_profile")
    if not prof:
        return []
    out = [
        f"## Inside the engine at N = {run['n_docs']:,}: profile API, median ms",
        "",
        "Indented rows are children of the row above. Profiling itself slows a request "
        "down (its `took` here is above the unprofiled one), so compare rows with each other. "
        "OpenSearch does not profile the rescore phase (hybrid): it is what `took` has beyond "
        "the rows shown. `took` is in whole milliseconds.",
        "",
    ]
    for mode, parts in prof.items():
        out += [f"**{mode}**", ""]
        out += _table(["component", "ms"], [[f"`{k}`", v] for k, v in parts.items()])
    return out


def _variants(run: dict) -> list[str]:
    rows = [
        [
            v["mode"],
            v["variant"],
            v["production_latency_ms"]["p50"],
            v["variant_latency_ms"]["p50"],
            v["production_took_ms"]["p50"],
            v["variant_took_ms"]["p50"],
            v.get("same_hits"),
        ]
        for v in run.get("variants", [])
    ]
    if not rows:
        return []
    out = [
        f"## Candidate fixes at N = {run['n_docs']:,} (same queries, alternated, p50 ms)",
        "",
    ]
    return out + _table(
        [
            "mode",
            "variant",
            "production client",
            "variant client",
            "production took",
            "variant took",
            "same hits",
        ],
        rows,
    )


def _ingest_profile(run: dict) -> list[str]:
    ing = run["ingest"]
    engine = ing.get("engine_time_ms")
    if not engine or not ing["bulk_seconds"]:
        return []
    n, wall = ing["docs"], ing["bulk_seconds"]
    rows = [
        ["bulk load (wall)", wall, 1000 * wall / n],
        [
            "client: build documents + JSON (est.)",
            ing["client_build_json_s_estimate"],
            1000 * ing["client_build_json_s_estimate"] / n,
        ],
        [
            "engine: indexing (summed over threads)",
            engine["indexing"] / 1000,
            engine["indexing"] / n,
        ],
        ["engine: merges", engine["merge"] / 1000, engine["merge"] / n],
        [
            "engine: refresh + flush",
            (engine["refresh"] + engine["flush"]) / 1000,
            (engine["refresh"] + engine["flush"]) / n,
        ],
        [
            "model: encoding (before the load)",
            ing["encode_seconds"],
            1000 * ing["encode_seconds"] / n,
        ],
    ]
    out = [f"## Where ingest time goes at N = {n:,}", ""]
    return out + _table(["activity", "seconds", "ms per document"], rows)


def main(argv: list[str] | None = None) -> None:
    """`python -m bench.report REPORT.json FOLDER`: rewrite report.md and the plots (the JSON
    is left as it is)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m bench.report REPORT.json FOLDER")
    report = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    for f in write_report(report, Path(args[1]), with_json=False):
        print(f)


def plot_all(report: dict, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["runs"]
    written = []
    sizes = [r["n_docs"] for r in runs]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    for ax, mode in zip(axes, MODES, strict=True):
        ax.plot(
            sizes, [r["modes"][mode]["latency_ms"]["p50"] for r in runs], "o-", label="engine p50"
        )
        ax.plot(
            sizes,
            [r["modes"][mode]["took_ms"]["p50"] for r in runs],
            "o--",
            label="engine took p50",
        )
        ax.plot(
            sizes,
            [r["reference"]["torch_cpu"][mode]["latency_ms"]["p50"] for r in runs],
            "s-",
            label="torch CPU p50",
        )
        ax.plot(
            sizes,
            [1000 / r["reference"]["torch_cpu"][mode]["batched"]["qps"] for r in runs],
            "s:",
            label="torch CPU batched, per query",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(mode)
        ax.set_xlabel("documents N")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms per query")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    written.append(_save(fig, folder / PLOTS[0]))
    run = runs[-1]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for mode, marker in zip(MODES, "o^s", strict=True):
        pts = [p for p in run["pruning"] if p["mode"] == mode]
        x = [p["latency_ms"]["p50"] for p in pts]
        y = [p["overlap@10"] for p in pts]
        ax.scatter(x, y, marker=marker, label=mode)
        for p, xi, yi in zip(pts, x, y, strict=True):
            tag = (
                f"k={p['query_top_k']}"
                if p["query_top_k"]
                else f"w={p['window']}"
                if mode == "hybrid"
                else f"ef={p['ef_search']}"
            )
            ax.annotate(tag, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("engine p50 latency (ms)")
    ax.set_ylabel("overlap@10 with exact")
    ax.set_title(f"Pruning at N = {run['n_docs']:,}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, folder / PLOTS[1]))
    fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 3.6), squeeze=False)
    for ax, r in zip(axes[0], runs, strict=True):
        for mode in MODES:
            q = r["modes"][mode]["qps_by_clients"]
            c = sorted(q, key=int)
            ax.plot([int(x) for x in c], [q[x] for x in c], "o-", label=f"engine {mode}")
            t = r["reference"]["torch_cpu"][mode]["qps_by_clients"]
            ax.plot([int(x) for x in c], [t[x] for x in c], "s--", label=f"torch {mode}")
        ax.set_title(f"N = {r['n_docs']:,}")
        ax.set_xlabel("concurrent clients")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("queries/s")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    written.append(_save(fig, folder / PLOTS[2]))
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()

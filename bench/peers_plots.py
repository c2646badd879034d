"""The plots of a peers report (bench/peers_report.py), per workload: latency vs N (log-log,
per system and mode), throughput vs clients, and recall vs latency of the pruning grid."""

from __future__ import annotations

from pathlib import Path

from bench.targets import engine_groups
from sparse_mm.retriever import MODES


def plot_peers(reports: dict[str, dict], folder: Path) -> list[Path]:
    """Per workload: latency vs N (log-log, per system and mode), throughput vs clients and
    recall vs latency of the pruning grid at the largest N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for key, entries in engine_groups(reports).items():
        slug = key.replace(" ", "_")
        systems: dict[str, dict[str, list]] = {}
        for engine, run, _ in entries:
            sides = [(engine, run["modes"]), *run["reference"].items()]
            for system, per_mode in sides:
                for mode in MODES:
                    pts = systems.setdefault(system, {}).setdefault(mode, {})
                    pts[run["n_docs"]] = per_mode[mode]
        if len({run["n_docs"] for _, run, _ in entries}) > 1:  # a grid point has one N
            fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
            for ax, mode in zip(axes, MODES, strict=True):
                for system, per_mode in systems.items():
                    pts = sorted(per_mode[mode].items())
                    ax.plot(
                        [n for n, _ in pts],
                        [x["latency_ms"]["p50"] for _, x in pts],
                        "o-",
                        label=f"{system} p50",
                    )
                ax.set(xscale="log", yscale="log", title=f"{key}: {mode}", xlabel="documents N")
                ax.grid(True, which="both", alpha=0.3)
            axes[0].set_ylabel("ms per query")
            axes[0].legend(fontsize=8)
            fig.tight_layout()
            written.append(_save(fig, folder / f"latency_vs_n_{slug}.png"))
        n = entries[-1][1]["n_docs"]
        fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
        for ax, mode in zip(axes, MODES, strict=True):
            for system, per_mode in systems.items():
                q = per_mode[mode][n]["qps_by_clients"] if n in per_mode[mode] else {}
                c = sorted(q, key=int)
                ax.plot([int(x) for x in c], [q[x] for x in c], "o-", label=system)
            ax.set(yscale="log", title=f"{key} N = {n:,}: {mode}", xlabel="concurrent clients")
            ax.grid(True, alpha=0.3)
        axes[0].set_ylabel("queries/s")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        written.append(_save(fig, folder / f"throughput_{slug}.png"))
        last = [(engine, run) for engine, run, _ in entries if run["n_docs"] == n]
        if any(run.get("pruning") for _, run in last):
            fig, ax = plt.subplots(figsize=(6.5, 4.5))
            for (engine, run), marker in zip(last, "os^v", strict=False):
                for mode in MODES:
                    pts = [p for p in run["pruning"] if p["mode"] == mode]
                    ax.scatter(
                        [p["latency_ms"]["p50"] for p in pts],
                        [p["overlap@10"] for p in pts],
                        marker=marker,
                        label=f"{engine} {mode}",
                    )
            ax.set(
                xlabel="engine p50 latency (ms)",
                ylabel="overlap@10 with exact",
                title=f"Pruning grid, {key} N = {n:,}",
            )
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
            fig.tight_layout()
            written.append(_save(fig, folder / f"pruning_{slug}.png"))
    return written


def _save(fig, path: Path) -> Path:
    """The PNG to a temporary file beside `path`, then one rename (as the JSONs)."""
    import os

    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, dpi=90, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)
    return path

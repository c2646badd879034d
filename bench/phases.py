"""Wall seconds per phase of one `sparse-mm bench` command, so that a run tells where its time
went (generate, encode, reference, ingest and queries per engine, pruning grid).

    phases = Phases()
    with phases.timed("reference", label="lsr-30k", n_docs=100_000):
        ...
    phases.add("encode", 12.5, label="model", n_docs=10_000)  # measured elsewhere
    phases.records  # [{"phase", "seconds", "label", "n_docs", "engine"}, ...]
    phases.totals()  # {"reference": s, "ingest opensearch": s, ...}
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

PHASES = ("generate", "encode", "reference", "ingest", "queries", "grid", "profile")


@dataclass
class Phases:
    records: list[dict] = field(default_factory=list)
    clock: object = time.perf_counter

    def add(
        self,
        phase: str,
        seconds: float,
        *,
        label: str | None = None,
        n_docs: int | None = None,
        engine: str | None = None,
    ) -> dict:
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; one of {', '.join(PHASES)}")
        record = {
            "phase": phase,
            "seconds": float(seconds),
            "label": label,
            "n_docs": n_docs,
            "engine": engine,
        }
        self.records.append(record)
        return record

    @contextmanager
    def timed(self, phase: str, **where) -> Iterator[None]:
        """Record the wall seconds of the block (also when it raises)."""
        began = self.clock()
        try:
            yield
        finally:
            self.add(phase, self.clock() - began, **where)

    def for_item(self, label: str, n_docs: int) -> list[dict]:
        return [r for r in self.records if r["label"] == label and r["n_docs"] == n_docs]

    def totals(self, records: list[dict] | None = None) -> dict[str, float]:
        return totals(self.records if records is None else records)


def totals(records: list[dict]) -> dict[str, float]:
    """Seconds per phase (per engine for the engine phases), in PHASES order, and "total"."""
    out: dict[str, float] = {}
    for phase in PHASES:
        for r in records:
            if r["phase"] == phase:
                key = f"{phase} {r['engine']}" if r.get("engine") else phase
                out[key] = out.get(key, 0.0) + r["seconds"]
    out["total"] = sum(r["seconds"] for r in records)
    return out


def summary_line(records: list[dict]) -> str:
    """One line: "generate 3.1s, encode 10.2s, ..., total 60.0s"."""
    return ", ".join(f"{k} {v:.1f}s" for k, v in totals(records).items())


def phase_table(records: list[dict]) -> list[str]:
    """Markdown: wall seconds per phase, one row per (workload label, N) in run order, and the
    command's total; [] without records."""
    if not records:
        return []
    items = list(dict.fromkeys((r["label"], r["n_docs"]) for r in records))
    columns = [k for k in totals(records) if k != "total"]
    out = [
        "## Where the time went (wall seconds per phase)",
        "",
        "| workload | N | " + " | ".join(columns) + " | total |",
        "|---|---:|" + "---:|" * (len(columns) + 1),
    ]
    for label, n in items:
        row = totals([r for r in records if (r["label"], r["n_docs"]) == (label, n)])
        cells = [f"{row[c]:.0f}" if c in row else "" for c in [*columns, "total"]]
        out.append(f"| {label} | {n:,} | " + " | ".join(cells) + " |")
    whole = totals(records)
    out.append("| all | | " + " | ".join(f"{whole[c]:.0f}" for c in [*columns, "total"]) + " |")
    return [*out, ""]

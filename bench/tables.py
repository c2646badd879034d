"""Markdown table cells and tables of the peers report (bench/peers_report.py)."""

from __future__ import annotations

import math


def _f(x, digits: int = 3) -> str:
    """A number as a table cell: thousands separated, `digits` significant digits, – for none."""
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


def parity_cells(mode: dict) -> list:
    """A mode's parity with exact, as table cells: overlap@10, the same with ties, recall@10
    against exact, the share of identical top-10 lists, the largest relative score error."""
    keys = ("overlap@10", "overlap@10_ties", "recall@10_vs_exact", "top10_identical")
    return [*(mode[k] for k in keys), mode["score_rel_err_max"]]

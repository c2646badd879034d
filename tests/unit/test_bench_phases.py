"""Pure logic of a bench command's phase timings and of a report made in pieces (--append)."""

from __future__ import annotations

import pytest

from bench.engine import throughput
from bench.phases import Phases, phase_table, summary_line, totals
from bench.pieces import check_mergeable, merge
from sparse_mm.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_phases_record_wall_seconds_per_item_and_engine() -> None:
    clock = Clock()
    phases = Phases(clock=clock)
    with phases.timed("reference", label="lsr-30k", n_docs=10):
        clock.now += 3.0
    with phases.timed("ingest", label="lsr-30k", n_docs=10, engine="opensearch"):
        clock.now += 2.0
    phases.add("ingest", 1.5, label="model", n_docs=10, engine="opensearch")
    phases.add("ingest", 4.0, label="model", n_docs=10, engine="elasticsearch")
    assert phases.totals() == {
        "reference": 3.0,
        "ingest opensearch": 3.5,
        "ingest elasticsearch": 4.0,
        "total": 10.5,
    }
    assert [r["seconds"] for r in phases.for_item("model", 10)] == [1.5, 4.0]
    assert summary_line(phases.records).endswith("total 10.5s")


def test_a_phase_that_raises_is_still_recorded_and_unknown_phases_are_refused() -> None:
    clock = Clock()
    phases = Phases(clock=clock)
    with pytest.raises(RuntimeError), phases.timed("queries", label="m", n_docs=1, engine="x"):
        clock.now += 7.0
        raise RuntimeError("engine down")
    assert phases.records[0]["seconds"] == 7.0
    with pytest.raises(ValueError, match="unknown phase"):
        phases.add("coffee", 1.0)


def test_phase_table_has_a_row_per_item_and_the_whole() -> None:
    records = [
        {"phase": "generate", "seconds": 2.0, "label": "model", "n_docs": 100, "engine": None},
        {"phase": "ingest", "seconds": 5.0, "label": "model", "n_docs": 100, "engine": "es"},
        {"phase": "generate", "seconds": 1.0, "label": "lsr", "n_docs": 100, "engine": None},
    ]
    table = phase_table(records)
    assert "| generate | ingest es | total |" in table[2]
    assert table[4] == "| model | 100 | 2 | 5 | 7 |"
    assert table[5] == "| lsr | 100 | 1 |  | 1 |"
    assert table[6] == "| all | | 3 | 5 | 8 |"
    assert phase_table([]) == []
    assert totals([]) == {"total": 0}


def test_throughput_with_a_budget_cycles_over_the_calls() -> None:
    seen = []
    qps = throughput(seen.append, 3, clients=2, seconds=0.05)
    assert qps > 0 and len(seen) >= 1
    assert set(seen) <= {0, 1, 2}
    once = []
    throughput(once.append, 5, clients=2)
    assert sorted(once) == [0, 1, 2, 3, 4]


def _report(git="abc1234", runs=(("lsr-30k", 10_000),), **changes) -> dict:
    report = {
        "command": f"sparse-mm bench --sizes {runs[0][1]}",
        "created": "now",
        "git": git,
        "recipe": {"seed": 7, "queries": 200, "qps_seconds": 5.0},
        "model": {"path": "m", "sha256": {"weights.pt": "f00"}},
        "engine": {"name": "opensearch", "version": "3.4.0"},
        "runs": [{"workload": {"label": w, "name": w}, "n_docs": n} for w, n in runs],
        "phases": [{"phase": "generate", "seconds": 1.0, "label": runs[0][0]}],
    }
    report.update(changes)
    return report


def test_pieces_of_one_commit_and_recipe_merge_in_order() -> None:
    first = _report(runs=(("model", 10_000), ("lsr-30k", 10_000)))
    second = _report(runs=(("lsr-30k", 1_000_000),))
    merged = merge(first, second)
    assert [(r["workload"]["label"], r["n_docs"]) for r in merged["runs"]] == [
        ("model", 10_000),
        ("lsr-30k", 10_000),
        ("lsr-30k", 1_000_000),
    ]
    assert [p["command"] for p in merged["pieces"]] == [first["command"], second["command"]]
    assert len(merged["phases"]) == 2
    assert len(first["runs"]) == 2 and "pieces" not in first  # inputs unchanged
    third = merge(merged, _report(runs=(("model", 1_000_000),)))
    assert len(third["pieces"]) == 3 and len(third["runs"]) == 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"git": "abc1234-dirty"}, "clean checkout"),
        ({"git": None}, "clean checkout"),
        ({"git": "def5678"}, "same commit"),
        ({"recipe": {"seed": 8, "queries": 200, "qps_seconds": 5.0}}, r"\(seed differ\)"),
        ({"model": {"path": "m", "sha256": {"weights.pt": "bad"}}}, "another model"),
        ({"engine": {"name": "opensearch", "version": "3.5.0"}}, "engine version 3.4.0"),
        ({"runs": [{"workload": {"label": "lsr-30k"}, "n_docs": 10_000}]}, "already holds lsr"),
    ],
)
def test_pieces_that_differ_are_refused(change: dict, message: str) -> None:
    old = _report()
    new = {**_report(runs=(("lsr-30k", 100_000),)), **change}
    with pytest.raises(ConfigError, match=message):
        check_mergeable(old, new, "r/opensearch.json")
    with pytest.raises(ConfigError):
        merge(old, new)

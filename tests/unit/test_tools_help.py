"""Every tool, recorder and probe answers --help (its lazy imports resolve), and lives where its
kind says: tools/, tools/recorders/, tools/probes/; bench/ is the benchmark only."""

from __future__ import annotations

import importlib

import pytest

from sparse_mm.provenance import REPO

TOOLS = [
    "tools.load",
    "tools.crash",
    "tools.train_speed",
    "tools.encode_speed",
    "tools.recorders.readme_examples",
    "tools.recorders.es_examples",
    "tools.recorders.node_start",
    "tools.recorders.synthetic_results",
    "tools.probes.ingest_probe",
    "tools.probes.ingest_client",
    "bench.profile",
]


@pytest.mark.parametrize("name", TOOLS)
def test_every_tool_answers_help(name, capsys):
    with pytest.raises(SystemExit) as done:
        importlib.import_module(name).main(["--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")


def test_bench_holds_no_tool_recorder_or_probe():
    moved = {"load", "answers", "crash", "train_speed", "encode_speed", "readme_examples",
             "es_examples", "readme_tables", "node_start", "synthetic_results", "ingest_probe",
             "ingest_client", "engines_compare", "report", "provenance", "machine"}  # fmt: skip
    left = sorted(p.stem for p in (REPO / "bench").glob("*.py") if p.stem in moved)
    assert left == []

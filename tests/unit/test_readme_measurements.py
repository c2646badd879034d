"""Every measurement in README.md comes from a committed JSON that says how it was made.

- The measurement blocks (synthetic results table, demo model R@1, speed table, node start
  times, example outputs, Elasticsearch examples) appear in README.md exactly as
  tools.recorders.readme_tables renders them from their JSONs.
- Every results file the READMEs link exists; every JSON under bench/results/ carries the
  full provenance record (sparse_mm.provenance.provenance_problems), made at a clean commit:
  no `stale` or `WARNING` mark lets one in.
"""

from __future__ import annotations

import json
import re

import pytest

from sparse_mm.provenance import REPO, REQUIRED_KEYS, RESULTS_DIR, is_clean, provenance_problems
from tools.recorders.readme_tables import DEMO_PROVENANCE, blocks, missing

README = REPO / "README.md"
READMES = (README, REPO / "bench" / "README.md")
LINK = re.compile(r"(?:bench/results|sparse_mm/demo/model)/[\w./-]+\.(?:json|md)")


def _results_jsons():
    return sorted(RESULTS_DIR.rglob("*.json"))


def test_readme_blocks_match_their_json():
    readme = README.read_text(encoding="utf-8")
    assert not missing(readme), (
        "README.md differs from its JSONs; paste `python -m tools.recorders.readme_tables` output"
    )


def test_blocks_render_every_measurement_source():
    names = set(blocks())
    assert {"synthetic results table", "demo model test R@1", "speed table",
            "node start table"} <= names  # fmt: skip
    assert any(n.startswith("example output") for n in names)
    # every recorded Elasticsearch example: start, ingest and query, each with its command
    es = [text for name, text in blocks().items() if name.startswith("elasticsearch example")]
    assert [text.splitlines()[0].split()[:3] for text in es] == [
        ["$", "sparse-mm", "elasticsearch"],
        ["$", "sparse-mm", "ingest"],
        ["$", "sparse-mm", "query"],
    ]


@pytest.mark.parametrize("path", _results_jsons(), ids=lambda p: str(p.relative_to(REPO)))
def test_results_json_is_clean_and_fully_provenanced(path):
    """No escape hatch: a committed result carries a clean describe, its command, machine, the
    model's path and weights digest and the recipe of its inputs, or this fails."""
    record = json.loads(path.read_text(encoding="utf-8"))
    assert not provenance_problems(record), f"{path}: {'; '.join(provenance_problems(record))}"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: r.update(stale="STALE: typed by hand"), "marked 'stale'"),
        (lambda r: r.update(git="add8610-dirty"), "not a clean commit"),
        (lambda r: r.pop("git"), "no 'git'"),
        (lambda r: r["model"]["sha256"].clear(), "weights sha256"),
        (lambda r: r.pop("data"), "no data recipe"),
        (lambda r: r.update(machine={}), "no machine"),
    ],
)
def test_the_check_fails_on_each_gap(change, problem):
    record = json.loads((RESULTS_DIR / "readme_examples.json").read_text(encoding="utf-8"))
    assert not provenance_problems(record)
    change(record)
    assert any(problem in p for p in provenance_problems(record))


def test_demo_provenance_is_a_clean_record():
    record = json.loads(DEMO_PROVENANCE.read_text(encoding="utf-8"))
    assert set(REQUIRED_KEYS) <= set(record) and is_clean(record["git"])
    assert record["model"]["sha256"]["model.safetensors"]


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(REPO)))
def test_linked_results_exist(readme):
    text = readme.read_text(encoding="utf-8")
    links = set(LINK.findall(text))
    assert links, f"{readme} links no results"
    for link in links:
        assert (REPO / link).exists(), f"{readme.name} links {link}, which is not committed"


def test_synthetic_table_renders_recorded_metrics(tmp_path):
    from tools.recorders.readme_tables import synthetic_table, training_runs

    side = {"R@1": 0.78, "R@5": 0.9232, "R@10": 0.9514, "MRR@10": 0.84551}
    record = {
        "data": {"recipe": {"init_dense_r1": 0.4566}},
        "metrics": {"dense": side, "sparse": side, "integrated": side,
                    "sparsity": {"query_terms": 3.94, "doc_terms": 8.01, "flops": 0.533}},
        "train": {"epochs_run": 10, "best_epoch": 7, "wall_seconds": 300.0},
    }  # fmt: skip
    (tmp_path / "synthetic").mkdir()
    (tmp_path / "synthetic" / "joint.json").write_text(json.dumps(record))
    table = synthetic_table(tmp_path)
    assert "| initial projection (no training) | 45.66 |" in table
    assert "| joint (`--method joint`, the paper's) | 78.00 | 78.00 | 78.00 | 92.32 | 95.14 | " \
        "0.8455 | 3.9 | 8.0 | 0.53 |" in table  # fmt: skip
    assert "D2S baseline (`--method d2s`) | not recorded yet" in table
    assert training_runs(tmp_path) == "joint 10 epochs (best 7) in 5 min; D2S not recorded yet"

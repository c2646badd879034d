"""Every measurement in README.md and docs/*.md comes from a committed JSON that says how it
was made.

- The measurement blocks (synthetic results table, demo model R@1, speed table, node start
  times, example outputs, Elasticsearch examples, the benchmark's tables) appear in README.md
  or a docs/ page exactly as bench.readme_tables renders them from their JSONs, and no page
  holds a drifted copy of one (its first lines without the rest).
- Every results file the pages link exists; every JSON under bench/results/ carries the
  provenance record, made at a clean commit, or says why it is stale, and a stale one is
  called STALE wherever a page cites it.
"""

from __future__ import annotations

import json
import re

import pytest

from bench.provenance import REPO, REQUIRED_KEYS, RESULTS_DIR, is_clean
from bench.readme_tables import DEMO_PROVENANCE, blocks, missing, pages, stale_copies

README = REPO / "README.md"
READMES = (README, REPO / "bench" / "README.md")
PAGES = (*READMES, *sorted((REPO / "docs").glob("*.md")))
LINK = re.compile(r"(?:bench/results|sparse_mm/demo/model)/[\w./-]+\.(?:json|md)")


def _results_jsons():
    return sorted(RESULTS_DIR.rglob("*.json"))


def test_readme_blocks_match_their_json():
    absent = missing(pages())
    assert not absent, (
        f"no page (README.md, docs/*.md) holds {absent} as its JSON renders it; paste "
        "`python -m bench.readme_tables` output"
    )


def test_no_page_holds_a_drifted_copy_of_a_block():
    assert not stale_copies(pages()), "paste `python -m bench.readme_tables` output there"


def test_pages_are_readme_and_every_docs_page():
    names = set(pages())
    assert {"README.md", "docs/benchmark.md", "docs/training.md"} <= names
    assert names == {"README.md", *(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))}


def test_a_wrong_block_in_a_docs_page_fails_the_check():
    """A block moved to docs/ is checked there: wrong in the only page holding it, it is
    missing; wrong in one page while right in another, it is a stale copy."""
    texts = pages()
    name, block = "speed table", blocks()["speed table"]
    row = block.splitlines()[-1]
    wrong = block.replace(row, row.replace("images/s", "images/min"))
    only_wrong = {p: text.replace(block, wrong) for p, text in texts.items()}
    assert name in missing(only_wrong)
    one_wrong = {**texts, "docs/copy.md": wrong}
    assert "docs/copy.md: speed table" in stale_copies(one_wrong)
    assert name not in missing(one_wrong)


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
def test_results_json_has_provenance_or_says_stale(path):
    record = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(record, dict)
    if "stale" in record:
        assert record["stale"].startswith("STALE")
        return
    assert set(REQUIRED_KEYS) <= set(record), f"{path} lacks provenance keys"
    assert is_clean(record["git"]), f"{path} was measured on a dirty tree ({record['git']})"
    assert "WARNING" not in record


def test_demo_provenance_is_a_clean_record():
    record = json.loads(DEMO_PROVENANCE.read_text(encoding="utf-8"))
    assert set(REQUIRED_KEYS) <= set(record) and is_clean(record["git"])
    assert record["model"]["sha256"]["model.safetensors"]


@pytest.mark.parametrize("readme", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_linked_results_exist_and_stale_ones_are_marked(readme):
    text = readme.read_text(encoding="utf-8")
    links = set(LINK.findall(text))
    assert links or readme not in READMES, f"{readme} links no results"
    for link in links:
        path = REPO / link
        assert path.exists(), f"{readme.name} links {link}, which is not committed"
        record_path = path.with_suffix(".json")
        if not record_path.exists():
            continue
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if "stale" in record:
            for line in (i for i, line in enumerate(text.splitlines()) if link in line):
                window = "\n".join(text.splitlines()[max(0, line - 3) : line + 4])
                assert "STALE" in window, f"{readme.name} cites stale {link} without STALE"


def test_synthetic_table_renders_recorded_metrics(tmp_path):
    from bench.readme_tables import synthetic_table, training_runs

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

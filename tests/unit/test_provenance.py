"""The provenance recorder (sparse_mm/provenance.py): git state, model digests, the record's shape,
and the guard that keeps reports of uncommitted code out of bench/results/."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from sparse_mm.errors import ConfigError
from sparse_mm.provenance import (
    REQUIRED_KEYS,
    data_record,
    git_describe,
    guard_results,
    is_clean,
    model_record,
    provenance,
    write_json,
)


def _git(repo, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    (root / "a.py").write_text("x = 1\n")
    _git(root, "add", "a.py")
    _git(root, "commit", "-q", "-m", "one")
    return root


def test_git_describe_sees_a_dirty_tree(repo, tmp_path):
    clean = git_describe(repo)
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    assert clean == head and is_clean(clean)
    (repo / "a.py").write_text("x = 2\n")
    dirty = git_describe(repo)
    assert dirty == f"{head}-dirty" and not is_clean(dirty)
    _git(repo, "commit", "-q", "-am", "two")
    assert is_clean(git_describe(repo)) and git_describe(repo) != head
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    assert git_describe(outside) is None and not is_clean(None)


def test_guard_refuses_dirty_reports_in_guarded_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARSE_MM_ALLOW_DIRTY", raising=False)
    results = tmp_path / "results"
    target = results / "sub" / "r.json"
    for state in ("abc1234-dirty", None):
        with pytest.raises(ConfigError, match="refusing to write"):
            guard_results({"git": state}, target, guarded=(results,))
    assert guard_results({"git": "abc1234"}, target, guarded=(results,)) == {"git": "abc1234"}
    elsewhere = tmp_path / "elsewhere.json"
    assert guard_results({"git": "x-dirty"}, elsewhere, guarded=(results,)) == {"git": "x-dirty"}
    monkeypatch.setenv("SPARSE_MM_ALLOW_DIRTY", "1")
    marked = guard_results({"git": "abc1234-dirty"}, target, guarded=(results,))
    assert marked["git"] == "abc1234-dirty" and "NOT REPRODUCIBLE" in marked["WARNING"]


def test_write_json_applies_the_guard_to_bench_results(monkeypatch):
    from sparse_mm.provenance import RESULTS_DIR

    monkeypatch.delenv("SPARSE_MM_ALLOW_DIRTY", raising=False)
    target = RESULTS_DIR / "never-written-by-a-test.json"
    with pytest.raises(ConfigError):
        write_json({"git": "0000000-dirty", "value": 1}, target)
    assert not target.exists()


def test_model_record_hashes_the_model_files(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    weights = b"\x00\x01weights" * 1000
    (model / "model.safetensors").write_bytes(weights)
    (model / "vocab.txt").write_text("a\nb\n")
    config = {"heads": {"vocab_size": 2, "dense_dim": 4}, "w1": 0.1, "w2": 0.2,
              "provenance": {"method": "joint", "epoch": 3}}  # fmt: skip
    (model / "config.json").write_text(json.dumps(config))
    (model / "provenance.json").write_text("{}")  # a record about the model, not the model
    record = model_record(model)
    assert record["sha256"]["model.safetensors"] == hashlib.sha256(weights).hexdigest()
    assert set(record["sha256"]) == {"model.safetensors", "vocab.txt", "config.json"}
    assert record["provenance"] == {"method": "joint", "epoch": 3}
    assert (record["w1"], record["w2"], record["vocab_size"], record["dense_dim"]) == (
        0.1, 0.2, 2, 4,
    )  # fmt: skip
    (model / "model.safetensors").write_bytes(weights + b"!")
    assert (
        model_record(model)["sha256"]["model.safetensors"] != record["sha256"]["model.safetensors"]
    )


def test_data_record_reads_the_recipe(mini_corpus):
    record = data_record(mini_corpus)
    assert record["recipe"]["seed"] == 3 and record["recipe"]["n_images"] == 300
    vocab = [w for w in (mini_corpus / "vocab.txt").read_text().splitlines() if w.strip()]
    assert record["vocab_size"] == len(vocab) > 0
    made = data_record(None, seed=7, n_images=10)
    assert made == {"path": None, "recipe": {"seed": 7, "n_images": 10}}


def test_provenance_record_shape(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"w")
    (model / "config.json").write_text('{"heads": {"vocab_size": 5}}')
    record = provenance(
        ["--x", "a b"], prog="python -m bench.thing", model=model, engine={"name": "opensearch"}
    )
    assert set(REQUIRED_KEYS) <= set(record)
    assert record["command"] == "python -m bench.thing --x 'a b'"
    assert record["argv"] == ["python", "-m", "bench.thing", "--x", "a b"]
    assert record["git"] == git_describe()
    assert {"cpu", "cores", "torch", "python", "load_avg"} <= set(record["machine"])
    assert record["model"]["sha256"]["model.safetensors"] == hashlib.sha256(b"w").hexdigest()
    assert record["engine"] == {"name": "opensearch"} and "data" not in record


def test_model_record_takes_the_serving_weights(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"w")
    (model / "config.json").write_text('{"heads": {"vocab_size": 5}, "w1": 0.1, "w2": 0.1}')
    assert (model_record(model)["w1"], model_record(model)["w2"]) == (0.1, 0.1)
    (model / "serving.json").write_text('{"w1": 0.3, "w2": 0.05}')
    record = model_record(model)
    assert (record["w1"], record["w2"], record["training_w1_w2"]) == (0.3, 0.05, [0.1, 0.1])
    assert "serving.json" in record["sha256"]


def test_bench_workloads_name_the_data_and_vocabulary(mini_corpus):
    from bench.collection import dataset_workload, synthetic_workload

    synthetic = synthetic_workload(seed=7, n_images=1000, n_queries=50, vocab_size=362)
    assert synthetic["name"] == "synthetic" and synthetic["vocab_size"] == 362
    assert synthetic["recipe"]["seed"] == 7 and synthetic["recipe"]["n_images"] == 1000
    dataset = dataset_workload(mini_corpus, "test", 20, vocab_size=99)
    assert dataset["name"] == f"dataset {mini_corpus.name}" and dataset["vocab_size"] == 99
    assert dataset["split"] == "test" and dataset["recipe"]["seed"] == 3


def test_the_core_and_training_import_no_bench_even_lazily():
    """The provenance record lives in the core, so training (the demo model's recorder) and the
    tools use it without reaching into bench; the root command (sparse_mm/cli.py) assembles
    bench's command and is the one exception."""
    import ast

    from sparse_mm.provenance import REPO

    found = []
    for path in sorted([*(REPO / "sparse_mm").rglob("*.py"), *(REPO / "training").rglob("*.py")]):
        if path == REPO / "sparse_mm" / "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}: {n}" for n in names if n == "bench" or n.startswith("bench.")]
    assert found == []

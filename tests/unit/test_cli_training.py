"""`sparse-mm data synth`, `train` and `eval` through the command line: what they print, write
and refuse, checked against the library doing the same work."""

from __future__ import annotations

import json

import pytest
import torch

from sparse_mm.checkpoint import load_model
from sparse_mm.data import load_dataset
from sparse_mm.synth import SynthParams, synthesize
from tests.cli_run import one_line_error, run
from training.evaluate import evaluate_split

MODES = ("dense", "sparse", "integrated")
RECALLS = ("R@1", "R@5", "R@10", "MRR@10")


@pytest.fixture(scope="module")
def trained(mini_corpus, tmp_path_factory):
    """(the command's result, its model folder): one epoch on the mini corpus."""
    out = tmp_path_factory.mktemp("cli-train") / "model"
    result = run("train", "--data", mini_corpus, "--out", out, "--epochs", "1", "--seed", "3")
    return result, out


def _table(text: str) -> dict[str, list[float]]:
    """The metrics table `format_metrics` prints: mode -> [R@1, R@5, R@10 (%), MRR@10]."""
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in MODES:
            rows[parts[0]] = [float(x) for x in parts[1:5]]
    return rows


def test_data_synth_writes_the_corpus_the_library_writes(tmp_path):
    result = run("data", "synth", "--out", tmp_path / "cli", "--images", "120", "--seed", "9")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote a SYNTHETIC corpus to {tmp_path / 'cli'}: 120 images,")
    assert "600 captions" in result.stdout
    synthesize(tmp_path / "lib", SynthParams(seed=9, n_images=120))
    cli, lib = load_dataset(tmp_path / "cli"), load_dataset(tmp_path / "lib")
    assert len(cli.images.emb) == 120 and len(cli.texts.emb) == 600
    assert torch.equal(cli.images.emb, lib.images.emb) and torch.equal(cli.texts.emb, lib.texts.emb)
    assert set(cli.splits) == {"train", "val", "test"}


def test_data_synth_refuses_too_few_images(tmp_path):
    result = run("data", "synth", "--out", tmp_path, "--images", "5")
    one_line_error(result, "--images", "use at least 10 images", code=2)


def test_train_prints_its_best_epoch_and_writes_a_loadable_model(trained):
    result, out = trained
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    summary = next(line for line in lines if line.startswith("best epoch"))
    assert summary.startswith("best epoch 1 of 1 (") and summary.endswith(f"model in {out}")
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == [1]  # --epochs 1 overrode the config's
    # the table printed is the best epoch's validation metrics
    printed = _table(result.stdout)
    for mode in MODES:
        val = log[0]["val"][mode]
        assert printed[mode][:3] == pytest.approx([100 * val[k] for k in RECALLS[:3]], abs=0.006)
        assert printed[mode][3] == pytest.approx(val["MRR@10"], abs=6e-5)
    model = load_model(out)
    assert model.config.heads.in_dim == 768


def test_train_refuses_to_overwrite_a_run_silently(trained, mini_corpus):
    _, out = trained
    result = run("train", "--data", mini_corpus, "--out", out, "--epochs", "1")
    one_line_error(result, f"{out} is not empty", "--resume", "--overwrite")
    assert load_model(out)  # the earlier run is untouched


def test_eval_json_has_the_exact_shape_and_the_library_numbers(trained, mini_corpus, tmp_path):
    _, out = trained
    path = tmp_path / "metrics.json"
    result = run("eval", "--model", out, "--data", mini_corpus, "--json", path)
    assert result.exit_code == 0, result.output
    metrics = json.loads(path.read_text())
    assert list(metrics) == [*MODES, "sparsity", "run"]
    run_keys = ["model", "weights_sha256", "data", "split", "w1", "w2", "weights_kind", "topk"]
    assert list(metrics["run"])[: len(run_keys)] == run_keys
    assert metrics["run"]["split"] == "test" and metrics["run"]["weights_kind"] == "training"
    assert metrics["run"]["model"] == str(out.resolve())
    for mode in MODES:
        m = metrics[mode]
        assert list(m) == list(RECALLS) and all(isinstance(v, float) for v in m.values())
        assert 0 <= m["R@1"] <= m["R@5"] <= m["R@10"] <= 1
        assert m["R@1"] <= m["MRR@10"] <= m["R@10"]
    assert list(metrics["sparsity"]) == ["query_terms", "doc_terms", "flops"]
    assert all(v > 0 for v in metrics["sparsity"].values())
    expected = evaluate_split(load_model(out), load_dataset(mini_corpus, splits=["test"]), "test")
    for group, values in expected.items():  # the metrics themselves, "run" aside
        assert metrics[group] == pytest.approx(values, rel=1e-9), group
    printed = _table(result.stdout)
    assert printed["integrated"][0] == pytest.approx(100 * metrics["integrated"]["R@1"], abs=0.006)


def test_eval_topk_prunes_and_an_unknown_split_is_one_line(trained, mini_corpus, tmp_path):
    _, out = trained
    path = tmp_path / "top5.json"
    result = run("eval", "--model", out, "--data", mini_corpus, "--topk", "5", "--json", path)
    assert result.exit_code == 0, result.output
    sparsity = json.loads(path.read_text())["sparsity"]
    assert sparsity["query_terms"] <= 5 and sparsity["doc_terms"] <= 5
    one_line_error(run("eval", "--model", out, "--data", mini_corpus, "--split", "nope"), "nope")

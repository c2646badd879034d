"""The training recipe's switches (issue 13, item 4): precision and where the loss math runs,
the missing-initialisation warning, the switches recorded with a model, model selection under
a sparsity budget or after the warm-up, and serving weights tuned on the validation split."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from sparse_mm.checkpoint import SERVING, load_model, write_serving
from sparse_mm.data import load_dataset
from sparse_mm.errors import ConfigError, ModelError
from training.config import CONFIG_DIR, load_config
from training.evaluate import evaluate_split
from training.recipe import resolve_precision
from training.trainer import Trainer
from training.tune import tune_weights


def _config(**overrides):
    config, _ = load_config(CONFIG_DIR / "synthetic.json")
    return config.with_overrides(**{"epochs": 2, "batch_size": 64, "patience": 0, **overrides})


@pytest.fixture(scope="module")
def dataset(mini_corpus):
    return load_dataset(mini_corpus)


def _trainer(dataset, out, warnings=None, **overrides):
    sink = warnings if warnings is not None else []
    return Trainer(
        dataset, _config(**overrides), out, progress=False, log=lambda _: None, warn=sink.append
    )


def test_default_precision_follows_the_device():
    assert resolve_precision(_config(), torch.device("cpu")) == "fp32"
    assert resolve_precision(_config(), torch.device("cuda")) == "fp16"
    assert resolve_precision(_config(use_amp=False), torch.device("cuda")) == "fp32"
    assert resolve_precision(_config(precision="bf16"), torch.device("cuda")) == "bf16"
    with pytest.raises(ConfigError, match="precision"):
        _config(precision="fp8")


@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp32"])
def test_heads_run_under_autocast_and_the_loss_in_float32_outside(dataset, tmp_path, precision):
    trainer = _trainer(dataset, tmp_path / "m", precision=precision)
    assert trainer.scaler.is_enabled() == (precision == "fp16")
    seen = {}
    real_loss = trainer.loss.forward
    real_sparse = trainer.heads.sparse

    def loss(*args):
        seen["loss_autocast"] = torch.is_autocast_enabled("cpu")
        seen["loss_dtypes"] = {a.dtype for a in args if isinstance(a, torch.Tensor)}
        return real_loss(*args)

    def sparse(d):
        out = real_sparse(d)
        seen["head_dtype"] = out.dtype
        return out

    trainer.loss.forward, trainer.heads.sparse = loss, sparse
    before = trainer.heads.sparse_head.vocab.weight.detach().clone()
    parts = [trainer.train_step(torch.arange(64), torch.arange(64) % 50) for _ in range(3)]
    assert seen["loss_autocast"] is False and seen["loss_dtypes"] == {torch.float32}
    expected = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]
    assert seen["head_dtype"] == expected
    assert all(torch.isfinite(torch.tensor(p["loss"])) for p in parts)
    # the first step runs at learning rate 0 (warm-up factor step / warmup); later ones move
    assert not torch.equal(before, trainer.heads.sparse_head.vocab.weight)
    assert trainer.heads.sparse_head.vocab.weight.dtype == torch.float32


def test_missing_initial_weights_are_announced_in_one_line(mini_corpus, tmp_path):
    folder = tmp_path / "c"
    shutil.copytree(mini_corpus, folder)
    (folder / "init_projection.safetensors").unlink()
    warnings = []
    _trainer(load_dataset(folder), tmp_path / "m", warnings)
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "init_projection.safetensors" in warnings[0] and "random" in warnings[0]
    quiet = []
    _trainer(load_dataset(mini_corpus), tmp_path / "m2", quiet)
    assert quiet == []


@pytest.fixture(scope="module")
def budget_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("budget") / "model"
    warnings = []
    trainer = _trainer(
        dataset, out, warnings, select="sparse-r1-within-budget", max_query_terms=0.5
    )
    return out, trainer.fit(), warnings


def test_no_epoch_within_the_budget_keeps_the_last_and_says_so(budget_run):
    out, result, warnings = budget_run
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["eligible"] for r in records] == [False, False]
    assert all(r["query_terms"] > 0.5 and r["flops"] > 0 for r in records)
    assert result.best_epoch == 0 and len(warnings) == 1 and "no epoch met" in warnings[0]
    switches = load_model(out).config.provenance["switches"]
    assert switches["selected_by_rule"] is False and switches["selection"]["rule"] == (
        "sparse-r1-within-budget"
    )
    assert load_model(out).config.provenance["epoch"] == 2


def test_switches_are_recorded_with_the_model(budget_run):
    out, _, _ = budget_run
    switches = load_model(out).config.provenance["switches"]
    assert switches["teacher"] == "transposed" and switches["precision"] == "fp32"
    assert switches["train_splits"] == ["train"]
    schedule = switches["schedule"]
    assert schedule["total_steps"] == 2 * schedule["steps_per_epoch"]
    assert "step / warmup" in schedule["lr"]


def test_selection_after_the_warmup_skips_warmup_epochs(dataset, tmp_path):
    trainer = _trainer(
        dataset, tmp_path / "m", epochs=3, warmup_ratio=0.5, select="sparse-r1-after-warmup"
    )
    eligible = []
    for epoch in (1, 2, 3):
        trainer.epoch = epoch
        eligible.append(trainer.eligible({"sparsity": {}}))
    assert eligible == [False, True, True]


def test_a_budget_needs_the_budget_rule():
    with pytest.raises(ConfigError, match="max_flops"):
        _config(max_flops=10.0)
    with pytest.raises(ConfigError, match="max_flops"):
        _config(select="sparse-r1-within-budget")


def test_tuned_serving_weights_are_stored_apart_and_used(dataset, budget_run, tmp_path):
    src, _, _ = budget_run
    model_dir = tmp_path / "m"
    shutil.copytree(src, model_dir)
    model = load_model(model_dir)
    assert model.serving_weights() == (model.config.w1, model.config.w2)
    record = tune_weights(model, dataset, "val")
    ratios = [g["w2_over_w1"] for g in record["grid"]]
    assert model.config.w2 / model.config.w1 in ratios
    best = max(g["R@1"] for g in record["grid"])
    assert record["metrics"]["R@1"] == best >= record["training_weights_metrics"]["R@1"]
    w1, w2 = record.pop("w1"), record.pop("w2")
    write_serving(model_dir, w1, w2, record)
    tuned = load_model(model_dir)
    assert tuned.serving_weights() == (w1, w2)
    assert (tuned.config.w1, tuned.config.w2) == (model.config.w1, model.config.w2)
    # the sweep's figure is what a full evaluation with those weights gives
    again = evaluate_split(tuned, dataset, "val", weights=(w1, w2))
    assert again["integrated"]["R@1"] == pytest.approx(record["metrics"]["R@1"])
    (model_dir / SERVING).write_text('{"w1": 0, "w2": 1}')
    with pytest.raises(ModelError, match="positive"):
        load_model(model_dir)


def test_the_default_device_is_cuda_when_torch_sees_a_gpu(monkeypatch, capsys):
    from sparse_mm.cli_support import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(None) == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == "cpu"
    assert resolve_device("cuda:1", announce=False) == "cuda:1"
    assert capsys.readouterr().err.splitlines() == ["device: cuda", "device: cpu"]


def _one_line_error(result, fragment):
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines


def test_command_line_misuse_is_one_line(mini_corpus, budget_run, tmp_path):
    from click.testing import CliRunner

    from sparse_mm.cli import main

    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    _one_line_error(run("train", "--data", tmp_path / "nope", "--out", tmp_path / "m"), "nope")
    _one_line_error(
        run("train", "--data", mini_corpus, "--out", tmp_path / "m", "--max-flops", "3"),
        "max_flops",
    )
    _one_line_error(
        run("tune-weights", "--model", tmp_path / "nope", "--data", mini_corpus), "nope"
    )
    model = budget_run[0]
    _one_line_error(
        run("tune-weights", "--model", model, "--data", mini_corpus, "--split", "dev"),
        "no split 'dev'",
    )
    _one_line_error(run("eval", "--model", model, "--data", mini_corpus, "--split", "x"), "'x'")
    ok = run("eval", "--model", model, "--data", mini_corpus, "--split", "val", "--device", "cpu")
    assert ok.exit_code == 0 and ok.stderr.strip() == "device: cpu"


def test_saving_a_new_best_epoch_drops_serving_weights_tuned_for_the_old_one(dataset, tmp_path):
    out = tmp_path / "m"
    trainer = _trainer(dataset, out)
    out.mkdir()
    metrics = trainer.validate()
    trainer._save(out, metrics)
    write_serving(out, 0.1, 0.5, {"split": "val"})
    assert load_model(out).serving_weights() == (0.1, 0.5)
    trainer._save(out, metrics)
    assert not (out / SERVING).exists()
    assert load_model(out).serving_weights() == (trainer.config.w1, trainer.config.w2)

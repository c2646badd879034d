"""The trainer on a tiny synthetic corpus: it learns, it resumes to the same weights as an
uninterrupted run, it is deterministic, D2S leaves the dense side alone, and it writes a
loadable model directory and one log line per epoch."""

from __future__ import annotations

import json

import pytest
import torch

from sparse_mm.checkpoint import load_model
from sparse_mm.data import load_dataset
from training.config import CONFIG_DIR, load_config
from training.evaluate import evaluate_split
from training.trainer import STATE_FILE, Trainer


@pytest.fixture(scope="module")
def dataset(mini_corpus):
    return load_dataset(mini_corpus)


def _config(**overrides):
    config, _ = load_config(CONFIG_DIR / "synthetic.json")
    return config.with_overrides(**{"epochs": 2, "batch_size": 64, "patience": 0, **overrides})


def _weights(model_dir):
    return load_model(model_dir).heads.state_dict()


@pytest.fixture(scope="module")
def two_epochs(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "model"
    result = Trainer(dataset, _config(), out, progress=False, log=lambda _: None).fit()
    return out, result


def test_two_epochs_learn_a_sparse_retriever(dataset, two_epochs):
    out, result = two_epochs
    untrained = Trainer(dataset, _config(), out.parent / "unused", progress=False).validate()
    assert result.epochs_run == 2 and result.best_epoch in (1, 2)
    assert result.best_metrics["sparse"]["R@1"] > untrained["sparse"]["R@1"] + 0.1
    # the best epoch is the model directory, and it evaluates to what training recorded
    again = evaluate_split(load_model(out), dataset, "val")
    assert again["sparse"]["R@1"] == pytest.approx(result.best_metrics["sparse"]["R@1"])


def test_log_has_one_line_per_epoch_with_the_loss_parts(two_epochs):
    out, _ = two_epochs
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for record in records:
        assert {"loss", "lr", "tau", "val"} <= set(record)
        assert set(record["val"]) >= {"dense", "sparse", "integrated", "sparsity"}


def test_same_seed_same_weights(dataset, two_epochs, tmp_path):
    out, _ = two_epochs
    Trainer(dataset, _config(), tmp_path / "m", progress=False, log=lambda _: None).fit()
    for name, tensor in _weights(out / "last").items():
        assert torch.equal(tensor, _weights(tmp_path / "m" / "last")[name]), name


def test_resume_after_a_crash_equals_the_uninterrupted_run(dataset, two_epochs, tmp_path):
    out, _ = two_epochs
    crashing = Trainer(dataset, _config(), tmp_path / "m", progress=False, log=lambda _: None)
    real_epoch = crashing._train_epoch

    def crash_in_second_epoch():
        if crashing.epoch == 1:
            raise KeyboardInterrupt
        return real_epoch()

    crashing._train_epoch = crash_in_second_epoch
    with pytest.raises(KeyboardInterrupt):
        crashing.fit()
    assert (tmp_path / "m" / "last" / STATE_FILE).exists()
    fresh = Trainer(dataset, _config(), tmp_path / "m", progress=False, log=lambda _: None)
    result = fresh.fit(resume=True)
    assert result.epochs_run == 2
    reference = _weights(out / "last")
    for name, tensor in _weights(tmp_path / "m" / "last").items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=1e-6, msg=name)
    lines = (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_resume_refuses_other_settings_or_nothing_to_resume(dataset, two_epochs, tmp_path):
    from sparse_mm.errors import ConfigError

    out, _ = two_epochs
    with pytest.raises(ConfigError, match="other settings"):
        Trainer(dataset, _config(lr=0.01), out, progress=False).fit(resume=True)
    with pytest.raises(ConfigError, match="nothing to resume"):
        Trainer(dataset, _config(), tmp_path / "empty", progress=False).fit(resume=True)


def test_d2s_trains_only_the_sparse_head(dataset, tmp_path):
    trainer = Trainer(
        dataset,
        _config(method="d2s", epochs=1),
        tmp_path / "d2s",
        progress=False,
        log=lambda _: None,
    )
    before = {k: v.clone() for k, v in trainer.heads.state_dict().items()}
    trainer.fit()
    after = _weights(tmp_path / "d2s" / "last")
    for name in before:
        moved = not torch.equal(before[name], after[name])
        assert moved == name.startswith("sparse_head"), name


class _RunsCode:
    """Unpickling this calls `Path.touch(marker)`: what a crafted state file could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.marker),))


def test_resume_refuses_a_state_file_that_would_run_code(dataset, tmp_path):
    from sparse_mm.errors import ConfigError

    out, marker = tmp_path / "crafted", tmp_path / "code-ran"
    (out / "last").mkdir(parents=True)
    torch.save({"epoch": 1, "optimizer": _RunsCode(marker)}, out / "last" / STATE_FILE)
    trainer = Trainer(dataset, _config(), out, progress=False, log=lambda _: None)
    with pytest.raises(ConfigError, match="refusing to load it"):
        trainer.fit(resume=True)
    assert not marker.exists()

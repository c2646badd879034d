"""Reading the reference implementation's JSON configs."""

from __future__ import annotations

import json

import pytest

from sparse_mm.errors import ConfigError
from training.config import CONFIG_DIR, TrainConfig, load_config

PAPER = {  # METHOD.md's table: w1, w2, lam1, lam2, eta_t, eta_i, lr
    "blip-coco": (0.1, 0.1, 0.9, 0.3, 5e-4, 3e-5, 5e-5),
    "albef-coco": (0.2, 0.5, 0.9, 0.3, 1e-5, 3e-5, 5e-5),
    "blip-flickr": (0.1, 0.2, 0.7, 0.7, 1e-4, 2e-5, 1e-5),
    "albef-flickr": (0.1, 0.2, 0.3, 0.3, 1e-4, 2e-5, 1e-5),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_reference_configs_load_with_the_papers_values(name):
    cfg, ignored = load_config(CONFIG_DIR / f"{name}.json")
    got = (cfg.w1, cfg.w2, cfg.lam1, cfg.lam2, cfg.eta_text, cfg.eta_image, cfg.lr)
    assert got == PAPER[name]
    assert (cfg.batch_size, cfg.temp, cfg.epochs, cfg.patience, cfg.seed) == (
        256,
        0.07,
        200,
        20,
        42,
    )
    assert ignored == []


def test_unknown_keys_are_returned_not_fatal(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"lr": 1e-4, "model_name": "x", "num_workers": 4}))
    cfg, ignored = load_config(path)
    assert cfg.lr == 1e-4 and ignored == ["model_name", "num_workers"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"lr": -1}', "lr must be > 0"),
        ('{"train_batch_size": 1}', "batch_size must be >= 2"),
        ('{"train_batch_size": 25.5}', "batch_size must be int"),
        ('{"temp": 0.9}', "temp must be within"),
        ('{"use_amp": "yes"}', "use_amp must be bool"),
        ('{"w2": 0}', "w2 must be > 0"),
        ('{"method": "splade"}', "method must be"),
        ('{"lr": 1e-4,}', "invalid JSON at line 1"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_malformed_configs_fail_clearly(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file_and_overrides():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(CONFIG_DIR / "nope.json")
    cfg = TrainConfig().with_overrides(epochs=3, lr=None)
    assert cfg.epochs == 3 and cfg.lr == TrainConfig().lr
    with pytest.raises(ConfigError, match="unknown training settings: bogus"):
        TrainConfig().with_overrides(bogus=1)

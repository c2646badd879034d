"""The demo model's recorded provenance (sparse_mm/demo/model/provenance.json, written by
`python -m training.demo_model --record`) describes the committed weights, and its test
metrics are what the weights score on the demo corpus today."""

from __future__ import annotations

import json

import pytest

from sparse_mm.checkpoint import load_model
from sparse_mm.data import load_dataset
from sparse_mm.demo import demo_data_dir, demo_model_dir
from sparse_mm.provenance import REQUIRED_KEYS, is_clean, model_record
from training.demo_model import PROVENANCE_FILE
from training.evaluate import evaluate_split

TOLERANCE = 0.002  # R@1 as a fraction: 10 of the 5,000 test captions


@pytest.fixture(scope="module")
def recorded():
    return json.loads((demo_model_dir() / PROVENANCE_FILE).read_text())


def test_record_describes_the_committed_weights(recorded):
    assert set(REQUIRED_KEYS) <= set(recorded) and is_clean(recorded["git"])
    assert recorded["model"]["sha256"] == model_record(demo_model_dir())["sha256"], (
        "the demo model's files changed: run `python -m training.demo_model --record` at a "
        "clean commit"
    )
    assert recorded["data"]["recipe"]["seed"] == 7 and recorded["data"]["recipe"]["n_images"]


def test_recorded_test_metrics_hold(recorded):
    metrics = evaluate_split(
        load_model(demo_model_dir()), load_dataset(demo_data_dir(), splits=["test"]), "test"
    )
    for side in ("dense", "sparse", "integrated"):
        assert metrics[side]["R@1"] == pytest.approx(
            recorded["test"][side]["R@1"], abs=TOLERANCE
        ), side
    assert metrics["sparsity"]["flops"] == pytest.approx(
        recorded["test"]["sparsity"]["flops"], rel=0.01
    )

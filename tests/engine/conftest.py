"""Engine-test fixtures: a small synthetic corpus and a model trained on it for one epoch; `java`
for the tests that start nodes of their own."""

from __future__ import annotations

import pytest

from sparse_mm.checkpoint import load_model
from sparse_mm.data import load_dataset
from sparse_mm.synth import SynthParams, synthesize
from tests.engine.local_nodes import require_java
from training.config import TrainConfig
from training.trainer import Trainer


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("engine-corpus")
    synthesize(out, SynthParams(seed=5, n_images=4000))
    return out


@pytest.fixture(scope="session")
def trained_model(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("engine-model") / "model"
    config = TrainConfig(epochs=1, lr=1e-3, eta_text=3e-3, eta_image=1e-3, patience=0)
    Trainer(load_dataset(corpus), config, out, progress=False, log=lambda _m: None).fit()
    return load_model(out)


@pytest.fixture(scope="session")
def java() -> None:
    """A test that starts its own node fails with one line when no Java 21+ is installed."""
    require_java()

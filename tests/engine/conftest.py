"""Engine-test fixtures: a small synthetic corpus, a model trained on it for one epoch, the
corpus's test split ingested by the command line; `java` for the tests that start nodes of their
own."""

from __future__ import annotations

import uuid

import pytest

from sparse_mm.checkpoint import load_model
from sparse_mm.data import load_dataset
from sparse_mm.synth import SynthParams, synthesize
from tests.cli_run import run
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
def other_model(corpus, tmp_path_factory):
    """A second model of the corpus (other regularisation and seed): same dimensions, other
    weights, so an index bound to one is not the other's."""
    out = tmp_path_factory.mktemp("engine-model-b") / "model"
    config = TrainConfig(epochs=1, lr=2e-3, eta_text=1e-3, eta_image=3e-4, patience=0, seed=7)
    Trainer(load_dataset(corpus), config, out, progress=False, log=lambda _m: None).fit()
    return load_model(out)


def bucket(image_id: str) -> int:
    """0-999, spread evenly over the images: `bucket<500` keeps about half of them, `<50`
    about 5%, `<1` about 0.1%."""
    import hashlib

    return int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16) % 1000


@pytest.fixture(scope="session")
def meta_corpus(corpus, tmp_path_factory):
    """The corpus with metadata fields of its own in the meta file: `bucket` (long, for
    filters of a chosen selectivity), `licence` (keyword), `year` (long), `tags` (keywords)."""
    import json

    out = tmp_path_factory.mktemp("meta-corpus")
    for item in corpus.iterdir():
        if item.name != "dataset_meta.json":
            (out / item.name).symlink_to(item)
    meta = json.loads((corpus / "dataset_meta.json").read_text())
    for n, entry in enumerate(meta["images"]):
        entry["bucket"] = bucket(str(entry["imgid"]))
        entry["licence"] = ("cc-by", "cc0", "all-rights-reserved")[n % 3]
        entry["year"] = 1990 + n % 35
        entry["tags"] = ["even" if n % 2 == 0 else "odd", f"decade-{(1990 + n % 35) // 10}0s"]
    (out / "dataset_meta.json").write_text(json.dumps(meta))
    return out


@pytest.fixture(scope="module")
def cli_index(engine, corpus, trained_model, tmp_path_factory):
    """(index name, the ingest's result): `sparse-mm ingest` of the corpus's test split into
    the module's engine (module scope: a module may run on each engine in turn)."""
    name = f"test-cli-{uuid.uuid4().hex[:8]}"
    rejects = tmp_path_factory.mktemp("cli-ingest") / "rejects.jsonl"
    result = run(
        "ingest", "--model", trained_model.path, "--data", corpus, "--split", "test",
        "--index", name, "--engine", engine.name, "--url", engine.url, "--rejects", rejects,
    )  # fmt: skip
    yield name, result
    engine.client.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture(scope="session")
def java() -> None:
    """A test that starts its own node fails with one line when no Java 21+ is installed."""
    require_java()

"""The model binding's pure logic: what it records of a model, and when two differ."""

from __future__ import annotations

import json
import shutil

import pytest

from indexing.binding import (
    BINDING_KEY,
    binding_differences,
    mismatch_line,
    model_binding,
    short_hash,
)
from sparse_mm.checkpoint import load_model, sha256_file
from sparse_mm.demo import demo_model_dir


@pytest.fixture(scope="module")
def demo():
    return load_model(demo_model_dir())


def test_the_binding_records_the_model_by_content(demo) -> None:
    binding = model_binding(demo)
    assert binding["weights_sha256"] == sha256_file(demo.path / "model.safetensors")
    assert binding["vocab_sha256"] == sha256_file(demo.path / "vocab.txt")
    assert (binding["w1"], binding["w2"]) == demo.serving_weights()
    assert binding["query_encoder"]["type"] == demo.config.query_encoder["type"]
    assert binding["query_encoder"]["file_sha256"] == sha256_file(
        demo.path / demo.config.query_encoder["file"]
    )
    assert short_hash(binding) == binding["weights_sha256"][:12]


def test_a_copy_elsewhere_is_the_same_model(demo, tmp_path) -> None:
    copy = shutil.copytree(demo.path, tmp_path / "copy")
    recorded = model_binding(demo)
    assert binding_differences(recorded, model_binding(load_model(copy))) == []
    assert mismatch_line("photos", {BINDING_KEY: recorded}, model_binding(load_model(copy))) is None


def test_other_serving_weights_are_another_binding(demo, tmp_path) -> None:
    copy = shutil.copytree(demo.path, tmp_path / "tuned")
    (copy / "serving.json").write_text(json.dumps({"w1": 0.25, "w2": 0.75}))
    recorded, tuned = model_binding(demo), model_binding(load_model(copy))
    assert binding_differences(recorded, tuned) == ["serving weight w1", "serving weight w2"]
    line = mismatch_line("photos", {BINDING_KEY: recorded}, tuned)
    assert short_hash(recorded) in line and str(copy) in line and str(demo.path) in line


def test_other_weights_are_named_with_both_models() -> None:
    a = {"weights_sha256": "a" * 64, "vocab_sha256": "v", "w1": 1.0, "w2": 1.0, "path": "/m/a"}
    b = {**a, "weights_sha256": "b" * 64, "path": "/m/b"}
    line = mismatch_line("photos", {BINDING_KEY: a}, b)
    assert "a" * 12 in line and "b" * 12 in line and "/m/a" in line and "/m/b" in line
    assert "different weights" in line and "\n" not in line


def test_an_index_without_a_binding_is_refused_with_the_way_out() -> None:
    b = {"weights_sha256": "b" * 64, "path": "/m/b"}
    line = mismatch_line("old", {"model": "/m/a"}, b)
    assert "before sparse-mm recorded" in line and "/m/a" in line and "--alias" in line

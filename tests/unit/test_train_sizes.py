"""`train` on a backbone that is not 768 -> 256: the heads' sizes come from the data's
initialisation files when the config leaves them out (said in one line), a config that
contradicts those files is refused naming its key, and the reference's sizes stay as they were."""

from __future__ import annotations

import json

import pytest

from sparse_mm.checkpoint import load_model
from sparse_mm.data import load_dataset
from sparse_mm.synth import SynthParams, synthesize
from tests.cli_run import one_line_error, run
from training.config import CONFIG_DIR, TrainConfig, load_config
from training.heads_setup import resolve_sizes


@pytest.fixture(scope="module")
def narrow_corpus(tmp_path_factory):
    """A synthetic corpus from a 48-wide backbone with 16-d projections."""
    out = tmp_path_factory.mktemp("narrow")
    synthesize(out, SynthParams(seed=5, n_images=120, dim=48, dense_dim=16))
    return out


def _config_file(tmp_path, **extra):
    raw = json.loads((CONFIG_DIR / "synthetic.json").read_text())
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**raw, "epochs": 1, "train_batch_size": 32, **extra}))
    return path


def test_train_takes_the_sizes_from_the_data_and_says_so(narrow_corpus, tmp_path):
    out = tmp_path / "model"
    result = run("train", "--data", narrow_corpus, "--config", _config_file(tmp_path), "--out", out)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: the heads")]
    assert len(notes) == 1, result.stderr
    assert "dense_dim 16 (init_projection.safetensors)" in notes[0]
    assert "hidden_dim 48 (word_embeddings.safetensors)" in notes[0]
    heads = load_model(out).config.heads
    assert (heads.in_dim, heads.dense_dim, heads.hidden_dim) == (48, 16, 48)


def test_a_config_that_contradicts_the_data_names_its_key(narrow_corpus, tmp_path):
    config = _config_file(tmp_path, hidden_dim=768)
    result = run("train", "--data", narrow_corpus, "--config", config, "--out", tmp_path / "m")
    one_line_error(result, "hidden_dim 768", "48 columns", "word_embeddings.safetensors")
    config = _config_file(tmp_path, dense_dim=256)
    result = run("train", "--data", narrow_corpus, "--config", config, "--out", tmp_path / "m")
    one_line_error(result, "dense_dim 256", "16 rows", "init_projection.safetensors")


def test_the_reference_sizes_are_unchanged_and_unannounced(mini_corpus):
    config, _ = load_config(CONFIG_DIR / "synthetic.json")
    resolved, note = resolve_sizes(config, load_dataset(mini_corpus))
    assert (resolved.dense_dim, resolved.hidden_dim) == (256, 768) and note is None
    assert (TrainConfig().dense_dim, TrainConfig().hidden_dim) == (None, None)


def test_without_initialisation_files_hidden_follows_the_backbone(narrow_corpus, tmp_path):
    dataset = load_dataset(narrow_corpus)
    dataset.init_projection = dataset.word_embeddings = None
    resolved, note = resolve_sizes(TrainConfig(), dataset)
    assert (resolved.dense_dim, resolved.hidden_dim) == (256, 48)
    assert "hidden_dim 48 (the embeddings' width)" in note

"""Model directories: round trip, and one clear error per kind of damage."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from sparse_mm.checkpoint import ModelConfig, load_model, save_model
from sparse_mm.errors import ModelError
from sparse_mm.model import HeadsConfig, SparseDenseHeads
from sparse_mm.vocab import Vocabulary

TOKENS = ["dog", "u.s.", "##s", '"q"', "back\\slash", "naïve", "日本", "a b", "[CLS]", "50%"]
CFG = HeadsConfig(vocab_size=len(TOKENS), in_dim=6, dense_dim=4, hidden_dim=5)


@pytest.fixture
def saved(tmp_path):
    heads = SparseDenseHeads(CFG, seed=3)
    path = save_model(tmp_path / "m", heads, Vocabulary(TOKENS), ModelConfig(CFG, w1=0.2, w2=0.5))
    return heads, path


def test_round_trip_gives_identical_outputs(saved):
    heads, path = saved
    loaded = load_model(path)
    x = torch.randn(7, 6)
    for modality in ("text", "image"):
        a, b = heads(x, modality), loaded.heads(x, modality)
        assert torch.equal(a.dense, b.dense) and torch.equal(a.sparse, b.sparse)
    assert loaded.vocab.tokens == tuple(TOKENS)
    assert (loaded.config.w1, loaded.config.w2) == (0.2, 0.5)


def test_float16_save_loads_as_float32(tmp_path):
    heads = SparseDenseHeads(CFG, seed=3)
    path = save_model(
        tmp_path / "h", heads, Vocabulary(TOKENS), ModelConfig(CFG, 0.1, 0.1), dtype=torch.float16
    )
    loaded = load_model(path)
    assert loaded.heads.text_proj.weight.dtype == torch.float32
    assert torch.allclose(loaded.heads.text_proj.weight, heads.text_proj.weight, atol=1e-3)


def test_saving_replaces_atomically(saved, tmp_path):
    heads, path = saved
    save_model(path, heads, Vocabulary(TOKENS), ModelConfig(CFG, w1=0.3, w2=0.5))
    assert load_model(path).config.w1 == 0.3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def _damage(path, kind):
    if kind == "no dir":
        shutil.rmtree(path)
    elif kind == "no config":
        (path / "config.json").unlink()
    elif kind == "bad json":
        (path / "config.json").write_text("{")
    elif kind == "no vocab":
        (path / "vocab.txt").unlink()
    elif kind == "vocab size":
        (path / "vocab.txt").write_text("dog\ncat\n")
    elif kind == "no weights":
        (path / "model.safetensors").unlink()
    elif kind == "shape":
        config = json.loads((path / "config.json").read_text())
        config["heads"]["dense_dim"] = 3
        (path / "config.json").write_text(json.dumps(config))
    elif kind == "missing tensor":
        from safetensors.torch import load_file, save_file

        state = load_file(str(path / "model.safetensors"))
        del state["sparse_head.norm.bias"]
        save_file(state, str(path / "model.safetensors"))


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("no dir", "does not exist"),
        ("no config", "config.json is missing"),
        ("bad json", "invalid JSON"),
        ("no vocab", "vocabulary file not found"),
        ("vocab size", "has 2 tokens but"),
        ("no weights", "model.safetensors is missing"),
        ("shape", r"text_proj.weight has shape \(4, 6\), config.json implies \(3, 6\)"),
        ("missing tensor", "tensors missing: sparse_head.norm.bias"),
    ],
)
def test_damaged_model_dirs_give_one_clear_error(saved, kind, message):
    _, path = saved
    _damage(path, kind)
    with pytest.raises(ModelError, match=message):
        load_model(path)


def test_vocabulary_files(tmp_path):
    path = tmp_path / "vocab.txt"
    Vocabulary(TOKENS).save(path)
    assert Vocabulary.from_file(path).tokens == tuple(TOKENS)
    path.write_text("dog\ncat\ndog\n")
    with pytest.raises(Exception, match="line 3 repeats 'dog' from line 1"):
        Vocabulary.from_file(path)

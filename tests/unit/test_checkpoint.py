"""Model directories: round trip, atomic replacement, and one clear error per kind of damage."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from sparse_mm.checkpoint import ModelConfig, load_model, save_model
from sparse_mm.errors import ModelError
from sparse_mm.model import HeadsConfig, SparseDenseHeads
from sparse_mm.vocab import Vocabulary

TOKENS = ["dog", "u.s.", "##s", '"q"', "back\\slash", "naïve", "日本", "a b", "[CLS]", "50%"]
CFG = HeadsConfig(vocab_size=len(TOKENS), in_dim=6, dense_dim=4, hidden_dim=5)
CONFIG = ModelConfig(
    CFG,
    w1=0.2,
    w2=0.5,
    query_encoder={"type": "synthetic", "file": "query_encoder.safetensors"},
    provenance={"method": "joint", "metrics": {"R@1": 0.5}},
)


@pytest.fixture
def saved(tmp_path):
    heads = SparseDenseHeads(CFG, seed=3)
    return heads, save_model(tmp_path / "m", heads, Vocabulary(TOKENS), CONFIG)


def test_round_trip_gives_identical_outputs(saved):
    heads, path = saved
    loaded = load_model(path)
    assert loaded.path == path and loaded.config == CONFIG
    assert loaded.vocab.tokens == tuple(TOKENS)
    assert not loaded.heads.training
    x = torch.randn(7, 6)
    for modality in ("text", "image"):
        a, b = heads(x, modality), loaded.heads(x, modality)
        assert torch.equal(a.dense, b.dense) and torch.equal(a.sparse, b.sparse)
    # loaded weights are ordinary trainable float32 CPU parameters
    for p in loaded.heads.parameters():
        assert p.device.type == "cpu" and p.dtype == torch.float32 and p.requires_grad
    loaded.heads(x, "text").sparse.sum().backward()
    assert loaded.heads.text_proj.weight.grad is not None


def test_float16_save_loads_as_float32(tmp_path):
    heads = SparseDenseHeads(CFG, seed=3)
    path = save_model(tmp_path / "h", heads, Vocabulary(TOKENS), CONFIG, dtype=torch.float16)
    assert all(
        t.dtype == torch.float16 for t in load_file(str(path / "model.safetensors")).values()
    )
    loaded = load_model(path)
    for name, tensor in heads.state_dict().items():
        got = loaded.heads.state_dict()[name]
        assert got.dtype == torch.float32 and torch.equal(got, tensor.half().float())


def test_saving_replaces_atomically_and_includes_extras(saved, tmp_path):
    heads, path = saved
    again = ModelConfig(CFG, w1=0.3, w2=0.5)
    save_model(
        path, heads, Vocabulary(TOKENS), again, extras=lambda d: (d / "x.bin").write_bytes(b"1")
    )
    assert load_model(path).config.w1 == 0.3 and (path / "x.bin").read_bytes() == b"1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]

    def crash(folder):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_model(path, heads, Vocabulary(TOKENS), CONFIG, extras=crash)
    assert load_model(path).config.w1 == 0.3  # the previous model is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_replacing_a_model_leaves_a_complete_model_at_every_step(saved, tmp_path, monkeypatch):
    """After each step that moves a folder, the path holds a whole model (old or new): no
    moment without a model directory, as between two renames."""
    import pathlib

    import sparse_mm.checkpoint as checkpoint

    heads, path = saved
    seen = []

    def observed(step):
        def wrapper(*args, **kwargs):
            out = step(*args, **kwargs)
            seen.append(load_model(path).config.w1)  # a ModelError when no model is there
            return out

        return wrapper

    monkeypatch.setattr(pathlib.Path, "rename", observed(pathlib.Path.rename))
    monkeypatch.setattr(checkpoint, "exchange_paths", observed(checkpoint.exchange_paths))
    save_model(path, heads, Vocabulary(TOKENS), ModelConfig(CFG, w1=0.3, w2=0.5))
    assert seen == [0.3]  # one step, from the old model straight to the new one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_without_an_atomic_exchange_the_previous_model_is_the_backup(saved, tmp_path, monkeypatch):
    import sparse_mm.checkpoint as checkpoint

    heads, path = saved
    monkeypatch.setattr(checkpoint, "exchange_paths", lambda a, b: False)
    moves = []
    real = checkpoint.Path.rename
    monkeypatch.setattr(
        checkpoint.Path, "rename", lambda a, b: (moves.append((a.name, b.name)), real(a, b))[1]
    )
    save_model(path, heads, Vocabulary(TOKENS), ModelConfig(CFG, w1=0.4, w2=0.5))
    assert moves[0] == ("m", ".m-old") and moves[1][1] == "m"  # backup first, then the new
    assert load_model(path).config.w1 == 0.4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # the backup is removed


def test_save_refuses_inconsistent_inputs(tmp_path):
    heads = SparseDenseHeads(CFG, seed=3)
    with pytest.raises(ModelError, match="vocabulary has 2 tokens, config says 10"):
        save_model(tmp_path / "m", heads, Vocabulary(["a", "b"]), CONFIG)
    assert not (tmp_path / "m").exists()


def test_config_dict_round_trip_and_strictness():
    assert ModelConfig.from_dict(json.loads(json.dumps(CONFIG.to_dict()))) == CONFIG
    raw = CONFIG.to_dict()
    with pytest.raises(ModelError, match="format_version 2 is not supported"):
        ModelConfig.from_dict({**raw, "format_version": 2})
    with pytest.raises(ModelError, match="missing keys: w2"):
        ModelConfig.from_dict({k: v for k, v in raw.items() if k != "w2"})
    with pytest.raises(ModelError, match="unknown keys: w3"):
        ModelConfig.from_dict({**raw, "w3": 1.0})
    with pytest.raises(ModelError, match="bad 'heads' section"):
        ModelConfig.from_dict({**raw, "heads": {"vocab": 3}})
    with pytest.raises(ModelError, match="vocab_size must be a positive integer"):
        ModelConfig.from_dict({**raw, "heads": {"vocab_size": 0}})
    with pytest.raises(ModelError, match="w1 must be a number"):
        ModelConfig.from_dict({**raw, "w1": "0.1"})


def _rewrite_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            config[key].update(value)
        else:
            config[key] = value
    (path / "config.json").write_text(json.dumps(config))


def _edit_weights(path, edit):
    state = load_file(str(path / "model.safetensors"))
    edit(state)
    save_file(state, str(path / "model.safetensors"))


DAMAGE = {
    "no dir": (lambda p: shutil.rmtree(p), "does not exist"),
    "no config": (lambda p: (p / "config.json").unlink(), r"config.json is missing"),
    "bad json": (lambda p: (p / "config.json").write_text("{"), "config.json: invalid JSON"),
    "not an object": (lambda p: (p / "config.json").write_text("[]"), "expected a JSON object"),
    "no vocab": (lambda p: (p / "vocab.txt").unlink(), "vocab.txt: vocabulary file not found"),
    "vocab size": (
        lambda p: (p / "vocab.txt").write_text("dog\ncat\n"),
        "vocab.txt has 2 tokens but .*config.json says vocab_size 10",
    ),
    "no weights": (lambda p: (p / "model.safetensors").unlink(), "model.safetensors is missing"),
    "corrupt weights": (
        lambda p: (p / "model.safetensors").write_bytes(b"not safetensors"),
        "model.safetensors is not a readable safetensors file",
    ),
    "shape vs config": (
        lambda p: _rewrite_config(p, heads={"dense_dim": 3}),
        r"model.safetensors: text_proj.weight has shape \(4, 6\), config.json implies \(3, 6\)",
    ),
    "wrong tensor shape": (
        lambda p: _edit_weights(p, lambda s: s.update({"sparse_head.fc.bias": torch.zeros(7)})),
        r"sparse_head.fc.bias has shape \(7,\), config.json implies \(5,\)",
    ),
    "missing tensor": (
        lambda p: _edit_weights(p, lambda s: s.pop("sparse_head.norm.bias")),
        "tensors missing: sparse_head.norm.bias",
    ),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_model_dirs_give_one_clear_error(saved, kind):
    _, path = saved
    damage, message = DAMAGE[kind]
    damage(path)
    with pytest.raises(ModelError, match=message) as info:
        load_model(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_saved_directory_has_the_permissions_of_a_normal_one(saved):
    import os
    import stat

    _, folder = saved
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name

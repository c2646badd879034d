"""The query-encoder registry: dispatch on config.json's description, clear errors."""

from __future__ import annotations

import sys

import pytest
import torch

import sparse_mm.encoders as encoders
from sparse_mm.checkpoint import ModelConfig, load_model, save_model
from sparse_mm.encoders import BlipTextEncoder, load_query_encoder, register_query_encoder
from sparse_mm.errors import ModelError, SparseMMError
from sparse_mm.model import HeadsConfig, SparseDenseHeads
from sparse_mm.vocab import Vocabulary

CFG = HeadsConfig(vocab_size=3, in_dim=4, dense_dim=2, hidden_dim=3)


class _Fixed:
    def __init__(self, in_dim: int, scale: float) -> None:
        self.in_dim, self.scale = in_dim, scale

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return torch.full((len(texts), self.in_dim), self.scale)


def _model(tmp_path, query_encoder):
    config = ModelConfig(CFG, w1=1.0, w2=1.0, query_encoder=query_encoder)
    path = save_model(tmp_path / "m", SparseDenseHeads(CFG), Vocabulary("abc"), config)
    return load_model(path)


def test_dispatch_passes_the_model_dir_and_description(tmp_path, monkeypatch):
    monkeypatch.setattr(encoders, "_LOADERS", dict(encoders._LOADERS))
    seen = {}

    def loader(model_dir, desc):
        seen.update(dir=model_dir, desc=desc)
        return _Fixed(4, desc["scale"])

    register_query_encoder("fixed", loader)
    model = _model(tmp_path, {"type": "fixed", "scale": 2.5})
    encoder = load_query_encoder(model)
    assert seen == {"dir": model.path, "desc": {"type": "fixed", "scale": 2.5}}
    assert torch.equal(encoder.encode_texts(["a", "b"]), torch.full((2, 4), 2.5))


def test_wrong_width_unknown_type_and_none(tmp_path, monkeypatch):
    monkeypatch.setattr(encoders, "_LOADERS", dict(encoders._LOADERS))
    register_query_encoder("narrow", lambda d, desc: _Fixed(3, 1.0))
    with pytest.raises(ModelError, match="makes 3-d embeddings, the model takes 4-d"):
        load_query_encoder(_model(tmp_path, {"type": "narrow"}))
    with pytest.raises(ModelError, match="unknown query encoder type 'clip'"):
        load_query_encoder(_model(tmp_path, {"type": "clip"}))
    for desc in ({"type": "none"}, {}):
        with pytest.raises(ModelError, match="has no query encoder; query with --caption-id"):
            load_query_encoder(_model(tmp_path, desc))


def test_synthetic_type_imports_its_provider_lazily(tmp_path, monkeypatch):
    monkeypatch.setattr(encoders, "_LOADERS", {})
    monkeypatch.delitem(sys.modules, "sparse_mm.synth", raising=False)
    model = _model(tmp_path, {"type": "synthetic", "file": "absent.safetensors"})
    with pytest.raises(SparseMMError):  # the file is absent; what matters is who said so
        load_query_encoder(model)
    assert "synthetic" in encoders._LOADERS and "sparse_mm.synth" in sys.modules


def test_blip_without_transformers_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes the import fail
    with pytest.raises(ModelError, match=r'pip install "sparse-mm\[blip\]"'):
        BlipTextEncoder("anything")


def test_blip_description_needs_a_name(tmp_path):
    with pytest.raises(ModelError, match="needs a 'name'"):
        load_query_encoder(_model(tmp_path, {"type": "blip"}))

"""Heads, scores and Lucene's feature quantisation."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from sparse_mm.errors import ModelError
from sparse_mm.model import HeadsConfig, SparseDenseHeads
from sparse_mm.scores import (
    dense_scores,
    integrated_scores,
    quantize_feature,
    sparse_scores,
)

CFG = HeadsConfig(vocab_size=50, in_dim=12, dense_dim=8, hidden_dim=16)


def test_shapes_unit_dense_and_non_negative_terms():
    heads = SparseDenseHeads(CFG, seed=1)
    for modality in ("text", "image"):
        out = heads(torch.randn(5, 12), modality)
        assert out.dense.shape == (5, 8) and out.sparse.shape == (5, 50)
        assert torch.allclose(out.dense.norm(dim=1), torch.ones(5), atol=1e-6)
        assert bool((out.sparse >= 0).all()) and bool((out.sparse > 0).any())
    with pytest.raises(ValueError, match="modality"):
        heads.dense(torch.randn(1, 12), "audio")


def test_sparse_head_is_shared_and_its_gradient_reaches_both_projections():
    heads = SparseDenseHeads(CFG, seed=1)
    loss = (
        heads(torch.randn(3, 12), "text").sparse.sum()
        + heads(torch.randn(3, 12), "image").sparse.sum()
    )
    loss.backward()
    assert heads.text_proj.weight.grad.abs().sum() > 0
    assert heads.vision_proj.weight.grad.abs().sum() > 0
    names = [n for n, _ in heads.named_parameters()]
    assert sum(n.startswith("sparse_head.vocab") for n in names) == 1


def test_seeded_init_and_tied_init():
    a, b = SparseDenseHeads(CFG, seed=5), SparseDenseHeads(CFG, seed=5)
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    words = torch.randn(50, 16)
    proj = {
        "text_proj.weight": torch.randn(8, 12),
        "text_proj.bias": torch.randn(8),
        "vision_proj.weight": torch.randn(8, 12),
        "vision_proj.bias": torch.randn(8),
    }
    a.init_from(init_projection=proj, word_embeddings=words)
    assert torch.equal(a.sparse_head.vocab.weight, words)
    assert torch.equal(a.vision_proj.bias, proj["vision_proj.bias"])
    with pytest.raises(ModelError, match=r"word embeddings: expected shape \(50, 16\)"):
        a.init_from(word_embeddings=torch.randn(49, 16))


def test_encode_matches_forward_and_prunes():
    heads = SparseDenseHeads(CFG, seed=2)
    x = torch.randn(23, 12)
    enc = heads.encode(x, "image", batch_size=5)
    ref = heads(x, "image")
    assert torch.allclose(enc.dense, ref.dense, atol=1e-6)
    assert torch.allclose(enc.sparse.to_dense(), ref.sparse.detach(), atol=1e-6)
    top = heads.encode(x, "image", batch_size=7, topk=3).sparse.to_dense()
    assert bool(((top > 0).sum(dim=1) <= 3).all())
    kept = ref.sparse.detach().topk(3, dim=1).values
    assert torch.allclose(top.topk(3, dim=1).values, kept, atol=1e-6)
    floor = heads.encode(x, "image", min_weight=0.2).sparse.values()
    assert bool((floor > 0.2).all())


def test_integrated_is_the_weighted_sum():
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=1)
    d = torch.nn.functional.normalize(torch.randn(9, 8, generator=g), dim=1)
    qz, dz = torch.rand(4, 30, generator=g), torch.rand(9, 30, generator=g)
    dense, sparse = dense_scores(q, d), sparse_scores(qz, dz)
    assert torch.allclose(sparse, sparse_scores(qz, dz.to_sparse_csr()), atol=1e-5)
    integrated = integrated_scores(dense, sparse, 0.2, 0.5)
    assert torch.allclose(integrated, 0.2 * q @ d.T + 0.5 * qz @ dz.T, atol=1e-6)


def _lucene(value: float) -> float:
    bits = struct.unpack(">I", struct.pack(">f", value))[0]
    return struct.unpack(">f", struct.pack(">I", bits & ~0x7FFF))[0]


@pytest.mark.parametrize("value", [1.0, 0.3, 1e-3, float(np.finfo(np.float32).max), 2.5, 7e-20])
def test_quantisation_equals_lucenes_rule(value):
    got = float(quantize_feature(torch.tensor([value]))[0])
    assert got == _lucene(value)
    assert got <= value and (value - got) / value < 2**-8


def test_quantisation_hand_values():
    # 0.3 = 0x3E99999A -> 0x3E998000 = 0.2998046875; 1.0 and powers of two are exact
    assert float(quantize_feature(torch.tensor([0.3]))[0]) == 0.2998046875
    assert float(quantize_feature(torch.tensor([1.0]))[0]) == 1.0

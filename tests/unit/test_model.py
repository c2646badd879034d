"""The heads: METHOD.md's formulas, the shared sparse head, initialisation, and encode()."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_mm.errors import ModelError
from sparse_mm.model import HeadsConfig, SparseDenseHeads

CFG = HeadsConfig(vocab_size=50, in_dim=12, dense_dim=8, hidden_dim=16)


@pytest.mark.parametrize("bad", [{"vocab_size": 0}, {"in_dim": -3}, {"dense_dim": True}])
def test_config_rejects_non_positive_sizes(bad):
    with pytest.raises(ModelError, match="must be a positive integer"):
        HeadsConfig(**{"vocab_size": 5, **bad})


def test_shapes_unit_dense_and_non_negative_terms():
    heads = SparseDenseHeads(CFG, seed=1)
    for modality in ("text", "image"):
        out = heads(torch.randn(5, 12), modality)
        assert out.dense.shape == (5, 8) and out.sparse.shape == (5, 50)
        assert torch.allclose(out.dense.norm(dim=1), torch.ones(5), atol=1e-6)
        assert bool((out.sparse >= 0).all()) and bool((out.sparse > 0).any())
        assert bool((out.sparse == 0).any())  # relu really cuts
    with pytest.raises(ValueError, match="modality"):
        heads.dense(torch.randn(1, 12), "audio")
    with pytest.raises(ValueError, match="modality"):
        heads.encode(torch.randn(1, 12), "audio")


def test_outputs_follow_the_method_formulas():
    """d = normalize(W x + b); z = log(1 + relu(V LayerNorm(U d + c))), computed in numpy."""
    heads = SparseDenseHeads(CFG, seed=4)
    p = {k: v.detach().double().numpy() for k, v in heads.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((6, 12))
    for modality, proj in (("text", "text_proj"), ("image", "vision_proj")):
        d = x @ p[f"{proj}.weight"].T + p[f"{proj}.bias"]
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        h = d @ p["sparse_head.fc.weight"].T + p["sparse_head.fc.bias"]
        h = (h - h.mean(1, keepdims=True)) / np.sqrt(h.var(1, keepdims=True) + 1e-5)
        h = h * p["sparse_head.norm.weight"] + p["sparse_head.norm.bias"]
        z = np.log1p(np.maximum(h @ p["sparse_head.vocab.weight"].T, 0))
        out = heads(torch.from_numpy(x).float(), modality)
        np.testing.assert_allclose(out.dense.detach().numpy(), d, atol=1e-5)
        np.testing.assert_allclose(out.sparse.detach().numpy(), z, atol=1e-4)


def test_sparse_head_is_shared_and_sparse_gradients_reach_both_projections():
    heads = SparseDenseHeads(CFG, seed=1)
    assert isinstance(heads.sparse_head, torch.nn.Module)
    vocab_matrices = [n for n, _ in heads.named_parameters() if n.endswith("vocab.weight")]
    assert vocab_matrices == ["sparse_head.vocab.weight"]
    assert heads.sparse_head.vocab.bias is None
    x = torch.randn(3, 12)
    # the two modalities differ only by their projection: same dense vector, same terms
    d = heads.dense(x, "text")
    assert torch.equal(heads.sparse(d), heads.sparse_head(d))
    loss = heads(x, "text").sparse.sum() + heads(torch.randn(3, 12), "image").sparse.sum()
    loss.backward()
    for proj in (heads.text_proj, heads.vision_proj):
        assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0


def test_seeded_init_is_deterministic_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = SparseDenseHeads(CFG, seed=5), SparseDenseHeads(CFG, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    c = SparseDenseHeads(CFG, seed=6)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name])
    assert not torch.equal(a.text_proj.weight, c.text_proj.weight)


def test_init_from_copies_and_names_the_wrong_tensor():
    heads = SparseDenseHeads(CFG, seed=5)
    words = torch.randn(50, 16)
    proj = {
        "text_proj.weight": torch.randn(8, 12),
        "text_proj.bias": torch.randn(8),
        "vision_proj.weight": torch.randn(8, 12),
        "vision_proj.bias": torch.randn(8),
    }
    heads.init_from(init_projection=proj, word_embeddings=words)
    assert torch.equal(heads.sparse_head.vocab.weight, words)
    for name, tensor in proj.items():
        assert torch.equal(heads.get_parameter(name), tensor)
    with pytest.raises(ModelError, match=r"word embeddings: expected shape \(50, 16\), got \(49"):
        heads.init_from(word_embeddings=torch.randn(49, 16))
    bad = {**proj, "vision_proj.weight": torch.randn(8, 11)}
    with pytest.raises(ModelError, match=r"vision_proj.weight: expected shape \(8, 12\)"):
        heads.init_from(init_projection=bad)
    with pytest.raises(ModelError, match=r"missing.*text_proj\.bias"):
        heads.init_from(init_projection={k: v for k, v in proj.items() if k != "text_proj.bias"})


def _csr_ok(csr, n, v):
    crow, cols = csr.crow_indices(), csr.col_indices()
    assert csr.layout == torch.sparse_csr and tuple(csr.shape) == (n, v)
    assert csr.values().dtype == torch.float32 and csr.device.type == "cpu"
    assert crow[0] == 0 and crow[-1] == cols.numel() and bool((crow.diff() >= 0).all())
    for a, b in zip(crow[:-1].tolist(), crow[1:].tolist(), strict=True):
        assert bool((cols[a:b].diff() > 0).all())  # ascending within each row


def test_encode_in_batches_equals_forward():
    heads = SparseDenseHeads(CFG, seed=2)
    x = torch.randn(23, 12)
    ref = heads(x, "image")
    enc = heads.encode(x, "image", batch_size=5)
    _csr_ok(enc.sparse, 23, 50)
    assert enc.dense.dtype == torch.float32 and len(enc) == 23
    assert torch.allclose(enc.dense, ref.dense, atol=1e-6)
    assert torch.allclose(enc.sparse.to_dense(), ref.sparse.detach(), atol=1e-6)
    # only non-zero weights are stored
    assert bool((enc.sparse.values() > 0).all())
    assert enc.sparse.values().numel() == int((ref.sparse > 0).sum())
    assert torch.equal(enc.nnz_per_row(), (ref.sparse > 0).sum(1))
    cols, vals = enc.terms(4)
    assert torch.equal(cols, ref.sparse[4].nonzero().squeeze(1))
    assert [c.tolist() for c, _ in enc.iter_terms()][4] == cols.tolist()
    assert torch.allclose(vals, ref.sparse[4, cols].detach(), atol=1e-6)


def test_encode_topk_and_min_weight():
    heads = SparseDenseHeads(CFG, seed=2)
    x = torch.randn(31, 12)
    ref = heads(x, "text").sparse.detach()
    top = heads.encode(x, "text", batch_size=7, topk=3)
    _csr_ok(top.sparse, 31, 50)
    dense_top = top.sparse.to_dense()
    assert bool(((dense_top > 0).sum(dim=1) == torch.clamp((ref > 0).sum(1), max=3)).all())
    kept = ref.topk(3, dim=1).values
    assert torch.allclose(dense_top.topk(3, dim=1).values, kept, atol=1e-6)
    floor = 0.2
    cut = heads.encode(x, "text", batch_size=4, min_weight=floor).sparse.to_dense()
    assert torch.equal(cut > 0, ref > floor)
    assert torch.allclose(cut, torch.where(ref > floor, ref, 0), atol=1e-6)
    both = heads.encode(x, "text", topk=2, min_weight=floor).sparse.to_dense()
    expect = torch.zeros_like(ref).scatter(1, ref.topk(2, 1).indices, ref.topk(2, 1).values)
    assert torch.allclose(both, torch.where(expect > floor, expect, 0), atol=1e-6)
    everything = heads.encode(x, "text", topk=500).sparse.to_dense()
    assert torch.allclose(everything, ref, atol=1e-6)


def test_encode_leaves_the_module_as_it_was_and_handles_edge_cases():
    heads = SparseDenseHeads(CFG, seed=2).train()
    enc = heads.encode(torch.randn(0, 12), "image")
    assert enc.dense.shape == (0, 8) and tuple(enc.sparse.shape) == (0, 50)
    assert heads.training and heads.text_proj.weight.device.type == "cpu"
    half = heads.encode(torch.randn(3, 12, dtype=torch.float64), "image")
    assert half.dense.dtype == torch.float32
    with pytest.raises(ModelError, match=r"expected \(N, 12\) embeddings, got \(3, 11\)"):
        heads.encode(torch.randn(3, 11), "image")
    with pytest.raises(ValueError, match="min_weight"):
        heads.encode(torch.randn(3, 12), "image", min_weight=-1)


def test_encode_never_stores_zero_weights_and_min_weight_is_strict():
    heads = SparseDenseHeads(CFG, seed=2)
    with torch.no_grad():
        heads.sparse_head.vocab.weight[7] = 0.0  # logit exactly 0: weight log1p(0) = 0
    x = torch.randn(9, 12)
    enc = heads.encode(x, "image")
    assert 7 not in enc.sparse.col_indices().tolist() and bool((enc.sparse.values() > 0).all())
    # constant hidden state h = 1: logits are exactly -1 except term 3 (2), term 5 (1), term 7 (0)
    logits = torch.full((50,), -1.0)
    logits[3], logits[5], logits[7] = 2.0, 1.0, 0.0
    with torch.no_grad():
        heads.sparse_head.norm.weight.zero_()
        heads.sparse_head.norm.bias.fill_(1.0)
        heads.sparse_head.vocab.weight.copy_(logits[:, None].expand(50, 16) / 16)
    for topk in (None, 20):
        enc = heads.encode(x, "image", topk=topk)
        assert enc.sparse.crow_indices().tolist() == list(range(0, 19, 2))
        assert enc.sparse.col_indices().tolist() == [3, 5] * 9
        assert torch.allclose(enc.sparse.values(), torch.log1p(torch.tensor([2.0, 1.0] * 9)))
    heads = SparseDenseHeads(CFG, seed=2)
    everything = heads.encode(x, "image").sparse
    w = float(everything.values()[3])  # a weight that occurs: it must not survive min_weight=w
    cut = heads.encode(x, "image", min_weight=w).sparse
    assert bool((cut.values() > w).all())
    assert cut.values().numel() == int((everything.values() > w).sum())

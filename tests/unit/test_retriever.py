"""The exact retriever against a plain numpy computation, in all three modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sparse_mm.retriever as retriever_module
from sparse_mm.errors import DataError, ModelError
from sparse_mm.model import HeadsConfig, SparseDenseHeads
from sparse_mm.retriever import ExactRetriever, top_k

W1, W2 = 0.3, 0.7


def _data(seed=0, n=200, v=60, d=16, q=7):
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((n, d)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    sparse = (rng.random((n, v)) * 3 * (rng.random((n, v)) < 0.1)).astype(np.float32)
    sparse[0, :3] = [1e-39, 1e-40, 2e-38]  # subnormal and tiny normal weights
    qd = rng.standard_normal((q, d)).astype(np.float32)
    qd /= np.linalg.norm(qd, axis=1, keepdims=True)
    qs = (rng.random((q, v)) * (rng.random((q, v)) < 0.2)).astype(np.float32)
    qs[:, :3] = 1.0  # make the tiny weights count
    return dense, sparse, qd, qs


def _engine_storage(x: np.ndarray) -> np.ndarray:
    """numpy's own rendering of what Lucene keeps: low 15 bits cleared, non-normals dropped."""
    kept = (x.view(np.uint32) & np.uint32(0xFFFF8000)).view(np.float32)
    return np.where(x >= np.finfo(np.float32).tiny, kept, np.float32(0))


def _expected(mode, dense, stored, qd, qs):
    d, s = qd.astype(np.float64) @ dense.T, qs.astype(np.float64) @ stored.T
    return {"dense": d, "sparse": s, "hybrid": W1 * d + W2 * s}[mode]


def _ranking(scores, k):
    cols = np.arange(scores.shape[1])[None, :].repeat(len(scores), 0)
    return np.lexsort((cols, -scores), axis=1)[:, :k]


def _retriever(dense, sparse, quantize, layout="csr"):
    s = torch.from_numpy(sparse)
    s = {"csr": s.to_sparse_csr(), "coo": s.to_sparse(), "dense": s}[layout]
    ids = [f"d{i}" for i in range(len(dense))]
    return ExactRetriever(ids, torch.from_numpy(dense), s, w1=W1, w2=W2, quantize=quantize)


@pytest.mark.parametrize("layout", ["csr", "coo", "dense"])
@pytest.mark.parametrize("quantize", [False, True])
@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_matches_numpy(mode, quantize, layout):
    dense, sparse, qd, qs = _data()
    r = _retriever(dense, sparse, quantize, layout)
    stored = _engine_storage(sparse) if quantize else sparse
    expected = _expected(mode, dense, stored, qd, qs)
    result = r.search(torch.from_numpy(qd), torch.from_numpy(qs), k=10, mode=mode)
    order = _ranking(expected, 10)
    assert result.scores.dtype == torch.float32 and result.indices.dtype == torch.int64
    np.testing.assert_array_equal(result.indices.numpy(), order)
    np.testing.assert_allclose(
        result.scores.numpy(), np.take_along_axis(expected, order, 1), rtol=1e-5, atol=1e-6
    )
    if mode == "hybrid":
        d, s = (np.take_along_axis(x, order, 1) for x in (qd @ dense.T, qs @ stored.T))
        np.testing.assert_allclose(result.dense_part.numpy(), W1 * d, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(result.sparse_part.numpy(), W2 * s, rtol=1e-5, atol=1e-6)
        assert torch.equal(result.dense_part + result.sparse_part, result.scores)
    assert result.ids(r) == [[f"d{i}" for i in row] for row in order]


@pytest.mark.parametrize("quantize", [False, True])
def test_full_score_matrices_match_numpy(quantize, monkeypatch):
    monkeypatch.setattr(retriever_module, "_BLOCK_POSTINGS", 50)  # several query blocks
    dense, sparse, qd, qs = _data()
    r = _retriever(dense, sparse, quantize)
    stored = _engine_storage(sparse) if quantize else sparse
    got_s = r.sparse_scores(torch.from_numpy(qs)).numpy()
    got_d = r.dense_scores(torch.from_numpy(qd)).numpy()
    np.testing.assert_allclose(got_s, _expected("sparse", dense, stored, qd, qs), rtol=1e-5)
    np.testing.assert_allclose(got_d, _expected("dense", dense, stored, qd, qs), atol=1e-6)


def test_quantisation_stores_what_the_engine_keeps():
    dense, sparse, _, qs = _data()
    exact, quant = _retriever(dense, sparse, False), _retriever(dense, sparse, True)
    # 1e-39 and 1e-40 are subnormal: the engine refuses them, so they are dropped
    assert exact.values.numel() - quant.values.numel() == 2
    assert bool((quant.values >= np.finfo(np.float32).tiny).all())
    q = torch.from_numpy(qs)
    a = exact.search(None, q, k=200, mode="sparse")
    b = quant.search(None, q, k=200, mode="sparse")
    assert not torch.equal(a.scores, b.scores)


def test_blocks_give_the_same_answer(monkeypatch):
    dense, sparse, qd, qs = _data(seed=2, q=40)
    r = _retriever(dense, sparse, True)
    one = r.search(torch.from_numpy(qd), torch.from_numpy(qs), k=7)
    monkeypatch.setattr(retriever_module, "_BLOCK_SCORES", 3 * len(dense))
    monkeypatch.setattr(retriever_module, "_BLOCK_POSTINGS", 50)
    assert len(r._blocks(40, r._entries(torch.from_numpy(qs)))) > 13
    many = r.search(torch.from_numpy(qd), torch.from_numpy(qs), k=7)
    assert torch.equal(one.indices, many.indices)
    assert torch.allclose(one.scores, many.scores, rtol=1e-6)


def test_sparse_queries_and_one_dimensional_queries():
    dense, sparse, qd, qs = _data(seed=3)
    r = _retriever(dense, sparse, False)
    ref = r.search(torch.from_numpy(qd), torch.from_numpy(qs), k=5)
    for q in (torch.from_numpy(qs).to_sparse_csr(), torch.from_numpy(qs).to_sparse()):
        got = r.search(torch.from_numpy(qd), q, k=5)
        assert torch.equal(got.indices, ref.indices)
        assert torch.allclose(got.scores, ref.scores, rtol=1e-6)
    single = r.search(torch.from_numpy(qd[2]), torch.from_numpy(qs[2]), k=5)
    assert torch.equal(single.indices[0], ref.indices[2])


def test_ties_go_to_the_lower_index():
    scores = torch.tensor([[1.0, 3.0, 3.0, 3.0, 0.5], [0.0, 0.0, 2.0, 0.0, 0.0]])
    values, indices = top_k(scores, 2)
    assert indices.tolist() == [[1, 2], [2, 0]] and values.tolist() == [[3.0, 3.0], [2.0, 0.0]]
    assert top_k(scores, 5)[1].tolist() == [[1, 2, 3, 0, 4], [2, 0, 1, 3, 4]]
    # a sparse query touching few documents: the rest tie at 0, lowest indices first
    dense, sparse, _, _ = _data(seed=4)
    r = _retriever(dense, sparse, False)
    q = torch.zeros(1, sparse.shape[1])
    q[0, 10] = 1.0
    hits = set(np.nonzero(sparse[:, 10])[0].tolist())
    got = r.search(None, q, k=len(hits) + 3, mode="sparse").indices[0].tolist()
    rest = [i for i in range(len(dense)) if i not in hits][:3]
    assert set(got[: len(hits)]) == hits and got[len(hits) :] == rest


def test_k_larger_than_the_collection_and_no_queries():
    dense, sparse, qd, qs = _data(n=6)
    r = _retriever(dense, sparse, False)
    assert r.search(torch.from_numpy(qd), torch.from_numpy(qs), k=50).indices.shape == (7, 6)
    empty = r.search(torch.zeros(0, 16), torch.zeros(0, 60), k=3)
    assert empty.indices.shape == (0, 3) and empty.dense_part.shape == (0, 3)


def test_bad_inputs():
    dense, sparse, qd, qs = _data(n=6)
    r = _retriever(dense, sparse, False)
    with pytest.raises(ValueError, match="mode must be one of"):
        r.search(torch.from_numpy(qd), torch.from_numpy(qs), mode="bm25")
    with pytest.raises(ValueError, match="q_sparse is required"):
        r.search(torch.from_numpy(qd), None)
    with pytest.raises(ValueError, match=r"q_dense must be \(Q, 16\)"):
        r.search(torch.zeros(2, 5), None, mode="dense")
    with pytest.raises(ValueError, match="NaN"):
        r.search(torch.full((1, 16), float("nan")), None, mode="dense")
    with pytest.raises(DataError, match="not unique"):
        ExactRetriever(["a"] * 6, torch.from_numpy(dense), torch.from_numpy(sparse), w1=1, w2=1)
    with pytest.raises(DataError, match="5 ids, 6 dense rows"):
        ExactRetriever(list("abcde"), torch.from_numpy(dense), torch.from_numpy(sparse), w1=1, w2=1)


def test_from_encoded_save_and_load(tmp_path):
    heads = SparseDenseHeads(HeadsConfig(vocab_size=40, in_dim=10, dense_dim=6, hidden_dim=8))
    encoded = heads.encode(torch.randn(50, 10), "image")
    queries = heads.encode(torch.randn(4, 10), "text")
    ids = [f"img{i}" for i in range(50)]
    r = ExactRetriever.from_encoded(ids, encoded, w1=0.1, w2=0.2, quantize=True)
    r.save(tmp_path / "r")
    again = ExactRetriever.load(tmp_path / "r")
    assert again.ids == ids and (again.w1, again.w2, again.quantize) == (0.1, 0.2, True)
    for mode in ("dense", "sparse", "hybrid"):
        a = r.search(queries.dense, queries.sparse, k=5, mode=mode)
        b = again.search(queries.dense, queries.sparse, k=5, mode=mode)
        assert torch.equal(a.indices, b.indices) and torch.equal(a.scores, b.scores)
    with pytest.raises(ModelError, match="no saved retriever"):
        ExactRetriever.load(tmp_path / "elsewhere")


def test_a_subset_searches_exactly_the_kept_documents():
    torch.manual_seed(3)
    n, v = 50, 12
    dense = torch.nn.functional.normalize(torch.randn(n, 4), dim=1)
    sparse = torch.relu(torch.randn(n, v)) * (torch.rand(n, v) < 0.4)
    ids = [f"d{i}" for i in range(n)]
    full = ExactRetriever(ids, dense, sparse.to_sparse_csr(), w1=0.3, w2=0.7, quantize=True)
    keep = torch.rand(n) < 0.3
    part = full.subset(keep)
    alone = ExactRetriever(
        [i for i, k in zip(ids, keep.tolist(), strict=True) if k],
        dense[keep],
        sparse[keep].to_sparse_csr(),
        w1=0.3,
        w2=0.7,
        quantize=True,
    )
    qd = torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
    qs = torch.relu(torch.randn(3, v))
    for mode in ("dense", "sparse", "hybrid"):
        a = part.search(qd, qs, k=5, mode=mode)
        b = alone.search(qd, qs, k=5, mode=mode)
        assert a.ids(part) == b.ids(alone)
        assert torch.allclose(a.scores, b.scores)

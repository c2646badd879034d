"""The exact retriever against a plain numpy computation, in all three modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_mm.retriever import ExactRetriever, top_k
from sparse_mm.scores import quantize_feature


def _data(seed=0, n=200, v=60, d=16, q=7):
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((n, d)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    sparse = (rng.random((n, v)) * (rng.random((n, v)) < 0.1)).astype(np.float32)
    qd = rng.standard_normal((q, d)).astype(np.float32)
    qd /= np.linalg.norm(qd, axis=1, keepdims=True)
    qs = (rng.random((q, v)) * (rng.random((q, v)) < 0.2)).astype(np.float32)
    return dense, sparse, qd, qs


@pytest.mark.parametrize("quantize", [False, True])
@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_matches_numpy(mode, quantize):
    dense, sparse, qd, qs = _data()
    ids = [f"d{i}" for i in range(len(dense))]
    r = ExactRetriever(
        ids,
        torch.from_numpy(dense),
        torch.from_numpy(sparse).to_sparse_csr(),
        w1=0.3,
        w2=0.7,
        quantize=quantize,
    )
    stored = quantize_feature(torch.from_numpy(sparse)).numpy() if quantize else sparse
    expected = {
        "dense": qd @ dense.T,
        "sparse": qs @ stored.T,
        "hybrid": 0.3 * qd @ dense.T + 0.7 * qs @ stored.T,
    }[mode]
    result = r.search(torch.from_numpy(qd), torch.from_numpy(qs), k=10, mode=mode)
    order = np.lexsort((np.arange(len(dense))[None, :].repeat(len(qd), 0), -expected), axis=1)
    np.testing.assert_array_equal(result.indices.numpy(), order[:, :10])
    np.testing.assert_allclose(
        result.scores.numpy(), np.take_along_axis(expected, order[:, :10], 1), rtol=1e-5, atol=1e-6
    )
    if mode == "hybrid":
        np.testing.assert_allclose(
            (result.dense_part + result.sparse_part).numpy(),
            result.scores.numpy(),
            rtol=1e-5,
            atol=1e-6,
        )
    assert result.ids(r)[0][0] == ids[order[0, 0]]


def test_ties_go_to_the_lower_index():
    scores = torch.tensor([[1.0, 3.0, 3.0, 3.0, 0.5]])
    values, indices = top_k(scores, 2)
    assert indices.tolist() == [[1, 2]] and values.tolist() == [[3.0, 3.0]]


def test_save_and_load(tmp_path):
    dense, sparse, qd, qs = _data(1)
    r = ExactRetriever(
        [str(i) for i in range(len(dense))],
        torch.from_numpy(dense),
        torch.from_numpy(sparse),
        w1=0.1,
        w2=0.2,
        quantize=True,
    )
    r.save(tmp_path / "r")
    again = ExactRetriever.load(tmp_path / "r")
    a = r.search(torch.from_numpy(qd), torch.from_numpy(qs), k=5)
    b = again.search(torch.from_numpy(qd), torch.from_numpy(qs), k=5)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.scores, b.scores)

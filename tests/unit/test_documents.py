"""Encoded rows -> engine documents: names, pruning, underflow, bad values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from indexing.documents import MIN_FEATURE_VALUE, DocumentBuilder, Pruning
from sparse_mm.errors import DataError

VOCAB = ["dog", "u.s.", "beach", "##s", "frisbee"]


def _csr(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).to_sparse_csr()


def _dense(n: int) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.ones(n, 3), dim=1)


def test_documents_carry_encoded_names_weights_and_metadata():
    builder = DocumentBuilder(VOCAB)
    sparse = _csr([[0.5, 1.5, 0, 0, 0], [0, 0, 0, 2.0, 0.25]])
    docs = list(builder.build(["a", "b"], _dense(2), sparse, [{"split": "test"}, {"split": "x"}]))
    assert docs[0]["sparse"] == {"dog": 0.5, "u%2Es%2E": 1.5}
    assert docs[1]["sparse"] == {"##s": 2.0, "frisbee": 0.25}
    assert docs[1]["id"] == "b" and docs[1]["split"] == "x"
    assert docs[0]["dense"] == pytest.approx(_dense(1)[0].tolist())
    assert builder.report.terms_kept == 4 and builder.report.terms_removed == 0


def test_pruning_keeps_top_k_above_min_weight_and_reports_removed_mass():
    builder = DocumentBuilder(VOCAB, Pruning(top_k=2, min_weight=0.3))
    sparse = _csr([[0.5, 1.5, 0.2, 3.0, 0.4]])
    (doc,) = builder.build(["a"], _dense(1), sparse)
    assert doc["sparse"] == {"##s": 3.0, "u%2Es%2E": 1.5}
    assert builder.report.terms_removed == 3
    assert builder.report.weight_removed == pytest.approx(0.5 + 0.2 + 0.4)
    assert "pruned 3" in builder.report.describe()


def test_weights_below_the_smallest_normal_float_are_dropped_and_counted():
    builder = DocumentBuilder(VOCAB)
    tiny = float(np.float32(MIN_FEATURE_VALUE) / 4)
    (doc,) = builder.build(["a"], _dense(1), _csr([[tiny, 1.0, 0, 0, 0]]))
    assert doc["sparse"] == {"u%2Es%2E": 1.0}
    assert builder.report.terms_underflow == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_non_finite_or_negative_weights_name_the_document(bad):
    builder = DocumentBuilder(VOCAB)
    with pytest.raises(DataError, match="document 'img-7'"):
        list(builder.build(["img-7"], _dense(1), _csr([[bad, 1.0, 0, 0, 0]])))


def test_non_finite_dense_vector_names_the_document():
    dense = _dense(2)
    dense[1, 0] = float("nan")
    with pytest.raises(DataError, match="document 'b'"):
        list(DocumentBuilder(VOCAB).build(["a", "b"], dense, _csr([[1, 0, 0, 0, 0]] * 2)))


def _row_by_row(rows: np.ndarray, pruning: Pruning) -> list[dict[int, float]]:
    """Pruning one row at a time, the plain way: the heaviest `top_k` above `min_weight`,
    among equal weights the first."""
    out = []
    for row in rows:
        cols = [c for c in np.flatnonzero(row) if row[c] > pruning.min_weight]
        cols.sort(key=lambda c: (-row[c], c))
        out.append({c: row[c] for c in cols[: pruning.top_k]})
    return out


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("pruning", [Pruning(top_k=3), Pruning(min_weight=0.5), Pruning(2, 0.2)])
def test_batch_pruning_equals_pruning_row_by_row(seed, pruning):
    rng = np.random.default_rng(seed)
    # few distinct values, so that ties straddle the top-k cut; some empty rows
    rows = rng.choice([0, 0, 0, 0.25, 0.5, 1.0, 2.0], size=(40, len(VOCAB))).astype(np.float32)
    builder = DocumentBuilder(VOCAB, pruning)
    docs = list(builder.build([str(i) for i in range(40)], _dense(40), _csr(rows.tolist())))
    names = builder.names
    expected = _row_by_row(rows, pruning)
    assert [d["sparse"] for d in docs] == [
        {names[c]: float(w) for c, w in row.items()} for row in expected
    ]
    kept = sum(len(r) for r in expected)
    assert builder.report.terms_kept == kept
    assert builder.report.terms_removed == int((rows > 0).sum()) - kept


def test_observers_see_what_the_documents_hold():
    seen = []
    builder = DocumentBuilder(VOCAB, Pruning(top_k=1))
    builder.observers.append(lambda ids, dense, terms: seen.append((list(ids), terms)))
    docs = list(builder.build(["a", "b"], _dense(2), _csr([[0.5, 1.5, 0, 0, 0], [0, 0, 0, 0, 0]])))
    ((ids, terms),) = seen
    assert ids == ["a", "b"] and terms.crow.tolist() == [0, 1, 1]
    assert terms.cols.tolist() == [1] and docs[0]["sparse"] == {"u%2Es%2E": 1.5}
    assert terms.tensor(len(VOCAB)).to_dense()[0, 1] == 1.5

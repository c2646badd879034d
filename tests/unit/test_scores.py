"""Score functions, and Lucene's storage of feature values (FeatureField: bits >>> 15 << 15)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sparse_mm.errors import DataError
from sparse_mm.scores import (
    MAX_FEATURE_VALUE,
    MIN_FEATURE_VALUE,
    dense_scores,
    feature_weight_mask,
    integrated_scores,
    quantize_feature,
    sparse_scores,
    validate_feature_weights,
)

FLOAT32_MAX = struct.unpack(">f", bytes.fromhex("7f7fffff"))[0]
MIN_NORMAL = struct.unpack(">f", bytes.fromhex("00800000"))[0]


def _bits(value: float) -> int:
    return struct.unpack(">I", struct.pack(">f", value))[0]


def _from_bits(bits: int) -> float:
    return struct.unpack(">f", struct.pack(">I", bits))[0]


def _lucene(value: float) -> float:
    """Lucene: freq = floatToIntBits(v) >>> 15; decoded = intBitsToFloat(freq << 15)."""
    return _from_bits((_bits(value) >> 15) << 15)


def test_integrated_is_the_weighted_sum_for_every_sparse_layout():
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=1)
    d = torch.nn.functional.normalize(torch.randn(9, 8, generator=g), dim=1)
    qz = torch.rand(4, 30, generator=g)
    dz = torch.rand(9, 30, generator=g) * (torch.rand(9, 30, generator=g) < 0.3)
    qn, dn, qzn, dzn = (t.double().numpy() for t in (q, d, qz, dz))
    dense, sparse = dense_scores(q, d), sparse_scores(qz, dz)
    assert dense.shape == sparse.shape == (4, 9)
    np.testing.assert_allclose(dense.numpy(), qn @ dn.T, atol=1e-6)
    np.testing.assert_allclose(sparse.numpy(), qzn @ dzn.T, rtol=1e-6, atol=1e-6)
    for layout in (dz.to_sparse_csr(), dz.to_sparse_csc(), dz.to_sparse()):
        np.testing.assert_allclose(sparse_scores(qz, layout).numpy(), qzn @ dzn.T, rtol=1e-5)
    integrated = integrated_scores(dense, sparse, 0.2, 0.5)
    np.testing.assert_allclose(integrated.numpy(), 0.2 * qn @ dn.T + 0.5 * qzn @ dzn.T, atol=1e-5)


@pytest.mark.parametrize(
    ("value", "stored_bits"),
    [
        (1.0, 0x3F800000),  # a power of two is exact
        (0.3, 0x3E998000),  # 0.3f = 0x3E99999A
        (1e-3, 0x3A830000),  # 1e-3f = 0x3A83126F
        (FLOAT32_MAX, 0x7F7F8000),  # 0x7F7FFFFF, the largest value Lucene accepts
        (MIN_NORMAL, 0x00800000),  # the smallest
    ],
)
def test_quantisation_follows_lucenes_rule_on_hand_picked_values(value, stored_bits):
    got = float(quantize_feature(torch.tensor([value], dtype=torch.float32))[0])
    assert got == _lucene(value) == _from_bits(stored_bits)
    assert got <= value and (value - got) / value < 2**-8


@given(st.floats(min_value=MIN_NORMAL, max_value=FLOAT32_MAX, width=32))
def test_quantisation_equals_the_rule_for_any_accepted_value(value):
    got = quantize_feature(torch.tensor([value], dtype=torch.float32))
    assert float(got[0]) == _lucene(value)
    assert torch.equal(quantize_feature(got), got)  # idempotent: already 9 significant bits


def test_feature_value_limits_match_lucene():
    assert MAX_FEATURE_VALUE == FLOAT32_MAX and MIN_FEATURE_VALUE == MIN_NORMAL
    values = torch.tensor(
        [MIN_NORMAL, 1.0, FLOAT32_MAX, 0.0, -0.0, -1.0, MIN_NORMAL / 2, float("nan"), float("inf")]
    )
    assert feature_weight_mask(values).tolist() == [True] * 3 + [False] * 6
    # a float64 weight beyond float32's range is parsed by the engine to infinity: rejected
    assert feature_weight_mask(torch.tensor([1e39], dtype=torch.float64)).tolist() == [False]
    validate_feature_weights(values[:3])
    with pytest.raises(DataError, match=r"2 value\(s\).*first at \(1,\): 0.0"):
        validate_feature_weights(torch.tensor([1.0, 0.0, float("nan")]))

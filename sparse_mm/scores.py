"""Dense, sparse and integrated scores, and Lucene's storage of feature values.

All scores are (Q, N): queries by documents.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Lucene's FeatureField keeps a float feature's bits shifted right by 15 (9 significant bits:
# the implicit 1 and 8 explicit mantissa bits), truncating toward zero, and accepts only
# positive normal floats (>= 2**-126), finite.
_DROPPED_BITS = 15
MIN_FEATURE_VALUE = float(torch.finfo(torch.float32).tiny)
MAX_FEATURE_VALUE = float(torch.finfo(torch.float32).max)


def dense_scores(q: Tensor, d: Tensor) -> Tensor:
    """(Q, D) x (N, D) unit rows -> (Q, N) cosines."""
    return q @ d.t()


def sparse_scores(qz: Tensor, dz: Tensor) -> Tensor:
    """(Q, V) query weights x (N, V) document weights (dense or sparse CSR/COO) -> (Q, N)."""
    if dz.layout != torch.strided:
        return (dz @ qz.t()).t()
    return qz @ dz.t()


def integrated_scores(dense: Tensor, sparse: Tensor, w1: float, w2: float) -> Tensor:
    """w1 * dense + w2 * sparse, both (Q, N)."""
    return w1 * dense + w2 * sparse


def quantize_feature(x: Tensor) -> Tensor:
    """What Lucene stores of each float32 feature value: bits with the low 15 cleared."""
    bits = x.to(torch.float32).contiguous().view(torch.int32)
    return ((bits >> _DROPPED_BITS) << _DROPPED_BITS).view(torch.float32)

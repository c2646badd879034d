"""Dense, sparse and integrated scores, and how Lucene stores a feature value.

Scores are (Q, N): queries by documents.

Lucene's `FeatureField` (what an OpenSearch `rank_features` field indexes) keeps a float feature
value as a term frequency: the float's IEEE-754 bits shifted right by 15, decoded back by
shifting left by 15. So 9 significant bits survive (the implicit 1 and 8 explicit mantissa
bits), truncated toward zero: relative error below 2**-8. The value must be finite and at least
`Float.MIN_NORMAL` (2**-126): zero, negatives, subnormals, NaN and infinities are rejected at
indexing time, and a JSON number beyond the float32 range parses to infinity and is rejected
too. The largest accepted value, float32 max, is stored as 0x7F7F8000 (about 3.3961e38).
Every accepted value has a non-zero encoding (2**-126 encodes to 256).
"""

from __future__ import annotations

import torch
from torch import Tensor

from sparse_mm.errors import DataError

_DROPPED_BITS = 15
MIN_FEATURE_VALUE = float(torch.finfo(torch.float32).tiny)  # 2**-126, Float.MIN_NORMAL
MAX_FEATURE_VALUE = float(torch.finfo(torch.float32).max)  # Float.MAX_VALUE


def dense_scores(q: Tensor, d: Tensor) -> Tensor:
    """(Q, D) x (N, D) unit rows -> (Q, N) cosines."""
    return q @ d.t()


def sparse_scores(qz: Tensor, dz: Tensor) -> Tensor:
    """(Q, V) query term weights x (N, V) document term weights -> (Q, N) dot products.

    `dz` may be dense or a torch sparse tensor (CSR, CSC or COO)."""
    if dz.layout != torch.strided:
        return (dz @ qz.t()).t()
    return qz @ dz.t()


def integrated_scores(dense: Tensor, sparse: Tensor, w1: float, w2: float) -> Tensor:
    """(Q, N), (Q, N) -> (Q, N): w1 * dense + w2 * sparse (METHOD.md, "Scores")."""
    return w1 * dense + w2 * sparse


def quantize_feature(x: Tensor) -> Tensor:
    """The value Lucene stores for each feature value: the float32 bits with the low 15 cleared.

    Any shape; returns float32. Meaningful only for values `feature_weight_mask` accepts."""
    bits = x.to(torch.float32).contiguous().view(torch.int32)
    return ((bits >> _DROPPED_BITS) << _DROPPED_BITS).view(torch.float32)


def feature_weight_mask(x: Tensor) -> Tensor:
    """Which values (any shape) a `rank_features` field accepts, as a bool tensor of that shape:
    finite positive normal float32 values, MIN_FEATURE_VALUE <= v <= MAX_FEATURE_VALUE, judged
    after the float32 rounding the engine applies when it parses the number."""
    v = x.to(torch.float32)
    return torch.isfinite(v) & (v >= MIN_FEATURE_VALUE)


def validate_feature_weights(x: Tensor, what: str = "feature weights") -> None:
    """Raise DataError naming the first value a `rank_features` field would reject.

    Zero weights count as rejected: drop them before sending a document."""
    ok = feature_weight_mask(x)
    if not bool(ok.all()):
        bad = (~ok).nonzero()
        first = tuple(bad[0].tolist())
        raise DataError(
            f"{what}: {bad.shape[0]} value(s) the engine would reject (first at {first}: "
            f"{float(x[first])!r}); weights must be finite and between "
            f"{MIN_FEATURE_VALUE:.6g} and {MAX_FEATURE_VALUE:.6g}"
        )

"""Turning encoded images into engine documents: term names, pruning, feature-value checks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from indexing.codec import encode_term
from indexing.layout import DENSE_FIELD, SPARSE_FIELD
from sparse_mm.errors import DataError

# Lucene's FeatureField accepts only positive *normal* floats; smaller weights are dropped.
MIN_FEATURE_VALUE = float(np.finfo(np.float32).tiny)


@dataclass(frozen=True)
class Pruning:
    """Per-document term pruning: keep at most `top_k` terms, each with weight > `min_weight`."""

    top_k: int | None = None
    min_weight: float = 0.0

    @property
    def active(self) -> bool:
        return self.top_k is not None or self.min_weight > 0


@dataclass
class PruningReport:
    terms_kept: int = 0
    terms_removed: int = 0  # by top-k / min_weight
    weight_removed: float = 0.0  # sum of removed weights
    terms_underflow: int = 0  # below the smallest value the engine stores

    def describe(self) -> str:
        text = f"document terms: kept {self.terms_kept:,}"
        if self.terms_removed:
            text += f", pruned {self.terms_removed:,} (weight {self.weight_removed:.4g})"
        if self.terms_underflow:
            text += f", dropped {self.terms_underflow:,} below {MIN_FEATURE_VALUE:.3g}"
        return text


class DocumentBuilder:
    """Builds documents `{"id", "dense", "sparse": {feature name: weight}, ...metadata}`."""

    def __init__(self, vocabulary: Sequence[str], pruning: Pruning | None = None) -> None:
        self.names = np.array([encode_term(t) for t in vocabulary], dtype=object)
        self.pruning = pruning or Pruning()
        self.report = PruningReport()

    def build(
        self,
        ids: Sequence[str],
        dense: torch.Tensor,
        sparse: torch.Tensor,
        metadata: Sequence[dict] | None = None,
    ) -> Iterator[dict]:
        """`dense` (B, D) float32 unit rows; `sparse` (B, V) torch sparse CSR, non-negative."""
        if not bool(torch.isfinite(dense).all()):
            row = int((~torch.isfinite(dense).all(dim=1)).nonzero()[0])
            raise DataError(f"document {ids[row]!r}: its dense vector is not finite")
        crow = sparse.crow_indices().numpy()
        cols = sparse.col_indices().numpy()
        vals = sparse.values().numpy().astype(np.float32, copy=False)
        bad = ~np.isfinite(vals) | (vals < 0)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            row = int(np.searchsorted(crow, first, side="right")) - 1
            raise DataError(
                f"document {ids[row]!r}: term weight {float(vals[first])} is not finite and >= 0"
            )
        # The whole batch at once (per-row numpy calls cost more than the rows' contents).
        keep = vals >= MIN_FEATURE_VALUE
        self.report.terms_underflow += int((vals > 0).sum() - keep.sum())
        if not keep.all():
            kept = np.concatenate([[0], np.cumsum(keep)])
            crow, cols, vals = kept[crow], cols[keep], vals[keep]
        names, weights = self.names[cols].tolist(), vals.tolist()
        dense_rows = dense.numpy().astype(np.float32, copy=False).tolist()
        for row, doc_id in enumerate(ids):
            lo, hi = int(crow[row]), int(crow[row + 1])
            if self.pruning.active:
                c, v = self._prune(cols[lo:hi], vals[lo:hi])
                terms = dict(zip(self.names[c].tolist(), v.tolist(), strict=True))
            else:
                terms = dict(zip(names[lo:hi], weights[lo:hi], strict=True))
                self.report.terms_kept += hi - lo
            doc = {"id": str(doc_id), DENSE_FIELD: dense_rows[row], SPARSE_FIELD: terms}
            if metadata is not None:
                doc.update(metadata[row])
            yield doc

    def _prune(self, cols: np.ndarray, vals: np.ndarray):
        keep = vals > self.pruning.min_weight
        top_k = self.pruning.top_k
        if top_k is not None and keep.sum() > top_k:
            order = np.argsort(-vals, kind="stable")[:top_k]
            keep = np.zeros_like(keep)
            keep[order] = vals[order] > self.pruning.min_weight
        self.report.terms_removed += int((~keep).sum())
        self.report.weight_removed += float(vals[~keep].sum())
        cols, vals = cols[keep], vals[keep]
        self.report.terms_kept += len(cols)
        return cols, vals

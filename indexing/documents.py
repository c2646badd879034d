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

    def keep(self, crow: np.ndarray, vals: np.ndarray) -> np.ndarray:
        """(M,) which entries of CSR rows (`crow` pointers, `vals` weights) stay: those above
        `min_weight`, at most `top_k` per row, the heaviest (among equal weights, the first)."""
        keep = vals > self.min_weight
        if self.top_k is not None:
            rows = np.repeat(np.arange(len(crow) - 1), np.diff(crow))
            order = np.lexsort((np.arange(len(vals)), -vals, rows))  # by row, heaviest first
            rank = np.empty(len(vals), dtype=np.int64)
            rank[order] = np.arange(len(vals)) - crow[rows[order]]
            keep &= rank < self.top_k
        return keep


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


@dataclass(frozen=True)
class TermBatch:
    """A batch's term weights as the documents hold them (after the underflow drop and the
    pruning), row-major: row r's terms are `cols[crow[r]:crow[r + 1]]`, weights `vals[...]`."""

    crow: np.ndarray  # (B + 1,) int64
    cols: np.ndarray  # (M,) vocabulary indices
    vals: np.ndarray  # (M,) float32, >= MIN_FEATURE_VALUE

    def tensor(self, vocab_size: int) -> torch.Tensor:
        """(B, V) torch sparse CSR of these weights."""
        return torch.sparse_csr_tensor(
            torch.from_numpy(self.crow.astype(np.int64)),
            torch.from_numpy(self.cols.astype(np.int64)),
            torch.from_numpy(self.vals),
            size=(len(self.crow) - 1, vocab_size),
            check_invariants=False,  # built by `DocumentBuilder.terms`: sorted, in range
        )


class DocumentBuilder:
    """Builds documents `{"id", "dense", "sparse": {feature name: weight}, ...metadata}`.
    `observers` are called with each batch's ids, dense rows and `TermBatch` (what the
    documents hold) before its documents are yielded: the exact reference a build is verified
    against sees exactly what the engine gets."""

    def __init__(self, vocabulary: Sequence[str], pruning: Pruning | None = None) -> None:
        self.names = np.array([encode_term(t) for t in vocabulary], dtype=object)
        self.pruning = pruning or Pruning()
        self.report = PruningReport()
        self.observers: list = []

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
        terms = self.terms(ids, sparse)
        for observe in self.observers:
            observe(ids, dense, terms)
        crow = terms.crow
        names, weights = self.names[terms.cols].tolist(), terms.vals.tolist()
        dense_rows = dense.numpy().astype(np.float32, copy=False).tolist()
        for row, doc_id in enumerate(ids):
            lo, hi = int(crow[row]), int(crow[row + 1])
            doc = {
                "id": str(doc_id),
                DENSE_FIELD: dense_rows[row],
                SPARSE_FIELD: dict(zip(names[lo:hi], weights[lo:hi], strict=True)),
            }
            if metadata is not None:
                doc.update(metadata[row])
            yield doc

    def terms(self, ids: Sequence[str], sparse: torch.Tensor) -> TermBatch:
        """The batch's weights checked, without what the engine cannot store, pruned; counted
        in the report. The whole batch at once (per-row numpy calls cost more than the rows'
        contents)."""
        crow = sparse.crow_indices().numpy().astype(np.int64)
        cols = sparse.col_indices().numpy()
        vals = sparse.values().numpy().astype(np.float32, copy=False)
        bad = ~np.isfinite(vals) | (vals < 0)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            row = int(np.searchsorted(crow, first, side="right")) - 1
            raise DataError(
                f"document {ids[row]!r}: term weight {float(vals[first])} is not finite and >= 0"
            )
        keep = vals >= MIN_FEATURE_VALUE
        self.report.terms_underflow += int((vals > 0).sum() - keep.sum())
        crow, cols, vals = _kept(crow, cols, vals, keep)
        if self.pruning.active:
            keep = self.pruning.keep(crow, vals)
            self.report.terms_removed += int((~keep).sum())
            self.report.weight_removed += float(vals[~keep].sum())
            crow, cols, vals = _kept(crow, cols, vals, keep)
        self.report.terms_kept += len(cols)
        return TermBatch(crow, cols, vals)


def _kept(crow: np.ndarray, cols: np.ndarray, vals: np.ndarray, keep: np.ndarray):
    """The CSR arrays without the entries `keep` leaves out."""
    if keep.all():
        return crow, cols, vals
    kept = np.concatenate([[0], np.cumsum(keep)])
    return kept[crow], cols[keep], vals[keep]

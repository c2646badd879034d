"""Exact in-memory retrieval in PyTorch: the reference the engine is compared with.

- dense: one matrix product with the (N, D) document matrix;
- sparse: documents' term weights stored column-major (per term, its posting list of documents
  and weights), and a query gathers only its own terms' postings and scatter-adds them: the
  work is proportional to the postings touched, not to N x V;
- hybrid: w1 * dense + w2 * sparse, exactly the integrated score.
With `quantize=True` stored weights are truncated as Lucene stores them, so the scores predict
the engine's. Ties are broken by the lower document index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from sparse_mm.errors import ModelError
from sparse_mm.scores import quantize_feature

MODES = ("dense", "sparse", "hybrid")


@dataclass
class SearchResult:
    scores: Tensor  # (Q, k) float32, descending
    indices: Tensor  # (Q, k) long, document indices
    dense_part: Tensor | None = None  # (Q, k) w1 * cos of the hits (hybrid)
    sparse_part: Tensor | None = None  # (Q, k) w2 * sparse score of the hits (hybrid)

    def ids(self, retriever: ExactRetriever) -> list[list[str]]:
        return [[retriever.ids[i] for i in row] for row in self.indices.tolist()]


class ExactRetriever:
    def __init__(
        self,
        ids: Sequence[str],
        dense: Tensor,
        sparse: Tensor,
        *,
        w1: float,
        w2: float,
        quantize: bool = False,
        device: str | torch.device = "cpu",
    ) -> None:
        """`dense` (N, D); `sparse` (N, V) torch sparse CSR/COO or dense, non-negative."""
        if dense.shape[0] != len(ids) or sparse.shape[0] != len(ids):
            raise ModelError(
                f"{len(ids)} ids, {dense.shape[0]} dense rows, {sparse.shape[0]} sparse rows"
            )
        self.ids = list(ids)
        self.w1, self.w2, self.quantize = float(w1), float(w2), quantize
        self.device = torch.device(device)
        self.dense = dense.to(self.device, torch.float32).contiguous()
        csc = sparse if sparse.layout != torch.strided else sparse.to_sparse_csr()
        csc = csc.to_sparse_coo().to_sparse_csc() if csc.layout != torch.sparse_csc else csc
        values = csc.values().to(torch.float32)
        if quantize:
            values = quantize_feature(values)
        self.vocab_size = sparse.shape[1]
        self.col_ptr = csc.ccol_indices().to(self.device, torch.int64)
        self.rows = csc.row_indices().to(self.device, torch.int64)
        self.values = values.to(self.device)

    @classmethod
    def from_encoded(cls, ids: Sequence[str], encoded, **kwargs) -> ExactRetriever:
        return cls(ids, encoded.dense, encoded.sparse, **kwargs)

    def __len__(self) -> int:
        return len(self.ids)

    # ------------------------------------------------------------------ scoring
    def dense_scores(self, q_dense: Tensor) -> Tensor:
        """(Q, D) -> (Q, N) cosines."""
        return q_dense.to(self.device, torch.float32) @ self.dense.t()

    def sparse_scores(self, q_sparse: Tensor) -> Tensor:
        """(Q, V) query term weights -> (Q, N), touching only the query terms' postings."""
        q_sparse = q_sparse.to(self.device, torch.float32)
        n_docs = len(self.ids)
        out = torch.zeros(q_sparse.shape[0] * n_docs, device=self.device)
        q_idx, terms = q_sparse.nonzero(as_tuple=True)
        if terms.numel() == 0:
            return out.view(q_sparse.shape[0], n_docs)
        starts, ends = self.col_ptr[terms], self.col_ptr[terms + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        # positions of every touched posting, without a Python loop over terms
        seg = torch.repeat_interleave(torch.arange(len(terms), device=self.device), lengths)
        first = torch.cumsum(lengths, 0) - lengths
        pos = starts[seg] + torch.arange(total, device=self.device) - first[seg]
        weight = q_sparse[q_idx, terms][seg]
        target = q_idx[seg] * n_docs + self.rows[pos]
        out.index_add_(0, target, self.values[pos] * weight)
        return out.view(q_sparse.shape[0], n_docs)

    def search(
        self, q_dense: Tensor | None, q_sparse: Tensor | None, *, k: int = 10, mode: str = "hybrid"
    ) -> SearchResult:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        k = min(k, len(self.ids))
        if mode == "dense":
            return SearchResult(*top_k(self.dense_scores(q_dense), k))
        if mode == "sparse":
            return SearchResult(*top_k(self.sparse_scores(q_sparse), k))
        dense = self.w1 * self.dense_scores(q_dense)
        sparse = self.w2 * self.sparse_scores(q_sparse)
        scores, indices = top_k(dense + sparse, k)
        return SearchResult(scores, indices, dense.gather(1, indices), sparse.gather(1, indices))

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file(
            {
                "dense": self.dense.cpu(),
                "col_ptr": self.col_ptr.cpu(),
                "rows": self.rows.cpu(),
                "values": self.values.cpu(),
            },
            str(path / "retriever.safetensors"),
        )
        meta = {
            "ids": self.ids,
            "w1": self.w1,
            "w2": self.w2,
            "quantize": self.quantize,
            "vocab_size": self.vocab_size,
        }
        (path / "retriever.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, path: Path, device: str | torch.device = "cpu") -> ExactRetriever:
        from safetensors.torch import load_file

        path = Path(path)
        try:
            meta = json.loads((path / "retriever.json").read_text())
            t = load_file(str(path / "retriever.safetensors"))
        except FileNotFoundError as exc:
            raise ModelError(f"{path}: no saved retriever ({exc.filename} missing)") from exc
        self = cls.__new__(cls)
        self.ids, self.w1, self.w2 = meta["ids"], meta["w1"], meta["w2"]
        self.quantize, self.vocab_size = meta["quantize"], meta["vocab_size"]
        self.device = torch.device(device)
        self.dense = t["dense"].to(self.device)
        self.col_ptr, self.rows = t["col_ptr"].to(self.device), t["rows"].to(self.device)
        self.values = t["values"].to(self.device)  # already quantised when saved so
        return self


def top_k(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-k per row, descending, ties broken by the lower column index. (Q, N) -> (Q, k)."""
    values, indices = scores.topk(k, dim=1)
    threshold = values[:, -1:]
    # rows whose k-th score is tied with scores outside the top-k need an exact re-selection
    tied = (scores >= threshold).sum(dim=1) > k
    for row in tied.nonzero().flatten().tolist():
        candidates = (scores[row] >= threshold[row]).nonzero().flatten()
        order = sorted(candidates.tolist(), key=lambda i: (-float(scores[row, i]), i))[:k]
        indices[row] = torch.tensor(order, device=scores.device)
        values[row] = scores[row, indices[row]]
    # within the top-k, order by (score desc, index asc)
    order = torch.argsort(indices, dim=1)
    values, indices = values.gather(1, order), indices.gather(1, order)
    order = torch.argsort(-values, dim=1, stable=True)
    return values.gather(1, order), indices.gather(1, order)

"""Exact in-memory retrieval in PyTorch: the reference the engine is compared with.

- dense: a matrix product with the (N, D) document matrix;
- sparse: the documents' term weights are stored column-major (CSC: per term, its posting list
  of documents and weights); a query gathers only its own terms' postings and scatter-adds
  them, so the work is the number of postings touched, never N x V;
- hybrid: w1 * dense + w2 * sparse, exactly the integrated score.
With `quantize=True` the stored weights are what the engine stores (Lucene's truncation to 9
significant bits, values it would refuse dropped), so the scores predict the engine's.
Queries are scored in blocks so that memory stays bounded for any number of queries.
Ties are broken by the lower document index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from sparse_mm.errors import DataError, ModelError
from sparse_mm.scores import feature_weight_mask, quantize_feature

MODES = ("dense", "sparse", "hybrid")
FORMAT_VERSION = 1
_BLOCK_SCORES = 1 << 24  # score-matrix entries per query block (64 MiB of float32)
_BLOCK_POSTINGS = 1 << 22  # postings touched per query block (~30 bytes of work each)


@dataclass
class SearchResult:
    """Top-k hits per query, best first. For mode "hybrid", `dense_part` = w1 * cos and
    `sparse_part` = w2 * sparse score of each hit, so that scores = dense_part + sparse_part."""

    scores: Tensor  # (Q, k) float32
    indices: Tensor  # (Q, k) int64 document indices
    dense_part: Tensor | None = None  # (Q, k)
    sparse_part: Tensor | None = None  # (Q, k)

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
        """`ids` N strings; `dense` (N, D) unit rows; `sparse` (N, V) term weights, a torch
        sparse tensor (CSR as `EncodedCollection` gives, CSC or COO) or dense."""
        if dense.dim() != 2 or sparse.dim() != 2:
            raise DataError(f"dense and sparse must be 2-D, got {dense.shape}, {sparse.shape}")
        if not dense.shape[0] == sparse.shape[0] == len(ids):
            raise DataError(
                f"{len(ids)} ids, {dense.shape[0]} dense rows, {sparse.shape[0]} sparse rows"
            )
        if len(set(ids)) != len(ids):
            raise DataError("document ids are not unique")
        self.ids = [str(i) for i in ids]
        self.w1, self.w2, self.quantize = float(w1), float(w2), bool(quantize)
        self.device = torch.device(device)
        self.dense = dense.to(self.device, torch.float32).contiguous()
        self.vocab_size = int(sparse.shape[1])
        csc = _to_csc(sparse)
        col_ptr, rows = csc.ccol_indices().to(torch.int64), csc.row_indices().to(torch.int64)
        values = csc.values().to(torch.float32)
        if quantize:  # once, at build time: what the engine keeps of each weight
            keep = feature_weight_mask(values)
            if not bool(keep.all()):
                terms = torch.repeat_interleave(torch.arange(self.vocab_size), col_ptr.diff())
                col_ptr = _pointers(terms[keep], self.vocab_size)
                rows, values = rows[keep], values[keep]
            values = quantize_feature(values)
        self.col_ptr, self.rows = col_ptr.to(self.device), rows.to(self.device)
        self.values = values.to(self.device)

    @classmethod
    def from_encoded(cls, ids: Sequence[str], encoded, **kwargs) -> ExactRetriever:
        """From an `EncodedCollection`; keyword arguments as for the constructor."""
        return cls(ids, encoded.dense, encoded.sparse, **kwargs)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, keep: Tensor) -> ExactRetriever:
        """The retriever of the documents `keep` (N,) bool selects, in their order (so ties
        still go to the earlier document): exact search under a filter."""
        keep = keep.to(torch.bool).cpu()
        if keep.shape != (len(self.ids),):
            raise ValueError(f"keep must be ({len(self.ids)},), got {tuple(keep.shape)}")
        new_row = torch.cumsum(keep, 0) - 1  # old row -> new row, where kept
        rows = self.rows.cpu()
        kept = keep[rows]
        terms = torch.repeat_interleave(torch.arange(self.vocab_size), self.col_ptr.cpu().diff())
        out = ExactRetriever.__new__(ExactRetriever)
        out.ids = [i for i, k in zip(self.ids, keep.tolist(), strict=True) if k]
        out.w1, out.w2, out.quantize = self.w1, self.w2, self.quantize
        out.device, out.vocab_size = self.device, self.vocab_size
        out.dense = self.dense[keep.to(self.device)]
        out.col_ptr = _pointers(terms[kept], self.vocab_size).to(self.device)
        out.rows = new_row[rows[kept]].to(self.device)
        out.values = self.values[kept.to(self.device)]
        return out

    # ------------------------------------------------------------------ scoring
    def search(
        self,
        q_dense: Tensor | None,
        q_sparse: Tensor | None,
        *,
        k: int = 10,
        mode: str = "hybrid",
    ) -> SearchResult:
        """`q_dense` (Q, D) unit rows and/or `q_sparse` (Q, V) term weights (dense or torch
        sparse) -> the top-k documents of each query for the mode."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        qd = self._check(q_dense, self.dense.shape[1], "q_dense") if mode != "sparse" else None
        qs = self._entries(q_sparse) if mode != "dense" else None
        n_queries = qd.shape[0] if qd is not None else qs[3]
        if qd is not None and qs is not None and qs[3] != n_queries:
            raise ValueError(f"{n_queries} dense queries but {qs[3]} sparse queries")
        k = min(k, len(self.ids))
        parts: list[tuple[Tensor, ...]] = []
        for lo, hi in self._blocks(n_queries, qs):
            dense = qd[lo:hi] @ self.dense.t() if qd is not None else None
            sparse = self._sparse_block(qs, lo, hi) if qs is not None else None
            if mode == "dense":
                parts.append(top_k(dense, k))
            elif mode == "sparse":
                parts.append(top_k(sparse, k))
            else:
                dense, sparse = self.w1 * dense, self.w2 * sparse
                scores, indices = top_k(dense + sparse, k)
                parts.append((scores, indices, dense.gather(1, indices), sparse.gather(1, indices)))
        if not parts:
            empty = torch.zeros(0, k, device=self.device)
            parts = [(empty, empty.long()) + ((empty, empty) if mode == "hybrid" else ())]
        return SearchResult(*(torch.cat(column).cpu() for column in zip(*parts, strict=True)))

    def dense_scores(self, q_dense: Tensor) -> Tensor:
        """(Q, D) unit rows -> (Q, N) cosines with every document."""
        return self._check(q_dense, self.dense.shape[1], "q_dense") @ self.dense.t()

    def sparse_scores(self, q_sparse: Tensor) -> Tensor:
        """(Q, V) term weights -> (Q, N) sparse scores with every document (postings only)."""
        qs = self._entries(q_sparse)
        blocks = [self._sparse_block(qs, lo, hi) for lo, hi in self._blocks(qs[3], qs)]
        return torch.cat(blocks) if blocks else torch.zeros(0, len(self.ids), device=self.device)

    def _check(self, q: Tensor | None, width: int, name: str) -> Tensor:
        if q is None:
            raise ValueError(f"{name} is required for this mode")
        q = q.unsqueeze(0) if q.dim() == 1 else q
        if q.dim() != 2 or q.shape[1] != width:
            raise ValueError(f"{name} must be (Q, {width}), got {tuple(q.shape)}")
        q = q.to(self.device, torch.float32)
        if q.layout == torch.strided and not bool(torch.isfinite(q).all()):
            raise ValueError(f"{name} has NaN or infinite values")
        return q

    def _entries(self, q_sparse: Tensor | None) -> tuple[Tensor, Tensor, Tensor, int]:
        """Query term weights as row-major (query, term, weight) triples, plus Q."""
        q = self._check(q_sparse, self.vocab_size, "q_sparse")
        if q.layout == torch.strided:
            query, term = q.nonzero(as_tuple=True)
            return query, term, q[query, term], q.shape[0]
        coo = q.to_sparse_coo().coalesce()
        if not bool(torch.isfinite(coo.values()).all()):
            raise ValueError("q_sparse has NaN or infinite values")
        query, term = coo.indices()
        return query, term, coo.values(), q.shape[0]

    def _blocks(self, n_queries: int, qs: tuple | None) -> list[tuple[int, int]]:
        """Consecutive query ranges, each within the score and postings budgets."""
        rows_cap = max(1, _BLOCK_SCORES // max(1, len(self.ids)))
        touched = None
        if qs is not None:
            query, term = qs[0], qs[1]
            lengths = self.col_ptr[term + 1] - self.col_ptr[term]
            per_query = torch.zeros(n_queries, dtype=torch.int64, device=self.device)
            touched = per_query.index_add_(0, query, lengths).cumsum(0).cpu()
        blocks, lo = [], 0
        while lo < n_queries:
            hi = min(lo + rows_cap, n_queries)
            if touched is not None:
                before = int(touched[lo - 1]) if lo else 0
                fit = int(torch.searchsorted(touched, before + _BLOCK_POSTINGS, right=True))
                hi = max(lo + 1, min(hi, fit))
            blocks.append((lo, hi))
            lo = hi
        return blocks

    def _sparse_block(self, qs: tuple, lo: int, hi: int) -> Tensor:
        """(hi - lo, N) sparse scores of queries lo..hi-1, from their terms' postings only."""
        query, term, weight, _ = qs
        a, b = (int(i) for i in torch.searchsorted(query, torch.tensor([lo, hi]).to(query)))
        query, term, weight = query[a:b] - lo, term[a:b], weight[a:b]
        n_docs = len(self.ids)
        out = torch.zeros((hi - lo) * n_docs, device=self.device)
        starts = self.col_ptr[term]
        lengths = self.col_ptr[term + 1] - starts
        total = int(lengths.sum())
        if total:
            entry = torch.repeat_interleave(lengths, output_size=total)  # posting -> query term
            first = torch.cumsum(lengths, 0) - lengths
            pos = torch.arange(total, device=self.device) + (starts - first)[entry]
            target = query[entry] * n_docs + self.rows[pos]
            out.index_add_(0, target, self.values[pos] * weight[entry])
        return out.view(hi - lo, n_docs)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write `retriever.safetensors` and `retriever.json` into the folder `path`."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {"dense": self.dense, "col_ptr": self.col_ptr, "rows": self.rows}
        tensors["values"] = self.values
        save_file({k: v.cpu().contiguous() for k, v in tensors.items()}, str(path / _WEIGHTS))
        meta = {
            "format_version": FORMAT_VERSION,
            "w1": self.w1,
            "w2": self.w2,
            "quantize": self.quantize,
            "vocab_size": self.vocab_size,
            "ids": self.ids,
        }
        (path / _META).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> ExactRetriever:
        """Read what `save` wrote (weights are stored already quantised when they were)."""
        from safetensors.torch import load_file

        path = Path(path)
        try:
            meta = json.loads((path / _META).read_text(encoding="utf-8"))
            t = load_file(str(path / _WEIGHTS))
        except FileNotFoundError as exc:
            raise ModelError(f"{path}: no saved retriever ({exc.filename} is missing)") from None
        if meta.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{path / _META}: unsupported format {meta.get('format_version')!r}")
        n, v = len(meta["ids"]), meta["vocab_size"]
        if (
            set(t) != {"dense", "col_ptr", "rows", "values"}
            or t["dense"].shape[0] != n
            or tuple(t["col_ptr"].shape) != (v + 1,)
            or t["rows"].shape != t["values"].shape
        ):
            raise ModelError(f"{path / _WEIGHTS}: tensors do not match {path / _META}")
        self = cls.__new__(cls)
        self.ids, self.vocab_size = list(meta["ids"]), v
        self.w1, self.w2, self.quantize = meta["w1"], meta["w2"], meta["quantize"]
        self.device = torch.device(device)
        for name in ("dense", "col_ptr", "rows", "values"):
            setattr(self, name, t[name].to(self.device))
        return self


_WEIGHTS, _META = "retriever.safetensors", "retriever.json"


def top_k(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(Q, N) -> (Q, k) values and indices: descending score, ties to the lower index."""
    kth = scores.topk(k, dim=1).values[:, -1:]
    take = scores >= kth
    crowded = take.sum(1) > k  # a tie straddles the k-th place: keep the lowest tied indices
    if bool(crowded.any()):
        rows = crowded.nonzero().squeeze(1)
        sub, sub_kth = scores[rows], kth[rows]
        above, tied = sub > sub_kth, sub == sub_kth
        room = k - above.sum(1, keepdim=True)
        take[rows] = above | (tied & (tied.cumsum(1, dtype=torch.int32) <= room))
    indices = take.nonzero()[:, 1].view(scores.shape[0], k)  # ascending within each row
    values = scores.gather(1, indices)
    order = values.argsort(dim=1, descending=True, stable=True)
    return values.gather(1, order), indices.gather(1, order)


def _to_csc(sparse: Tensor) -> Tensor:
    if sparse.layout == torch.sparse_csc:
        return sparse
    if sparse.layout == torch.sparse_coo:
        sparse = sparse.coalesce()
    return sparse.to_sparse_csc()


def _pointers(sorted_keys: Tensor, size: int) -> Tensor:
    """(M,) ascending keys in [0, size) -> (size + 1,) CSR/CSC pointers."""
    ptr = torch.zeros(size + 1, dtype=torch.int64)
    torch.cumsum(torch.bincount(sorted_keys, minlength=size), 0, out=ptr[1:])
    return ptr

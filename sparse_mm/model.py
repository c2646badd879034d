"""The trained layers: two dense projections and one sparse head shared by both modalities.

For modality m (METHOD.md, "Model"):
    d_m = normalize(W_m x + b_m)                                  (B, in_dim) -> (B, dense_dim)
    z_m = log(1 + relu(V LayerNorm(U d_m + c)))                   (B, dense_dim) -> (B, vocab)
The sparse head is fed the *normalised* dense vector, so sparse losses train the projections too.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sparse_mm.errors import ModelError

MODALITIES = ("text", "image")
_PRECISIONS = ("float32", "bfloat16")
PROJECTION_KEYS = ("text_proj.weight", "text_proj.bias", "vision_proj.weight", "vision_proj.bias")


@dataclass(frozen=True)
class HeadsConfig:
    vocab_size: int
    in_dim: int = 768
    dense_dim: int = 256
    hidden_dim: int = 768

    def __post_init__(self) -> None:
        for name in ("vocab_size", "in_dim", "dense_dim", "hidden_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"heads config: {name} must be a positive integer, got {value!r}")


@dataclass
class Encoded:
    """Training-time outputs: `dense` (B, dense_dim) unit rows, `sparse` (B, V) >= 0."""

    dense: Tensor
    sparse: Tensor


@dataclass
class EncodedCollection:
    """An encoded collection, on CPU.

    `dense`: (N, dense_dim) float32 unit rows. `sparse`: (N, V) torch sparse CSR float32 holding
    only the kept (non-zero) term weights, column indices ascending within each row."""

    dense: Tensor
    sparse: Tensor

    def __len__(self) -> int:
        return self.dense.shape[0]

    def nnz_per_row(self) -> Tensor:
        """(N,) number of stored terms of each row."""
        return self.sparse.crow_indices().diff()

    def terms(self, i: int) -> tuple[Tensor, Tensor]:
        """Row i's term ids (n_i,) int64 and weights (n_i,) float32 (views, no copy)."""
        crow = self.sparse.crow_indices()
        start, end = int(crow[i]), int(crow[i + 1])
        return self.sparse.col_indices()[start:end], self.sparse.values()[start:end]

    def iter_terms(self) -> Iterator[tuple[Tensor, Tensor]]:
        """(term ids, weights) of every row in order; see `terms`."""
        crow = self.sparse.crow_indices().tolist()
        cols, vals = self.sparse.col_indices(), self.sparse.values()
        for start, end in itertools.pairwise(crow):
            yield cols[start:end], vals[start:end]


class SparseHead(nn.Module):
    """(B, dense_dim) unit vectors -> (B, V) non-negative term weights."""

    def __init__(self, dense_dim: int, hidden_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dense_dim, hidden_dim)
        self.norm = nn.LayerNorm(hidden_dim)
        self.vocab = nn.Linear(hidden_dim, vocab_size, bias=False)

    def logits(self, dense: Tensor) -> Tensor:
        """(B, dense_dim) -> (B, V) pre-activation scores; weight = log1p(relu(logit))."""
        return self.vocab(self.norm(self.fc(dense)))

    def forward(self, dense: Tensor) -> Tensor:
        return torch.log1p(torch.relu(self.logits(dense)))


class SparseDenseHeads(nn.Module):
    """Dense projections `text_proj`, `vision_proj` and the shared `sparse_head`."""

    def __init__(self, config: HeadsConfig, *, seed: int | None = 42) -> None:
        super().__init__()
        self.config = config
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.text_proj = nn.Linear(config.in_dim, config.dense_dim)
            self.vision_proj = nn.Linear(config.in_dim, config.dense_dim)
            self.sparse_head = SparseHead(config.dense_dim, config.hidden_dim, config.vocab_size)

    def init_from(
        self,
        *,
        init_projection: dict[str, Tensor] | None = None,
        word_embeddings: Tensor | None = None,
    ) -> None:
        """Copy the backbone's projections (keys `PROJECTION_KEYS`, all required) and its word
        embeddings (V, hidden_dim) into the vocabulary matrix (tied initialisation)."""
        with torch.no_grad():
            if init_projection is not None:
                unknown = sorted(set(init_projection) - set(PROJECTION_KEYS))
                missing = [k for k in PROJECTION_KEYS if k not in init_projection]
                if unknown or missing:
                    raise ModelError(
                        f"initial projection: missing {missing or 'nothing'}, "
                        f"unknown {unknown or 'nothing'}"
                    )
                for name in PROJECTION_KEYS:
                    _copy(self.get_parameter(name), init_projection[name], name)
            if word_embeddings is not None:
                _copy(self.sparse_head.vocab.weight, word_embeddings, "word embeddings")

    def _projection(self, modality: str) -> nn.Linear:
        if modality == "text":
            return self.text_proj
        if modality == "image":
            return self.vision_proj
        raise ValueError(f"modality must be 'text' or 'image', got {modality!r}")

    def dense(self, x: Tensor, modality: str) -> Tensor:
        """(B, in_dim) pre-projection embeddings -> (B, dense_dim) unit rows."""
        return F.normalize(self._projection(modality)(x), dim=-1)

    def sparse(self, dense: Tensor) -> Tensor:
        """(B, dense_dim) unit rows -> (B, V) non-negative term weights."""
        return self.sparse_head(dense)

    def forward(self, x: Tensor, modality: str) -> Encoded:
        """(B, in_dim) -> Encoded(dense (B, dense_dim), sparse (B, V)), with gradients."""
        d = self.dense(x, modality)
        return Encoded(d, self.sparse(d))

    def encode(
        self,
        x: Tensor,
        modality: str,
        *,
        batch_size: int = 4096,
        device: str | torch.device | None = None,
        topk: int | None = None,
        min_weight: float = 0.0,
        progress: bool = False,
        precision: str = "float32",
    ) -> EncodedCollection:
        """Encode (N, in_dim) rows for indexing or search; returns CPU tensors.

        Runs without autograd in eval mode, `batch_size` rows at a time on `device` (default:
        where the weights are; the module itself is never moved). Only one (batch, V) block is
        ever allocated. Keeps, per row, the `topk` largest weights (all if None) that are
        strictly above `min_weight`. The non-zero test and top-k run on the logits, before
        log1p, since log1p(relu(.)) is monotone: the log is then taken of the kept entries only.

        `precision="bfloat16"` runs the vocabulary product (the dominant cost) in bfloat16 with
        float32 accumulation: about 2.5x faster on CPUs with native bfloat16 (AVX512-BF16, AMX)
        and on GPUs, but lossy (weights off by up to ~0.01, ~1% of the active terms appear or
        vanish near zero), so outputs no longer equal `forward`. Default: exact float32.
        """
        self._projection(modality)
        if x.dim() != 2 or x.shape[1] != self.config.in_dim:
            raise ModelError(
                f"encode: expected (N, {self.config.in_dim}) embeddings, got {tuple(x.shape)}"
            )
        if precision not in _PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(_PRECISIONS)}, got {precision!r}"
            )
        if batch_size < 1 or (topk is not None and topk < 1):
            raise ValueError(f"batch_size and topk must be positive, got {batch_size}, {topk}")
        if not (math.isfinite(min_weight) and min_weight >= 0):
            raise ValueError(f"min_weight must be finite and >= 0, got {min_weight}")
        home = next(self.parameters()).device
        device = torch.device(device) if device is not None else home
        model = self if device == home else copy.deepcopy(self).to(device)
        was_training = self.training
        # a logit threshold that keeps every weight > min_weight (and a few more, filtered below)
        floor = math.expm1(min_weight) * (1 - 1e-6) if min_weight > 0 else 0.0
        n, vocab = x.shape[0], self.config.vocab_size
        dense_out = torch.empty(n, self.config.dense_dim)
        counts = torch.zeros(n, dtype=torch.int64)
        cols, vals = [], []
        starts = range(0, n, batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc=f"encode {modality}", unit="batch")
        logits = model.sparse_head.logits
        if precision == "bfloat16":
            logits = _bfloat16_logits(model.sparse_head)
        model.eval()
        try:
            with torch.inference_mode():
                for start in starts:
                    batch = x[start : start + batch_size].to(device, torch.float32)
                    d = model.dense(batch, modality)
                    rows, c, v = _kept_entries(logits(d), floor, topk)
                    v = torch.log1p(v)
                    if min_weight > 0:
                        keep = v > min_weight
                        rows, c, v = rows[keep], c[keep], v[keep]
                    stop = start + batch.shape[0]
                    dense_out[start:stop] = d
                    counts[start:stop] = torch.bincount(rows, minlength=batch.shape[0]).cpu()
                    cols.append(c.cpu())
                    vals.append(v.cpu())
        finally:
            self.train(was_training)
        crow = torch.zeros(n + 1, dtype=torch.int64)
        torch.cumsum(counts, 0, out=crow[1:])
        sparse = torch.sparse_csr_tensor(
            crow,
            torch.cat(cols) if cols else torch.zeros(0, dtype=torch.int64),
            torch.cat(vals) if vals else torch.zeros(0),
            size=(n, vocab),
            check_invariants=False,  # rows, and columns within a row, ascending by build
        )
        return EncodedCollection(dense_out, sparse)


def _bfloat16_logits(head: SparseHead):
    """head.logits with the vocabulary product in bfloat16 (weights converted once)."""
    with torch.no_grad():
        vocab = head.vocab.weight.to(torch.bfloat16)

    def logits(dense: Tensor) -> Tensor:
        hidden = head.norm(head.fc(dense))
        return F.linear(hidden.to(torch.bfloat16), vocab).float()

    return logits


def _kept_entries(logits: Tensor, floor: float, topk: int | None) -> tuple[Tensor, Tensor, Tensor]:
    """Row-major (rows, cols, logits) of the entries > floor, among each row's top-k if given.

    (B, V) -> three (nnz,) tensors, columns ascending within each row."""
    b, vocab = logits.shape
    if topk is not None and topk < vocab:
        top, cols = logits.topk(topk, dim=1, sorted=False)
        cols = torch.where(top > floor, cols, vocab)  # dropped entries sort last
        cols, order = cols.sort(dim=1)
        top = top.gather(1, order)
        keep = cols < vocab
        rows = torch.arange(b, device=logits.device).unsqueeze(1).expand(b, topk)
        return rows[keep], cols[keep], top[keep]
    flat = logits.reshape(-1)
    idx = (flat > floor).nonzero().squeeze(1)
    return idx // vocab, idx % vocab, flat[idx]


def _copy(target: Tensor, source: Tensor, name: str) -> None:
    if tuple(source.shape) != tuple(target.shape):
        raise ModelError(f"{name}: expected shape {tuple(target.shape)}, got {tuple(source.shape)}")
    target.copy_(source.to(target.dtype))

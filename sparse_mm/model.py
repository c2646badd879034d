"""The trained layers: two dense projections and one sparse head shared by both modalities.

For modality m: d_m = normalize(W_m x + b_m) and z_m = log(1 + relu(V LayerNorm(U d_m + c))),
the sparse head fed by the *normalised* dense vector (METHOD.md, "Model").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sparse_mm.errors import ModelError

MODALITIES = ("text", "image")


@dataclass(frozen=True)
class HeadsConfig:
    vocab_size: int
    in_dim: int = 768
    dense_dim: int = 256
    hidden_dim: int = 768

    def __post_init__(self) -> None:
        for name in ("vocab_size", "in_dim", "dense_dim", "hidden_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ModelError(f"heads config: {name} must be a positive integer, got {value!r}")


@dataclass
class Encoded:
    """Training-time outputs: dense (B, dense_dim) unit rows, sparse (B, V) >= 0."""

    dense: Tensor
    sparse: Tensor


@dataclass
class EncodedCollection:
    """Encoded collection on CPU: dense (N, dense_dim) float32, sparse (N, V) CSR float32."""

    dense: Tensor
    sparse: Tensor

    def __len__(self) -> int:
        return self.dense.shape[0]


class SparseHead(nn.Module):
    """(B, dense_dim) unit vectors -> (B, V) non-negative term weights."""

    def __init__(self, dense_dim: int, hidden_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dense_dim, hidden_dim)
        self.norm = nn.LayerNorm(hidden_dim)
        self.vocab = nn.Linear(hidden_dim, vocab_size, bias=False)

    def forward(self, dense: Tensor) -> Tensor:
        return torch.log1p(torch.relu(self.vocab(self.norm(self.fc(dense)))))


class SparseDenseHeads(nn.Module):
    def __init__(self, config: HeadsConfig, *, seed: int | None = 42) -> None:
        super().__init__()
        self.config = config
        with torch.random.fork_rng(devices=[]):
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
        """Copy a backbone's projection (`text_proj.weight`, `text_proj.bias`,
        `vision_proj.weight`, `vision_proj.bias`) and word embeddings (V, hidden) (tied init)."""
        with torch.no_grad():
            if init_projection is not None:
                for name in (
                    "text_proj.weight",
                    "text_proj.bias",
                    "vision_proj.weight",
                    "vision_proj.bias",
                ):
                    if name not in init_projection:
                        raise ModelError(f"initial projection: tensor {name} is missing")
                    _copy(self.get_parameter(name), init_projection[name], name)
            if word_embeddings is not None:
                _copy(self.sparse_head.vocab.weight, word_embeddings, "word embeddings")

    def dense(self, x: Tensor, modality: str) -> Tensor:
        """(B, in_dim) -> (B, dense_dim) unit rows."""
        if modality == "text":
            proj = self.text_proj
        elif modality == "image":
            proj = self.vision_proj
        else:
            raise ValueError(f"modality must be 'text' or 'image', got {modality!r}")
        return F.normalize(proj(x), dim=-1)

    def sparse(self, dense: Tensor) -> Tensor:
        """(B, dense_dim) -> (B, V) non-negative term weights."""
        return self.sparse_head(dense)

    def forward(self, x: Tensor, modality: str) -> Encoded:
        d = self.dense(x, modality)
        return Encoded(d, self.sparse(d))

    @torch.no_grad()
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
    ) -> EncodedCollection:
        """Encode (N, in_dim) rows batch by batch; never materialises (N, V)."""
        from tqdm import tqdm

        was_training = self.training
        self.eval()
        device = torch.device(device) if device is not None else next(self.parameters()).device
        self.to(device)
        dense_parts, crows, cols, vals = [], [torch.zeros(1, dtype=torch.int64)], [], []
        offset = 0
        starts = range(0, x.shape[0], batch_size)
        for start in tqdm(
            starts, disable=None if progress else True, desc=f"encode {modality}", unit="batch"
        ):
            batch = x[start : start + batch_size].to(device, torch.float32)
            d = self.dense(batch, modality)
            z = self.sparse(d)
            if topk is not None and topk < z.shape[1]:
                top = z.topk(topk, dim=1)
                z = torch.zeros_like(z).scatter_(1, top.indices, top.values)
            if min_weight > 0:
                z = torch.where(z > min_weight, z, torch.zeros_like(z))
            csr = z.to_sparse_csr()
            dense_parts.append(d.float().cpu())
            crows.append(csr.crow_indices()[1:].cpu() + offset)
            cols.append(csr.col_indices().cpu())
            vals.append(csr.values().float().cpu())
            offset += csr.values().numel()
        self.train(was_training)
        n, vocab = x.shape[0], self.config.vocab_size
        sparse = torch.sparse_csr_tensor(
            torch.cat(crows),
            _cat(cols, torch.int64),
            _cat(vals, torch.float32),
            size=(n, vocab),
            check_invariants=False,  # built from valid CSR pieces
        )
        dense = torch.cat(dense_parts) if dense_parts else torch.zeros(0, self.config.dense_dim)
        return EncodedCollection(dense, sparse)


def _cat(parts: list[Tensor], dtype: torch.dtype) -> Tensor:
    return torch.cat(parts).to(dtype) if parts else torch.zeros(0, dtype=dtype)


def _copy(target: Tensor, source: Tensor, name: str) -> None:
    if tuple(source.shape) != tuple(target.shape):
        raise ModelError(f"{name}: expected shape {tuple(target.shape)}, got {tuple(source.shape)}")
    target.copy_(source.to(target.dtype))

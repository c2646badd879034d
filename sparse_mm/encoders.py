"""Query encoders: free text -> the backbone's pre-projection text embedding (B, in_dim).

A model's `config.json` describes its encoder under `query_encoder`, by type:
- "synthetic": the synthetic corpus' encoder (sparse_mm.synth), stored in the model directory;
- "blip": a BLIP text tower loaded with `transformers` (optional extra `sparse-mm[blip]`);
- "none": no text encoder; query with stored caption embeddings instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch

from sparse_mm.errors import ModelError


class QueryEncoder(Protocol):
    in_dim: int

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """(B,) texts -> (B, in_dim) pre-projection embeddings."""
        ...


_LOADERS: dict[str, Callable[[Path, dict], QueryEncoder]] = {}
_PROVIDERS = {"synthetic": "sparse_mm.synth", "blip": "sparse_mm.blip"}


def register_query_encoder(type_name: str, loader: Callable[[Path, dict], QueryEncoder]) -> None:
    _LOADERS[type_name] = loader


def load_query_encoder(model) -> QueryEncoder:
    """The query encoder of a LoadedModel, as its config describes it."""
    desc = dict(model.config.query_encoder or {"type": "none"})
    kind = desc.get("type", "none")
    if kind == "none":
        raise ModelError(
            f"model {model.path} has no query encoder; query with --caption-id instead"
        )
    if kind not in _LOADERS and kind in _PROVIDERS:
        importlib.import_module(_PROVIDERS[kind])  # registers itself on import
    if kind not in _LOADERS:
        raise ModelError(f"model {model.path}: unknown query encoder type {kind!r}")
    encoder = _LOADERS[kind](Path(model.path), desc)
    if encoder.in_dim != model.config.heads.in_dim:
        raise ModelError(
            f"query encoder makes {encoder.in_dim}-d embeddings, the model takes "
            f"{model.config.heads.in_dim}-d"
        )
    return encoder

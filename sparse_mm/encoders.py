"""Query encoders: free text -> the backbone's pre-projection text embedding (B, in_dim).

A model's `config.json` describes its encoder under `query_encoder`, by type:
- "synthetic": the synthetic corpus' encoder (registered by `sparse_mm.synth` on import), its
  weights in the model directory;
- "blip": a BLIP text tower loaded with `transformers` (optional extra `sparse-mm[blip]`):
  {"type": "blip", "name": <checkpoint directory or hub name>, "max_length": 35};
- "none" (or no description): the model has no text encoder.

An encoder may also say which words of a text its vocabulary lacks (`unknown_words`): the
synthetic encoder leaves such words out of the query; BLIP's WordPiece tokenizer encodes a
word that is not one of its tokens as several pieces (`dgo` -> `dg ##o`), or as [UNK] when no
pieces fit. Both are reported, so that a misspelt query is never answered silently.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor

from sparse_mm.errors import ModelError

if TYPE_CHECKING:
    from sparse_mm.checkpoint import LoadedModel


class QueryEncoder(Protocol):
    in_dim: int

    def encode_texts(self, texts: list[str]) -> Tensor:
        """B texts -> (B, in_dim) float32 pre-projection embeddings."""
        ...


@dataclass(frozen=True)
class UnknownWord:
    """A query word the encoder's vocabulary lacks: `pieces` is what the encoder made of it
    instead (WordPiece pieces, or [UNK]); empty when the word was left out of the query."""

    word: str
    pieces: tuple[str, ...] = ()


def unknown_words(encoder: QueryEncoder, text: str) -> list[UnknownWord]:
    """The words of `text` that `encoder`'s vocabulary lacks (none for an encoder that cannot
    tell)."""
    find = getattr(encoder, "unknown_words", None)
    return list(find(text)) if find is not None else []


def describe_unknown(words: list[UnknownWord]) -> str | None:
    """One line for stderr naming the unknown words and what became of them; None if none."""
    if not words:
        return None
    ignored = [w.word for w in words if not w.pieces]
    pieced = [f"{w.word} ({' '.join(w.pieces)})" for w in words if w.pieces]
    parts = []
    if ignored:
        parts.append(f"left out of the query: {', '.join(ignored)}")
    if pieced:
        parts.append(f"encoded as word pieces: {', '.join(pieced)}")
    return f"warning: words not in the model's vocabulary, {'; '.join(parts)}"


Loader = Callable[[Path, dict], QueryEncoder]
_LOADERS: dict[str, Loader] = {}
# types whose loader lives in a module that registers it when imported
_PROVIDERS = {"synthetic": "sparse_mm.synth"}


def register_query_encoder(type_name: str, loader: Loader) -> None:
    """Make `load_query_encoder` build `loader(model_dir, description)` for this type."""
    _LOADERS[type_name] = loader


def load_query_encoder(model: LoadedModel) -> QueryEncoder:
    """The query encoder that a loaded model's config describes."""
    desc = dict(model.config.query_encoder or {"type": "none"})
    kind = desc.get("type", "none")
    if kind == "none":
        raise ModelError(
            f"model {model.path}: this model has no query encoder; query with --caption-id"
        )
    if kind not in _LOADERS and kind in _PROVIDERS:
        importlib.import_module(_PROVIDERS[kind])
    if kind not in _LOADERS:
        known = ", ".join(sorted({*_LOADERS, *_PROVIDERS, "none"}))
        raise ModelError(f"model {model.path}: unknown query encoder type {kind!r} ({known})")
    encoder = _LOADERS[kind](Path(model.path), desc)
    if encoder.in_dim != model.config.heads.in_dim:
        raise ModelError(
            f"model {model.path}: the {kind} query encoder makes {encoder.in_dim}-d embeddings, "
            f"the model takes {model.config.heads.in_dim}-d"
        )
    return encoder


def blip_caption(text: str, max_words: int = 30) -> str:
    """A caption as BLIP's retrieval code feeds it to the tokenizer: lower case, the characters
    . ! " ( ) * # : ; ~ replaced by spaces, runs of spaces collapsed, and at most `max_words`
    words (30 for retrieval)."""
    cleaned = _BLIP_PUNCTUATION.sub(" ", text.lower())
    words = cleaned.split()
    return " ".join(words[:max_words])


_BLIP_PUNCTUATION = re.compile(r'[.!"()*#:;~]')


def load_blip(name: str | Path, *, images: bool = False):
    """(BlipForImageTextRetrieval, tokenizer, image processor or None) from a checkpoint
    directory or a name transformers resolves; one-line errors naming the `blip` extra."""
    _require_transformers()
    name = checkpoint_source(name)  # before the slow import: a mistyped folder fails at once
    try:
        from transformers import AutoImageProcessor, AutoTokenizer, BlipForImageTextRetrieval
    except ImportError:
        raise ModelError(
            'BLIP needs transformers (and Pillow for images): pip install "sparse-mm[blip]"'
        ) from None
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a loading bar per query would clutter the output
    try:
        model = BlipForImageTextRetrieval.from_pretrained(str(name))
        tokenizer = AutoTokenizer.from_pretrained(str(name))
        processor = AutoImageProcessor.from_pretrained(str(name)) if images else None
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load the BLIP checkpoint {name}: {first}") from None
    return model.eval(), tokenizer, processor


def _require_transformers() -> None:
    """The `blip` extra's one line, without importing transformers (seconds) to find out."""
    import importlib.util

    try:
        found = importlib.util.find_spec("transformers") is not None
    except (ImportError, ValueError):  # a broken or blocked install
        found = False
    if not found:
        raise ModelError(
            'BLIP needs transformers (and Pillow for images): pip install "sparse-mm[blip]"'
        )


# a model-hub name: owner/name, letters, digits, '-', '_' and '.' (not a path like ./x or x/)
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def checkpoint_source(name: str | Path) -> str:
    """`name` as transformers should load it: a checkpoint folder that exists, or a model-hub
    name (owner/name) when no such folder exists and the hub answers. One line otherwise, at
    once, instead of the hub client's retries for a mistyped folder."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ModelError(
            f"{name} is a file; a BLIP checkpoint is a folder (config.json, the weights, the "
            "tokenizer and image-processor files)"
        )
    if not _HUB_ID.fullmatch(str(name)):
        raise ModelError(
            f"the BLIP checkpoint folder {name} does not exist (a model-hub name looks like "
            "owner/name)"
        )
    if _in_hub_cache(str(name)):
        return str(name)
    reason = _hub_unreachable()
    if reason:
        raise ModelError(
            f"{name}: no such folder here, and the model hub is unreachable ({reason}): this "
            "machine looks offline; give a checkpoint folder saved with save_pretrained"
        )
    return str(name)


def _in_hub_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return False
    return isinstance(try_to_load_from_cache(name, "config.json"), str)


def _hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the model hub cannot be reached (offline mode, no route, no name), or None."""
    import os
    import socket
    from urllib.parse import urlsplit

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    try:
        from huggingface_hub import constants
    except ImportError:  # no blip extra: loading says which to install
        return None
    parts = urlsplit(constants.ENDPOINT)
    try:
        socket.create_connection((parts.hostname, parts.port or 443), timeout).close()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def blip_text_cls(text_encoder, tokenizer, texts: list[str], max_length: int, device) -> Tensor:
    """B captions -> (B, hidden) float32: the text encoder's [CLS] state before text_proj,
    captions cleaned by `blip_caption` and tokenised to at most `max_length` tokens."""
    batch = tokenizer(
        [blip_caption(t) for t in texts],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    ).to(device)
    with torch.inference_mode():
        out = text_encoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
    return out[:, 0, :].float().cpu()


class BlipTextEncoder:
    """BLIP's text tower: the [CLS] hidden state before BLIP's text projection (B, 768).

    `name` is a checkpoint directory of `BlipForImageTextRetrieval` (config, weights and
    tokenizer files) or a hub name that `transformers` can resolve. As in BLIP's retrieval code,
    text is cleaned (`blip_caption`), truncated to `max_length` tokens and starts with [CLS];
    `sparse-mm embed` embeds captions with the same function, so queries and captions agree."""

    def __init__(self, name: str | Path, *, max_length: int = 35, device: str = "cpu") -> None:
        model, self.tokenizer, _ = load_blip(name)
        self.text = model.text_encoder.to(device).eval()  # the vision tower is dropped
        self.in_dim = int(model.config.text_config.hidden_size)
        self.max_length = max_length
        self.device = device

    def encode_texts(self, texts: list[str]) -> Tensor:
        return blip_text_cls(self.text, self.tokenizer, list(texts), self.max_length, self.device)

    def unknown_words(self, text: str) -> list[UnknownWord]:
        """Words (of the cleaned caption) that are not whole tokens of the tokenizer's
        vocabulary: split into `##` pieces, or [UNK]."""
        return wordpiece_gaps(self.tokenizer, text)


def wordpiece_gaps(tokenizer, text: str) -> list[UnknownWord]:
    """The words of `blip_caption(text)` that `tokenizer` (BERT WordPiece) does not have as
    one token: a piece starting with `##`, or its unknown token, means the word was split or
    lost. Punctuation that the tokenizer splits off (`dog,` -> `dog ,`) is not a gap."""
    unk = getattr(tokenizer, "unk_token", "[UNK]")
    gaps, seen = [], set()
    for word in blip_caption(text).split():
        pieces = tuple(tokenizer.tokenize(word))
        if word not in seen and any(p == unk or p.startswith("##") for p in pieces):
            gaps.append(UnknownWord(word, pieces))
            seen.add(word)
    return gaps


def _load_blip(model_dir: Path, desc: dict) -> BlipTextEncoder:
    if "name" not in desc:
        raise ModelError(f"{model_dir}: query_encoder of type 'blip' needs a 'name'")
    name = Path(desc["name"]).expanduser()
    # a relative name that exists inside the model directory is shipped with the model
    if not name.is_absolute() and (model_dir / name).exists():
        name = model_dir / name
    elif not name.exists():
        name = desc["name"]  # a hub name
    return BlipTextEncoder(name, max_length=int(desc.get("max_length", 35)))


register_query_encoder("blip", _load_blip)

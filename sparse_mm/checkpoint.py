"""The model directory: `model.safetensors`, `config.json`, `vocab.txt` (+ query encoder files).

Loading needs no flags: everything needed is in `config.json`. Saving is atomic: files are
written into a temporary folder beside the target, which then replaces it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sparse_mm.errors import DataError, ModelError
from sparse_mm.model import HeadsConfig, SparseDenseHeads
from sparse_mm.vocab import Vocabulary

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


@dataclass(frozen=True)
class ModelConfig:
    heads: HeadsConfig
    w1: float
    w2: float
    vocab_file: str = "vocab.txt"
    query_encoder: dict = field(default_factory=lambda: {"type": "none"})
    provenance: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict, source: str = CONFIG) -> ModelConfig:
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelError(f"{source}: format_version {version!r} is not {FORMAT_VERSION}")
        missing = [k for k in ("heads", "w1", "w2") if k not in raw]
        if missing:
            raise ModelError(f"{source}: missing keys {', '.join(missing)}")
        try:
            heads = HeadsConfig(**raw["heads"])
        except TypeError as exc:
            raise ModelError(f"{source}: bad 'heads' section: {exc}") from exc
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in raw.items() if k in known}, "heads": heads})


@dataclass
class LoadedModel:
    heads: SparseDenseHeads
    vocab: Vocabulary
    config: ModelConfig
    path: Path


def save_model(
    model_dir: Path,
    heads: SparseDenseHeads,
    vocab: Vocabulary,
    config: ModelConfig,
    *,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write the model directory atomically (replacing an existing one)."""
    from safetensors.torch import save_file

    if len(vocab) != config.heads.vocab_size:
        raise ModelError(
            f"vocabulary has {len(vocab)} tokens, config says {config.heads.vocab_size}"
        )
    model_dir = Path(model_dir)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}-", dir=model_dir.parent))
    try:
        state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in heads.state_dict().items()}
        save_file(state, str(staging / WEIGHTS))
        vocab.save(staging / config.vocab_file)
        (staging / CONFIG).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        if model_dir.exists():
            backup = model_dir.with_name(f".{model_dir.name}-old")
            shutil.rmtree(backup, ignore_errors=True)
            model_dir.rename(backup)
            staging.rename(model_dir)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(model_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model_dir


def load_model(model_dir: Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model directory; every inconsistency is a one-line ModelError naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"model directory {model_dir} does not exist")
    config_path = model_dir / CONFIG
    try:
        raw = json.loads(config_path.read_text())
    except FileNotFoundError as exc:
        raise ModelError(f"{config_path} is missing: not a sparse-mm model directory") from exc
    except json.JSONDecodeError as exc:
        raise ModelError(f"{config_path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    config = ModelConfig.from_dict(raw, str(config_path))
    vocab_path = model_dir / config.vocab_file
    try:
        vocab = Vocabulary.from_file(vocab_path)
    except DataError as exc:
        raise ModelError(str(exc)) from exc
    if len(vocab) != config.heads.vocab_size:
        raise ModelError(
            f"{vocab_path} has {len(vocab)} tokens but {config_path} says {config.heads.vocab_size}"
        )
    weights_path = model_dir / WEIGHTS
    try:
        state = load_file(str(weights_path))
    except FileNotFoundError as exc:
        raise ModelError(f"{weights_path} is missing") from exc
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{weights_path} is not a readable safetensors file: {exc}") from exc
    heads = SparseDenseHeads(config.heads, seed=None)
    expected = heads.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ModelError(f"{weights_path}: tensors missing: {', '.join(missing)}")
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ModelError(
                f"{weights_path}: {name} has shape {tuple(state[name].shape)}, "
                f"config.json implies {tuple(tensor.shape)}"
            )
    heads.load_state_dict({k: v.float() for k, v in state.items() if k in expected})
    heads.to(device).eval()
    return LoadedModel(heads, vocab, config, model_dir)

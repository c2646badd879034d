"""The model directory: `model.safetensors`, `config.json`, `vocab.txt` (+ query-encoder files,
and `serving.json` when `sparse-mm tune-weights` chose serving weights apart from the training
w1, w2).

Loading needs no flags: everything is described by `config.json`. Saving is atomic: the files
are written and synced in a temporary folder beside the target, which then takes its place in
one step (Linux `renameat2(RENAME_EXCHANGE)` swaps the two folders), so at every moment the
target is either the previous complete model or the new complete one. Where that call does not
exist (another OS, a file system without it) saving is crash-safe with a backup: the previous
model is renamed to `.NAME-old` and the new one renamed into place, so for the instant between
the two renames there is no NAME, and a crash there leaves the previous model complete at
`.NAME-old`.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sparse_mm.atomic import sync_dir
from sparse_mm.errors import DataError, ModelError
from sparse_mm.model import HeadsConfig, SparseDenseHeads
from sparse_mm.vocab import Vocabulary

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
SERVING = "serving.json"
_REQUIRED = ("heads", "w1", "w2", "format_version")


@dataclass(frozen=True)
class ModelConfig:
    """What `config.json` holds. `query_encoder` describes how to embed query text, e.g.
    {"type": "synthetic", "file": "query_encoder.safetensors"}, {"type": "blip", "name": ...}
    or {"type": "none"}; `provenance` is free-form JSON (method, training config, data,
    metrics, git commit...)."""

    heads: HeadsConfig
    w1: float
    w2: float
    vocab_file: str = "vocab.txt"
    query_encoder: dict = field(default_factory=lambda: {"type": "none"})
    provenance: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        for name in ("w1", "w2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ModelError(f"model config: {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ModelError(f"model config: {name} must be finite, got {value!r}")
        if not isinstance(self.query_encoder, dict) or not isinstance(self.provenance, dict):
            raise ModelError("model config: query_encoder and provenance must be JSON objects")
        name = self.vocab_file
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise ModelError(f"model config: vocab_file must be a plain file name, got {name!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: object, source: str = CONFIG) -> ModelConfig:
        """Parse `config.json`'s object; unknown versions or keys and missing keys are errors."""
        if not isinstance(raw, dict):
            raise ModelError(f"{source}: expected a JSON object, got {type(raw).__name__}")
        version = raw.get("format_version")
        if "format_version" in raw and version != FORMAT_VERSION:
            raise ModelError(
                f"{source}: format_version {version!r} is not supported (this sparse-mm reads "
                f"version {FORMAT_VERSION}; upgrade sparse-mm)"
            )
        missing = [k for k in _REQUIRED if k not in raw]
        unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
        if missing or unknown:
            parts = [f"missing keys: {', '.join(missing)}"] if missing else []
            parts += [f"unknown keys: {', '.join(unknown)}"] if unknown else []
            raise ModelError(f"{source}: {'; '.join(parts)}")
        if not isinstance(raw["heads"], dict):
            raise ModelError(f"{source}: 'heads' must be a JSON object")
        try:
            heads = HeadsConfig(**raw["heads"])
        except TypeError as exc:  # unknown or missing argument names
            raise ModelError(f"{source}: bad 'heads' section: {exc}") from None
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from None
        try:
            return cls(**{**raw, "heads": heads})
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from None


@dataclass
class LoadedModel:
    heads: SparseDenseHeads
    vocab: Vocabulary
    config: ModelConfig
    path: Path
    serving: dict | None = None  # serving.json: {"w1", "w2", how they were chosen}

    def serving_weights(self) -> tuple[float, float]:
        """(w1, w2) of the integrated score at serving time: tuned ones from serving.json when
        present, else the training weights of config.json."""
        if self.serving is not None:
            return float(self.serving["w1"]), float(self.serving["w2"])
        return self.config.w1, self.config.w2


def save_model(
    model_dir: str | Path,
    heads: SparseDenseHeads,
    vocab: Vocabulary,
    config: ModelConfig,
    *,
    dtype: torch.dtype = torch.float32,
    extras: Callable[[Path], None] | None = None,
) -> Path:
    """Write the model directory atomically, replacing an existing one (module doc).

    `dtype` is the on-disk precision (float16 for small bundled models; loading always gives
    float32). `extras(folder)`, when given, writes further files (a query encoder) into the
    staging folder so that they are part of the same atomic replacement."""
    from safetensors.torch import save_file

    if len(vocab) != config.heads.vocab_size:
        raise ModelError(
            f"vocabulary has {len(vocab)} tokens, config says {config.heads.vocab_size}"
        )
    if heads.config != config.heads:
        raise ModelError(f"heads are {heads.config}, config says {config.heads}")
    model_dir = Path(model_dir)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}-", dir=model_dir.parent))
    try:
        state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in heads.state_dict().items()}
        save_file(state, str(staging / WEIGHTS), metadata={"format": "pt"})
        vocab.save(staging / config.vocab_file)
        (staging / CONFIG).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        if extras is not None:
            extras(staging)
        _publish(staging)
        _replace_dir(staging, model_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # after a swap: the previous model
    return model_dir


def _replace_dir(staging: Path, model_dir: Path) -> None:
    """Put the complete folder `staging` at `model_dir`: one atomic swap when `model_dir`
    exists and the system can exchange two paths, else renames (module doc)."""
    if not model_dir.exists():
        staging.rename(model_dir)
    elif not exchange_paths(staging, model_dir):
        backup = model_dir.with_name(f".{model_dir.name}-old")
        shutil.rmtree(backup, ignore_errors=True)
        model_dir.rename(backup)
        staging.rename(model_dir)
        shutil.rmtree(backup, ignore_errors=True)
    sync_dir(model_dir.parent)


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2 with RENAME_EXCHANGE);
    False where the system or the file system cannot, an OSError for any other failure."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # a C library without it (glibc before 2.28)
        return False
    path, fd = ctypes.c_char_p, ctypes.c_int
    renameat2.argtypes = [fd, path, fd, path, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(b))


def load_model(model_dir: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model directory (float32, eval mode); each inconsistency is a one-line
    ModelError naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"model directory {model_dir} does not exist")
    config_path = model_dir / CONFIG
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{config_path} is missing: not a sparse-mm model directory") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{config_path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise ModelError(f"{config_path}: not UTF-8 text") from None
    config = ModelConfig.from_dict(raw, str(config_path))
    vocab_path = model_dir / config.vocab_file
    try:
        vocab = Vocabulary.from_file(vocab_path)
    except DataError as exc:
        raise ModelError(str(exc)) from None
    if len(vocab) != config.heads.vocab_size:
        raise ModelError(
            f"{vocab_path} has {len(vocab)} tokens but {config_path} says "
            f"vocab_size {config.heads.vocab_size}"
        )
    weights_path = model_dir / WEIGHTS
    try:
        state = load_file(str(weights_path))
    except FileNotFoundError:
        raise ModelError(f"{weights_path} is missing") from None
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{weights_path} is not a readable safetensors file: {exc}") from None
    with torch.device("meta"):  # no random init: every parameter is assigned below
        heads = SparseDenseHeads(config.heads, seed=None)
    expected = heads.state_dict()
    missing = sorted(set(expected) - set(state))
    unknown = sorted(set(state) - set(expected))
    if missing or unknown:
        raise ModelError(
            f"{weights_path}: tensors missing: {', '.join(missing) or 'none'}; "
            f"unexpected: {', '.join(unknown) or 'none'}"
        )
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ModelError(
                f"{weights_path}: {name} has shape {tuple(state[name].shape)}, "
                f"{CONFIG} implies {tuple(tensor.shape)}"
            )
        if not state[name].is_floating_point():
            raise ModelError(f"{weights_path}: {name} has dtype {state[name].dtype}")
    heads.load_state_dict({k: v.to(device, torch.float32) for k, v in state.items()}, assign=True)
    heads.eval()
    return LoadedModel(heads, vocab, config, model_dir, _read_serving(model_dir / SERVING))


def write_serving(model_dir: str | Path, w1: float, w2: float, record: dict) -> Path:
    """Store serving weights (and how they were chosen) beside the model, atomically."""
    for name, value in (("w1", w1), ("w2", w2)):
        if not (math.isfinite(value) and value > 0):
            raise ModelError(f"serving weight {name} must be finite and > 0, got {value!r}")
    path = Path(model_dir) / SERVING
    tmp = path.with_name(f".{SERVING}.tmp")
    tmp.write_text(json.dumps({"w1": w1, "w2": w2, **record}, indent=2) + "\n")
    tmp.replace(path)
    return path


def _read_serving(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    ok = isinstance(raw, dict) and all(
        isinstance(raw.get(k), int | float)
        and not isinstance(raw.get(k), bool)
        and math.isfinite(raw[k])
        and raw[k] > 0
        for k in ("w1", "w2")
    )
    if not ok:
        raise ModelError(f"{path}: expected an object with positive numbers 'w1' and 'w2'")
    return raw


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _publish(folder: Path) -> None:
    """Give the staging folder the permissions of a normally created one (mkdtemp makes it
    private, some writers make files private) and sync everything in it to disk."""
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(0o666 & ~umask)
            sync_dir(path)
    folder.chmod(0o777 & ~umask)
    sync_dir(folder)

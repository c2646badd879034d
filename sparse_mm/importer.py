"""Import a checkpoint of the reference implementation (PyTorch Lightning `.ckpt`).

The released configs all use the weight-tied projection path, whose checkpoint holds:

    state_dict          "temp" (the learnable temperature), "loss_fn.temp" (the same parameter:
                        the LightningModule hands `self.temp` to its loss module, which keeps
                        it as an attribute, so PyTorch registers it twice) and, prefixed
                        "model.":
                        text_proj.{weight,bias}, vision_proj.{weight,bias}      (D, H), (D,)
                        single_proj.{weight,bias}                              (Hs, D), (Hs,)
                        single_vocab_layer_norm.{weight,bias}                  (Hs,)
                        single_vocab_projector.weight (no bias)                (V, Hs)
    hyper_parameters    the run's config (w1, w2, lam1, lam2, ...), pickled by Lightning 2.x
                        as lightning_fabric.utilities.data.AttributeDict (a dict subclass)
    q_reg_t, q_reg_weight_t, d_reg_t, d_reg_weight_t, epoch, global_step, optimizer_states...

These are exactly sparse-mm's heads (sparse_mm.model) under other names. The file is read with
`torch.load(weights_only=True)`: only tensors and plain containers, numbers and strings, plus
that one AttributeDict class, read as a plain dict; nothing pickled is executed and Lightning
need not be installed. Any other class, or another layout (the `baseline` DistilBERT head with
a bias; variants that carry backbone weights), is refused in one line naming what differs.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from sparse_mm.checkpoint import ModelConfig, save_model, sha256_file
from sparse_mm.errors import DataError, ModelError
from sparse_mm.model import HeadsConfig, SparseDenseHeads
from sparse_mm.vocab import Vocabulary

ATTRIBUTE_DICT = "lightning_fabric.utilities.data.AttributeDict"
PREFIX = "model."
# reference parameter name (after "model.") -> sparse-mm parameter name
NAMES = {
    "text_proj.weight": "text_proj.weight",
    "text_proj.bias": "text_proj.bias",
    "vision_proj.weight": "vision_proj.weight",
    "vision_proj.bias": "vision_proj.bias",
    "single_proj.weight": "sparse_head.fc.weight",
    "single_proj.bias": "sparse_head.fc.bias",
    "single_vocab_layer_norm.weight": "sparse_head.norm.weight",
    "single_vocab_layer_norm.bias": "sparse_head.norm.bias",
    "single_vocab_projector.weight": "sparse_head.vocab.weight",
}
TEMP = "temp"
TEMP_ALIASES = ("loss_fn.temp",)  # the same nn.Parameter, registered again by the loss module
REGULARISER_KEYS = ("q_reg_t", "q_reg_weight_t", "d_reg_t", "d_reg_weight_t")


@dataclass
class ImportResult:
    out: Path
    heads: HeadsConfig
    w1: float
    w2: float
    sha256: str
    epoch: int | None


def read_checkpoint(path: Path) -> dict:
    """torch.load without running pickled code; Lightning's AttributeDict becomes a dict."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint {path} does not exist")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04" and not magic.startswith(b"\x80"):  # torch.save's zip, a pickle
        raise ModelError(f"{path}: not a readable PyTorch checkpoint (no zip, no pickle)")
    try:
        with torch.serialization.safe_globals([(dict, ATTRIBUTE_DICT)]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "WeightsUnpickler error" in str(exc):
            raise ModelError(f"{path}: refused: {_refusal(str(exc))}") from None
        raise ModelError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
    except Exception as exc:  # torch's legacy reader raises KeyError, ValueError... on junk
        first = (str(exc).strip().splitlines() or [""])[0] or type(exc).__name__
        raise ModelError(f"{path}: not a readable PyTorch checkpoint ({first})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ModelError(f"{path}: not a Lightning checkpoint (no 'state_dict' mapping)")
    return ckpt


def _refusal(message: str) -> str:
    """One line out of torch's weights-only error: which global it met."""
    marker = "WeightsUnpickler error:"
    detail = message.split(marker, 1)[1] if marker in message else message
    detail = " ".join(detail.split()).split(" was not an allowed global")[0].split(". ")[0]
    return (
        f"{detail.strip()}; only tensors, plain containers, numbers, strings and Lightning's "
        "AttributeDict may appear (nothing pickled is executed)"
    )


def map_state(state: dict, source: str) -> tuple[dict[str, torch.Tensor], float]:
    """The reference state dict -> (sparse-mm heads state dict, temperature)."""
    keys = set(state)
    inner = {k[len(PREFIX) :] for k in keys if k.startswith(PREFIX)}
    problems = []
    biased = sorted(k for k in inner if k.endswith("vocab_projector.bias"))
    if biased:
        problems.append(
            f"its vocabulary projector has a bias ({PREFIX}{biased[0]}: the reference's "
            "baseline DistilBERT head)"
        )
    extra = sorted(inner - set(NAMES) - set(biased))
    if extra:
        problems.append(
            f"it carries {len(extra)} weights besides the heads (e.g. {PREFIX}{extra[0]}: "
            "backbone weights of a non-projection variant)"
        )
    missing = [PREFIX + k for k in NAMES if k not in inner]
    missing += [TEMP] if TEMP not in keys else []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    stray = sorted(keys - {TEMP, *TEMP_ALIASES} - {PREFIX + k for k in inner})
    if stray:
        problems.append(f"unexpected entries {', '.join(stray[:3])}")
    if problems:
        raise ModelError(
            f"{source}: not the reference's weight-tied projection layout: {'; '.join(problems)}"
        )
    mapped = {}
    for ref, ours in NAMES.items():
        tensor = state[PREFIX + ref]
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise ModelError(f"{source}: {PREFIX}{ref} is not a floating-point tensor")
        if not torch.isfinite(tensor).all():
            raise ModelError(f"{source}: {PREFIX}{ref} has NaN or infinite values")
        mapped[ours] = tensor.detach().float()
    return mapped, _temperature(state, source)


def _temperature(state: dict, source: str) -> float:
    """`temp`, a finite scalar; `loss_fn.temp`, when present, must be the same value (it is
    the same parameter in the reference's module; a different one is not that module)."""
    temp = state[TEMP]
    if not isinstance(temp, torch.Tensor) or temp.numel() != 1 or not temp.is_floating_point():
        raise ModelError(f"{source}: {TEMP} is not a floating-point scalar tensor")
    value = float(temp)
    if not math.isfinite(value):
        raise ModelError(f"{source}: {TEMP} is {value}, expected a finite temperature")
    for alias in TEMP_ALIASES:
        if alias not in state:
            continue
        other = state[alias]
        scalar = isinstance(other, torch.Tensor) and other.numel() == 1
        shown = float(other) if scalar else other
        if shown != value:
            raise ModelError(
                f"{source}: {alias} is {shown!r} but {TEMP} is {value!r}: in the reference's "
                "module they are one parameter, so this is not its checkpoint"
            )
    return value


def heads_config(mapped: dict[str, torch.Tensor], vocab_size: int, source: str) -> HeadsConfig:
    """Check every shape against the others and against the vocabulary; the heads' sizes."""
    dense_dim, in_dim = _shape(mapped, "text_proj.weight", source, 2)
    hidden_dim = _shape(mapped, "sparse_head.fc.weight", source, 2)[0]
    expected = {
        "text_proj.weight": (dense_dim, in_dim),
        "text_proj.bias": (dense_dim,),
        "vision_proj.weight": (dense_dim, in_dim),
        "vision_proj.bias": (dense_dim,),
        "sparse_head.fc.weight": (hidden_dim, dense_dim),
        "sparse_head.fc.bias": (hidden_dim,),
        "sparse_head.norm.weight": (hidden_dim,),
        "sparse_head.norm.bias": (hidden_dim,),
        "sparse_head.vocab.weight": (mapped["sparse_head.vocab.weight"].shape[0], hidden_dim),
    }
    reference = {ours: ref for ref, ours in NAMES.items()}
    for name, shape in expected.items():
        if tuple(mapped[name].shape) != shape:
            raise ModelError(
                f"{source}: {PREFIX}{reference[name]} has shape {tuple(mapped[name].shape)}, "
                f"the other tensors imply {shape}"
            )
    rows = mapped["sparse_head.vocab.weight"].shape[0]
    if rows != vocab_size:
        raise ModelError(
            f"{source}: the vocabulary projector has {rows} rows but the vocabulary file has "
            f"{vocab_size} lines (BLIP's vocabulary is BERT's 30,522 tokens plus its added "
            "tokens, one per line, in id order)"
        )
    return HeadsConfig(vocab_size=rows, in_dim=in_dim, dense_dim=dense_dim, hidden_dim=hidden_dim)


def _shape(mapped: dict, name: str, source: str, ndim: int) -> tuple[int, ...]:
    shape = tuple(mapped[name].shape)
    if len(shape) != ndim:
        raise ModelError(f"{source}: {name} has shape {shape}, expected {ndim} dimensions")
    return shape


def training_weights(hparams: object, source: str) -> tuple[float, float]:
    if not isinstance(hparams, dict):
        raise ModelError(f"{source}: no 'hyper_parameters' mapping (w1 and w2 come from it)")
    values = []
    for name in ("w1", "w2"):
        value = hparams.get(name)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not (ok and math.isfinite(value) and value > 0):
            raise ModelError(f"{source}: hyper-parameter {name} is {value!r}, expected > 0")
        values.append(float(value))
    return values[0], values[1]


def import_checkpoint(
    ckpt_path: Path, vocab_path: Path, out: Path, *, query_encoder: str | None = None
) -> ImportResult:
    """Convert a reference checkpoint into a sparse-mm model directory at `out`."""
    ckpt_path = Path(ckpt_path)
    source = str(ckpt_path)
    ckpt = read_checkpoint(ckpt_path)
    mapped, temp = map_state(ckpt["state_dict"], source)
    hparams = ckpt.get("hyper_parameters")
    w1, w2 = training_weights(hparams, source)
    vocab = Vocabulary.from_file(vocab_path)
    config_heads = heads_config(mapped, len(vocab), source)
    heads = SparseDenseHeads(config_heads, seed=0)
    heads.load_state_dict(mapped)
    digest = sha256_file(ckpt_path)
    provenance = {
        "method": "joint (imported reference checkpoint)",
        "imported_from": {
            "file": ckpt_path.name,
            "sha256": digest,
            "hyper_parameters": _jsonable(hparams),
            "epoch": _jsonable(ckpt.get("epoch")),
            "global_step": _jsonable(ckpt.get("global_step")),
            "temp": temp,
            "regularisers": {k: _jsonable(ckpt[k]) for k in REGULARISER_KEYS if k in ckpt},
            "lightning_version": _jsonable(ckpt.get("pytorch-lightning_version")),
        },
    }
    config = ModelConfig(
        heads=config_heads,
        w1=w1,
        w2=w2,
        query_encoder=blip_query_encoder(query_encoder),
        provenance=provenance,
    )
    save_model(out, heads, vocab, config)
    epoch = ckpt.get("epoch")
    return ImportResult(
        Path(out), config_heads, w1, w2, digest, epoch if isinstance(epoch, int) else None
    )


def blip_query_encoder(name: str | None) -> dict:
    """The query_encoder description for a BLIP checkpoint directory (absolute) or hub name."""
    if name is None:
        return {"type": "none"}
    path = Path(name).expanduser()
    return {
        "type": "blip",
        "name": str(path.resolve()) if path.exists() else str(name),
        "max_length": 35,
    }


def _jsonable(value):
    """Hyper-parameters and counters as JSON: tensors to lists, unknown objects to strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)

"""Training configuration: a frozen dataclass that reads the reference implementation's JSON.

The released configs use the keys `train_batch_size, temp, use_amp, epochs, q_reg, d_reg, lr,
patience, w1, w2, lam1, lam2, backbone_model, dataset, seed` (and many that training ignores).
`load_config` reads such a file as it is: known keys are mapped and validated, unknown keys are
returned so the caller can name them once. sparse-mm's own fields may appear under their own
names too, so one file can carry a whole sparse-mm run.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

from sparse_mm.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
PRECISIONS = ("fp16", "bf16", "fp32")
SELECTIONS = ("sparse-r1", "sparse-r1-within-budget", "sparse-r1-after-warmup")

# reference key -> TrainConfig field
REFERENCE_KEYS = {
    "train_batch_size": "batch_size",
    "temp": "temp",
    "use_amp": "use_amp",
    "epochs": "epochs",
    "q_reg": "eta_text",
    "d_reg": "eta_image",
    "lr": "lr",
    "patience": "patience",
    "w1": "w1",
    "w2": "w2",
    "lam1": "lam1",
    "lam2": "lam2",
    "backbone_model": "backbone",
    "dataset": "dataset",
    "seed": "seed",
}


@dataclass(frozen=True)
class TrainConfig:
    method: str = "joint"  # "joint" (the paper) or "d2s" (the baseline)
    batch_size: int = 256
    temp: float = 0.07  # initial temperature tau of the dense logits (learnable)
    use_amp: bool = True  # mixed precision on CUDA (the default precision there: fp16)
    epochs: int = 200
    eta_text: float = 5e-4  # final L1 weight on caption term weights (reference: q_reg)
    eta_image: float = 3e-5  # final L1 weight on image term weights (reference: d_reg)
    lr: float = 5e-5
    patience: int = 20  # epochs without a better validation sparse R@1; 0 disables
    w1: float = 0.1
    w2: float = 0.1
    lam1: float = 0.9
    lam2: float = 0.3
    backbone: str | None = None
    dataset: str | None = None
    seed: int = 42
    weight_decay: float = 0.05
    adam_eps: float = 1e-8
    warmup_ratio: float = 0.2  # of all optimiser steps, for the learning rate and for eta
    grad_clip: float = 1.0
    tau_min: float = 0.001
    tau_max: float = 0.5
    self_distill: bool = True
    detach_teacher: bool = False  # released code: False (gradients flow through the teacher)
    released_transpose: bool = False  # True: the released code's second-direction teacher
    freeze_dense: bool = False  # ablation: keep the dense projections at their initial weights
    # the heads' sizes; None: taken from the data (the initial projection's rows, the word
    # embeddings' columns), else the reference's 256 and the backbone's width
    dense_dim: int | None = None
    hidden_dim: int | None = None
    # fp16 (autocast + gradient scaler, as the reference), bf16 (autocast) or fp32; None: fp16
    # on CUDA when use_amp, else fp32. Scores and losses are always computed in float32.
    precision: str | None = None
    include_restval: bool = False  # reference: train on split 'train' only
    # model selection: the best validation sparse R@1 among the eligible epochs. "sparse-r1"
    # (released rule: every epoch), "sparse-r1-within-budget" (epochs whose validation FLOPs /
    # terms per query are within max_flops / max_query_terms), "sparse-r1-after-warmup"
    # (epochs that end after the learning-rate and L1 warm-up)
    select: str = "sparse-r1"
    max_flops: float | None = None
    max_query_terms: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), f.type)
        _require(self.method in ("joint", "d2s"), "method", self.method, "'joint' or 'd2s'")
        _require(self.batch_size >= 2, "batch_size", self.batch_size, ">= 2")
        _require(self.epochs >= 1, "epochs", self.epochs, ">= 1")
        _require(self.patience >= 0, "patience", self.patience, ">= 0")
        _require(
            0 < self.tau_min <= self.temp <= self.tau_max,
            "temp",
            self.temp,
            f"within [{self.tau_min}, {self.tau_max}]",
        )
        _require(self.lr > 0, "lr", self.lr, "> 0")
        for name in ("eta_text", "eta_image", "lam1", "lam2", "weight_decay", "grad_clip"):
            _require(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")
        for name in ("w1", "w2"):
            _require(getattr(self, name) > 0, name, getattr(self, name), "> 0")
        _require(
            self.precision in (None, *PRECISIONS),
            "precision",
            self.precision,
            f"one of {', '.join(PRECISIONS)}",
        )
        _require(
            self.select in SELECTIONS, "select", self.select, f"one of {', '.join(SELECTIONS)}"
        )
        budget = (self.max_flops, self.max_query_terms)
        if self.select == "sparse-r1-within-budget":
            _require(
                any(b is not None for b in budget),
                "max_flops/max_query_terms",
                budget,
                "set (at least one) with select sparse-r1-within-budget",
            )
        else:
            _require(
                all(b is None for b in budget),
                "max_flops/max_query_terms",
                budget,
                "unset unless select is sparse-r1-within-budget",
            )
        for name in ("max_flops", "max_query_terms"):
            value = getattr(self, name)
            _require(value is None or value > 0, name, value, "> 0")
        _require(0 <= self.warmup_ratio <= 1, "warmup_ratio", self.warmup_ratio, "within [0, 1]")
        for name in ("dense_dim", "hidden_dim"):
            value = getattr(self, name)
            _require(value is None or value >= 1, name, value, ">= 1")

    def with_overrides(self, **overrides) -> TrainConfig:
        """A copy with the non-None `overrides` applied (command-line flags win)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: Path) -> tuple[TrainConfig, list[str]]:
    """Read a reference-style JSON config; return it and the keys it ignored."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    own = {f.name for f in fields(TrainConfig)}
    values, ignored = {}, []
    for key, value in raw.items():
        name = REFERENCE_KEYS.get(key, key if key in own else None)
        if name is None:
            ignored.append(key)
        else:
            values[name] = value
    try:
        return TrainConfig(**values), sorted(ignored)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _check_type(name: str, value, annotation: str) -> None:
    optional = "None" in annotation
    if value is None:
        if not optional:
            raise ConfigError(f"{name} must not be null")
        return
    base = annotation.replace(" | None", "")
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
    }[base]
    if not ok:
        raise ConfigError(f"{name} must be {base}, got {value!r}")


def _require(ok: bool, name: str, value, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {expected}, got {value!r}")

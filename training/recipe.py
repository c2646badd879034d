"""The recipe's switches, decided once from the config: precision, which epochs may become
the model (selection under a sparsity budget or after the warm-up), and the record of the
settings that every model and evaluation carries (METHOD.md, "Training set-up")."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from training.config import TrainConfig


def resolve_precision(config: TrainConfig, device: torch.device) -> str:
    """The precision a run uses: the config's, else fp16 on CUDA when use_amp, else fp32."""
    if config.precision is not None:
        return config.precision
    return "fp16" if device.type == "cuda" and config.use_amp else "fp32"


def epoch_eligible(config: TrainConfig, sparsity: dict, steps_done: int, warmup_steps: int):
    """Whether an epoch (validation `sparsity`, optimiser steps done by its end) may become
    the model under `config.select`."""
    if config.select == "sparse-r1-within-budget":
        flops, terms = config.max_flops, config.max_query_terms
        return (flops is None or sparsity["flops"] <= flops) and (
            terms is None or sparsity["query_terms"] <= terms
        )
    if config.select == "sparse-r1-after-warmup":
        return steps_done >= warmup_steps
    return True


def selection_budget(config: TrainConfig, warmup_steps: int) -> str:
    """The selection rule's condition, in words."""
    parts = [f"FLOPs <= {config.max_flops}"] if config.max_flops is not None else []
    if config.max_query_terms is not None:
        parts.append(f"terms per query <= {config.max_query_terms}")
    if config.select == "sparse-r1-after-warmup":
        parts.append(f"after step {warmup_steps}")
    return ", ".join(parts) or "every epoch"


def teacher_variant(config: TrainConfig) -> str:
    if config.method == "d2s":
        return "frozen dense (D2S)"
    if not config.self_distill:
        return "none (contrastive only)"
    if config.detach_teacher:
        return "detached"
    return "released-transpose" if config.released_transpose else "transposed"


def run_switches(
    config: TrainConfig,
    *,
    precision: str,
    device: torch.device,
    train_splits: Sequence[str],
    steps: tuple[int, int, int],
) -> dict:
    """What a result depends on; `steps` is (warm-up, total, per epoch)."""
    warmup, total, per_epoch = steps
    return {
        "method": config.method,
        "teacher": teacher_variant(config),
        "precision": precision,
        "device": str(device),
        "train_splits": list(train_splits),
        "schedule": {
            "lr": "linear warm-up (factor step / warmup) then linear decay to 0",
            "eta": "quadratic warm-up",
            "warmup_steps": warmup,
            "total_steps": total,
            "steps_per_epoch": per_epoch,
        },
        "selection": {"rule": config.select, "budget": selection_budget(config, warmup)},
    }

"""Training the heads on precomputed embeddings (METHOD.md, "Training set-up").

Embeddings stay on the device; a batch is a gather by index from them, so the hot loop does no
per-item Python work. Every epoch is validated; the best epoch (validation sparse R@1) is the
model directory `out`, the last epoch plus the optimiser state lives in `out/last` so a run can
resume, and `out/train_log.jsonl` has one line of metrics per epoch.

The pieces a run is built from live beside it: the heads' sizes and initial weights
(`training.heads_setup`), the loss (`training.losses.build_loss`), what a run writes and reads
back (`training.run_files`), and what it says about each epoch (`training.epoch_log`).
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sparse_mm.checkpoint import ModelConfig, load_model
from sparse_mm.errors import ConfigError
from sparse_mm.vocab import Vocabulary
from training.config import TrainConfig
from training.epoch_log import epoch_line, epoch_record
from training.evaluate import evaluate_embeddings
from training.heads_setup import build_heads, freeze_dense, resolve_sizes
from training.losses import build_loss
from training.recipe import epoch_eligible, resolve_precision, run_switches, selection_budget
from training.run_files import (
    STATE_FILE,
    load_state,
    save_model_files,
    save_state,
    write_query_encoder,
)
from training.schedule import QuadraticWarmup, linear_warmup_decay

__all__ = ["STATE_FILE", "TrainResult", "Trainer", "remove_run", "write_query_encoder"]


@dataclass
class TrainResult:
    out: Path
    best_epoch: int
    epochs_run: int
    best_metrics: dict
    seconds: float


class Trainer:
    """One training run; construct, then `fit()`. Decisions are made here, once."""

    def __init__(
        self,
        dataset,
        config: TrainConfig,
        out: Path,
        *,
        device: str = "cpu",
        progress: bool = True,
        log=print,
        warn=None,
    ) -> None:
        self.dataset, self.out = dataset, Path(out)
        self.device = torch.device(device)
        self.progress, self.log = progress, log
        self.warn = warn or (lambda message: print(message, file=sys.stderr))
        _check_dataset(dataset, config)
        _seed_everything(config.seed)
        self.vocab = Vocabulary.from_file(dataset.vocab_path)
        self.config, note = resolve_sizes(config, dataset)
        if note:
            self.warn(note)
        self.heads = build_heads(dataset, self.config, len(self.vocab), self.warn)
        self.heads.to(self.device)
        freeze_dense(self.heads, self.config)
        self.temp = torch.nn.Parameter(torch.tensor(config.temp, device=self.device))
        self.temp.requires_grad_(config.method == "joint")
        self.loss = build_loss(config)
        self._gather_pairs()
        self._build_optimizer()
        self.precision = resolve_precision(config, self.device)
        self.autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        # fp16 needs loss scaling (as the reference's 16-bit mixed precision); bf16 does not
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.epoch, self.best_r1, self.best_epoch, self.bad_epochs = 0, -1.0, 0, 0
        self.best_metrics: dict = {}
        self.last_metrics: dict = {}

    def _gather_pairs(self) -> None:
        """Both embedding tables on the device, and the training pairs as row indices into
        them (a batch is a gather, no per-item Python work)."""
        train = self.dataset.splits["train"]
        self.text_table = self.dataset.texts.emb.to(self.device)
        self.image_table = self.dataset.images.emb.to(self.device)
        self.pair_text = train.text_rows.to(self.device)
        self.pair_image = train.image_rows[train.text_to_image].to(self.device)

    def _build_optimizer(self) -> None:
        """AdamW over the trainable weights, the learning-rate schedule and the L1 warm-up."""
        config = self.config
        self.steps_per_epoch = max(1, len(self.pair_text) // config.batch_size)
        total = self.steps_per_epoch * config.epochs
        warmup = int(config.warmup_ratio * total)
        self.total_steps, self.warmup_steps = total, warmup
        params = [p for p in [*self.heads.parameters(), self.temp] if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params,
            lr=config.lr,
            weight_decay=config.weight_decay,
            eps=config.adam_eps,
            fused=True,  # one kernel per tensor: ~4x faster steps on the 23M-weight vocabulary
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, linear_warmup_decay(warmup, total)
        )
        self.eta_text = QuadraticWarmup(config.eta_text, warmup)
        self.eta_image = QuadraticWarmup(config.eta_image, warmup)

    @property
    def amp(self) -> bool:
        """Whether the heads run under autocast (fp16 or bf16); see `precision`."""
        return self.autocast_dtype is not None

    # ------------------------------------------------------------------ loop
    def fit(self, *, resume: bool = False) -> TrainResult:
        began = time.monotonic()
        if resume:
            self._resume()
        self.out.mkdir(parents=True, exist_ok=True)
        while self.epoch < self.config.epochs:
            parts = self._train_epoch()
            metrics = self.validate()
            self.epoch += 1
            r1 = metrics["sparse"]["R@1"]
            eligible = self.eligible(metrics)
            improved = eligible and r1 > self.best_r1
            if improved:
                self.best_r1, self.best_epoch, self.bad_epochs = r1, self.epoch, 0
                self.best_metrics = metrics
                self._save(self.out, metrics)
            elif self.best_epoch:  # patience counts from the first eligible epoch
                self.bad_epochs += 1
            self._save_last(metrics)
            self._log_epoch(parts, metrics, eligible=eligible, improved=improved)
            if self.config.patience and self.bad_epochs >= self.config.patience:
                self.log(
                    f"early stop: no better validation sparse R@1 for {self.bad_epochs} epochs"
                )
                break
        if not self.best_epoch:
            budget = selection_budget(self.config, self.warmup_steps)
            self.warn(
                f"warning: no epoch met the selection rule {self.config.select} ({budget}); "
                f"{self.out} holds the last epoch"
            )
            self.best_metrics = self.last_metrics
            self._save(self.out, self.last_metrics, selected=False)
        return TrainResult(
            self.out, self.best_epoch, self.epoch, self.best_metrics, time.monotonic() - began
        )

    def _log_epoch(self, parts: dict, metrics: dict, *, eligible: bool, improved: bool) -> None:
        """One line in out/train_log.jsonl and one line of progress for the epoch just run."""
        state = {"tau": self.temp.item(), "lr": self.scheduler.get_last_lr()[0]}
        record = epoch_record(self.epoch, parts, metrics, state, eligible, improved)
        with (self.out / "train_log.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")
        line = epoch_line(self.epoch, parts, metrics, improved)
        self.log(line + ("" if eligible else f" (not eligible: {self.config.select})"))

    def eligible(self, metrics: dict) -> bool:
        """Whether the epoch just validated (self.epoch, 1-based) may become the model."""
        steps_done = self.epoch * self.steps_per_epoch
        return epoch_eligible(self.config, metrics["sparsity"], steps_done, self.warmup_steps)

    def switches(self) -> dict:
        """The settings a result depends on, recorded with every model and evaluation."""
        return run_switches(
            self.config,
            precision=self.precision,
            device=self.device,
            train_splits=self.dataset.train_splits,
            steps=(self.warmup_steps, self.total_steps, self.steps_per_epoch),
        )

    def _train_epoch(self) -> dict[str, float]:
        from tqdm import tqdm

        self.heads.train()
        g = torch.Generator(device="cpu").manual_seed(self.config.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.pair_text), generator=g).to(self.device)
        sums: dict[str, float] = {}
        bar = tqdm(
            range(self.steps_per_epoch),
            desc=f"epoch {self.epoch + 1}",
            disable=None if self.progress else True,
            leave=False,
        )
        for step in bar:
            idx = order[step * self.config.batch_size : (step + 1) * self.config.batch_size]
            parts = self.train_step(self.pair_text[idx], self.pair_image[idx])
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            if step % 20 == 0:
                bar.set_postfix(
                    {
                        k: f"{v:.3g}"
                        for k, v in parts.items()
                        if k in ("loss", "kd", "contrastive", "l1_text", "l1_image")
                    }
                )
        return {k: v / self.steps_per_epoch for k, v in sums.items()}

    def train_step(self, text_rows: torch.Tensor, image_rows: torch.Tensor) -> dict[str, float]:
        x_text, x_image = self.text_table[text_rows], self.image_table[image_rows]
        # only the heads run under autocast; the similarity and loss math below runs on float32
        # tensors outside it (inside, the casts would be undone by the autocast of each op)
        with torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        ):
            d_text, d_image = self.heads.dense(x_text, "text"), self.heads.dense(x_image, "image")
            # the shared head runs once over both modalities: one larger product, and no sum of
            # two vocabulary-sized weight gradients in the backward pass
            z_text, z_image = self.heads.sparse(torch.cat([d_text, d_image])).split(
                [len(d_text), len(d_image)]
            )
        tau = self.temp.clamp(self.config.tau_min, self.config.tau_max)
        parts = self.loss(
            d_image.float(),
            d_text.float(),
            z_image.float(),
            z_text.float(),
            tau,
            self.eta_text.value,
            self.eta_image.value,
        )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(parts["loss"]).backward()
        self.scaler.unscale_(self.optimizer)  # clip the true gradients (no-op without scaling)
        if self.config.grad_clip:
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        self.scaler.step(self.optimizer)  # skipped when fp16 gradients overflowed
        self.scaler.update()
        self.scheduler.step()
        self.eta_text.step()
        self.eta_image.step()
        with torch.no_grad():
            self.temp.clamp_(self.config.tau_min, self.config.tau_max)
        return {k: float(v.detach()) for k, v in parts.items()}

    def validate(self, split: str = "val") -> dict:
        part = self.dataset.splits[split]
        return evaluate_embeddings(
            self.heads,
            self.text_table[part.text_rows.to(self.device)],
            self.image_table[part.image_rows.to(self.device)],
            part.text_to_image,
            w1=self.config.w1,
            w2=self.config.w2,
            device=self.device,
        )

    # ------------------------------------------------------------------ checkpoints
    def model_config(self, metrics: dict, *, selected: bool = True) -> ModelConfig:
        return ModelConfig(
            heads=self.heads.config,
            w1=self.config.w1,
            w2=self.config.w2,
            query_encoder={"type": "none"},
            provenance={
                "method": self.config.method,
                "train_config": self.config.to_dict(),
                "data": str(self.dataset.root),
                "backbone": self.dataset.backbone,
                "epoch": self.epoch,
                "val": metrics,
                "switches": {**self.switches(), "selected_by_rule": selected},
            },
        )

    def _save(self, target: Path, metrics: dict, *, selected: bool = True) -> None:
        """Write the model files into `target` (which may hold other files: last/, the log)."""
        config = self.model_config(metrics, selected=selected)
        save_model_files(target, self.heads, self.vocab, config, self.dataset.root)

    def _save_last(self, metrics: dict) -> None:
        self.last_metrics = metrics
        last = self.out / "last"
        last.mkdir(exist_ok=True)
        self._save(last, metrics)
        save_state(
            last,
            {
                "epoch": self.epoch,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "temp": self.temp.detach().cpu(),
                "eta_text": self.eta_text.state_dict(),
                "eta_image": self.eta_image.state_dict(),
                "scaler": self.scaler.state_dict(),
                "last_metrics": metrics,
                "best_r1": self.best_r1,
                "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs,
                "best_metrics": self.best_metrics,
                "config": self.config.to_dict(),
            },
        )

    def _resume(self) -> None:
        last = self.out / "last"
        state = load_state(last, self.device)
        if state["config"] != self.config.to_dict():
            raise ConfigError(f"{self.out} was trained with other settings; resume needs the same")
        self.heads.load_state_dict(load_model(last).heads.state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        with torch.no_grad():
            self.temp.copy_(state["temp"])
        self.eta_text.load_state_dict(state["eta_text"])
        self.eta_image.load_state_dict(state["eta_image"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.last_metrics = state.get("last_metrics", {})
        self.epoch, self.best_r1 = state["epoch"], state["best_r1"]
        self.best_epoch, self.bad_epochs = state["best_epoch"], state["bad_epochs"]
        self.best_metrics = state["best_metrics"]
        self.log(f"resuming {self.out} after epoch {self.epoch}")


def _check_dataset(dataset, config: TrainConfig) -> None:
    """Refuse, in one line, data that this run cannot train on."""
    if config.include_restval != getattr(dataset, "include_restval", False):
        raise ConfigError(
            f"include_restval is {config.include_restval} but the dataset was loaded with "
            f"{getattr(dataset, 'include_restval', False)}"
        )
    if "train" not in dataset.splits or "val" not in dataset.splits:
        raise ConfigError(f"{dataset.root}: training needs 'train' and 'val' splits")
    if dataset.vocab_path is None:
        raise ConfigError(
            f"{dataset.root}: no vocab.txt beside the embeddings; the sparse head needs the "
            "backbone's vocabulary (BERT's 30,522 WordPiece tokens for BLIP/ALBEF)"
        )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def remove_run(out: Path) -> None:
    """Delete a previous run's outputs (used by `train --overwrite`)."""
    if out.exists():
        shutil.rmtree(out)

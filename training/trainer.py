"""Training the heads on precomputed embeddings (METHOD.md, "Training set-up").

Embeddings stay on the device; a batch is a gather by index from them, so the hot loop does no
per-item Python work. Every epoch is validated; the best epoch (validation sparse R@1) is the
model directory `out`, the last epoch plus the optimiser state lives in `out/last` so a run can
resume, and `out/train_log.jsonl` has one line of metrics per epoch.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sparse_mm.checkpoint import SERVING, ModelConfig, load_model, save_model
from sparse_mm.errors import ConfigError
from sparse_mm.model import HeadsConfig, SparseDenseHeads
from sparse_mm.vocab import Vocabulary
from training.config import TrainConfig
from training.evaluate import evaluate_embeddings
from training.losses import D2SLoss, JointLoss, JointLossConfig
from training.recipe import epoch_eligible, resolve_precision, run_switches, selection_budget
from training.schedule import QuadraticWarmup, linear_warmup_decay

STATE_FILE = "trainer_state.pt"


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
        self.dataset, self.config, self.out = dataset, config, Path(out)
        self.device = torch.device(device)
        self.progress, self.log = progress, log
        self.warn = warn or (lambda message: print(message, file=sys.stderr))
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
        _seed_everything(config.seed)
        self.vocab = Vocabulary.from_file(dataset.vocab_path)
        heads_cfg = HeadsConfig(
            vocab_size=len(self.vocab),
            in_dim=dataset.images.emb.shape[1],
            dense_dim=config.dense_dim,
            hidden_dim=config.hidden_dim,
        )
        self.heads = SparseDenseHeads(heads_cfg, seed=config.seed)
        missing = [
            name
            for name, value in (
                ("init_projection.safetensors", dataset.init_projection),
                ("word_embeddings.safetensors", dataset.word_embeddings),
            )
            if value is None
        ]
        if missing:
            self.warn(
                f"warning: {dataset.root} has no {' or '.join(missing)}: those layers start "
                "from random weights (the paper initialises both from the backbone)"
            )
        self.heads.init_from(
            init_projection=dataset.init_projection, word_embeddings=dataset.word_embeddings
        )
        self.heads.to(self.device)
        freeze_dense = config.freeze_dense or config.method == "d2s"
        for proj in (self.heads.text_proj, self.heads.vision_proj):
            proj.requires_grad_(not freeze_dense)
        self.temp = torch.nn.Parameter(torch.tensor(config.temp, device=self.device))
        self.temp.requires_grad_(config.method == "joint")
        if config.method == "joint":
            self.loss = JointLoss(
                JointLossConfig(
                    w1=config.w1,
                    w2=config.w2,
                    lam1=config.lam1,
                    lam2=config.lam2,
                    self_distill=config.self_distill,
                    detach_teacher=config.detach_teacher,
                    released_transpose=config.released_transpose,
                )
            )
        else:
            self.loss = D2SLoss()
        train = dataset.splits["train"]
        self.text_table = dataset.texts.emb.to(self.device)
        self.image_table = dataset.images.emb.to(self.device)
        self.pair_text = train.text_rows.to(self.device)
        self.pair_image = train.image_rows[train.text_to_image].to(self.device)
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
        self.precision = resolve_precision(config, self.device)
        self.autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        # fp16 needs loss scaling (as the reference's 16-bit mixed precision); bf16 does not
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.epoch, self.best_r1, self.best_epoch, self.bad_epochs = 0, -1.0, 0, 0
        self.best_metrics: dict = {}
        self.last_metrics: dict = {}

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
            sp = metrics["sparsity"]
            record = {
                "epoch": self.epoch,
                **{k: round(v, 6) for k, v in parts.items()},
                "tau": self.temp.item(),
                "lr": self.scheduler.get_last_lr()[0],
                "query_terms": sp["query_terms"],
                "doc_terms": sp["doc_terms"],
                "flops": sp["flops"],
                "eligible": eligible,
                "val": metrics,
                "best": improved,
            }
            with (self.out / "train_log.jsonl").open("a") as f:
                f.write(json.dumps(record) + "\n")
            self.log(
                f"epoch {self.epoch}: loss {parts['loss']:.4f}, val R@1 dense "
                f"{metrics['dense']['R@1']:.4f} sparse {r1:.4f} integrated "
                f"{metrics['integrated']['R@1']:.4f}; terms per query {sp['query_terms']:.1f}, "
                f"per image {sp['doc_terms']:.1f}, FLOPs {sp['flops']:.2f}"
                + ("" if eligible else f" (not eligible: {self.config.select})")
                + (" *" if improved else "")
            )
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
        (target / SERVING).unlink(missing_ok=True)  # tuned for other weights
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            staging = Path(tmp) / "model"
            config = self.model_config(metrics, selected=selected)
            save_model(staging, self.heads, self.vocab, config)
            write_query_encoder(self.dataset.root, staging)
            for path in staging.iterdir():
                path.replace(target / path.name)

    def _save_last(self, metrics: dict) -> None:
        self.last_metrics = metrics
        last = self.out / "last"
        last.mkdir(exist_ok=True)
        self._save(last, metrics)
        state = {
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
        }
        torch.save(state, last / (STATE_FILE + ".tmp"))
        (last / (STATE_FILE + ".tmp")).replace(last / STATE_FILE)

    def _resume(self) -> None:
        last = self.out / "last"
        if not (last / STATE_FILE).exists():
            raise ConfigError(f"nothing to resume in {self.out} (no last/{STATE_FILE})")
        state = torch.load(last / STATE_FILE, map_location=self.device, weights_only=False)
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


def write_query_encoder(data_root: Path, model_dir: Path) -> None:
    """Give the model the data's query encoder when it has one: the synthetic corpus' own, or
    the one `sparse-mm embed` describes in query_encoder.json (the BLIP text tower)."""
    described = Path(data_root) / "query_encoder.json"
    if described.exists():
        desc = json.loads(described.read_text())
    elif (Path(data_root) / "synthetic.json").exists():
        from sparse_mm.synth import SyntheticTextEncoder

        desc = SyntheticTextEncoder.from_corpus(data_root).save(model_dir)
    else:
        return
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["query_encoder"] = desc
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def remove_run(out: Path) -> None:
    """Delete a previous run's outputs (used by `train --overwrite`)."""
    if out.exists():
        shutil.rmtree(out)

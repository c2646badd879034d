"""`sparse-mm train` and `sparse-mm eval`: training's own commands (assembled by sparse_mm.cli)."""

from __future__ import annotations

from pathlib import Path

import click

from sparse_mm.cli_support import data_option, data_root, load_model, model_option
from sparse_mm.errors import SparseMMError


@click.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Dataset folder in the seed layout (embeddings, dataset_meta.json, vocab.txt).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="A reference-style JSON config (training/configs/*.json).",
)
@click.option(
    "--method",
    type=click.Choice(["joint", "d2s"]),
    default=None,
    help="joint: the paper's method [default]; d2s: the distillation baseline.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Model directory.")
@click.option("--epochs", type=int, default=None, help="Override the config's epochs.")
@click.option("--batch-size", type=int, default=None, help="Override the config's batch size.")
@click.option("--lr", type=float, default=None, help="Override the config's learning rate.")
@click.option("--seed", type=int, default=None, help="Override the config's seed.")
@click.option("--backbone", default=None, help="Which embeddings (blip, albef...) if several.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1 ...")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last epoch.")
@click.option("--overwrite", is_flag=True, help="Delete an existing --out first.")
@click.option("--no-self-distill", is_flag=True, help="Ablation: contrastive losses only.")
@click.option("--detach-teacher", is_flag=True, help="Ablation: no gradient through the teacher.")
@click.option(
    "--released-transpose",
    is_flag=True,
    help="The released code's second-direction teacher (see METHOD.md).",
)
@click.option("--freeze-dense", is_flag=True, help="Ablation: keep the dense projections fixed.")
def train(
    data_dir,
    config_file,
    method,
    out,
    epochs,
    batch_size,
    lr,
    seed,
    backbone,
    device,
    resume,
    overwrite,
    no_self_distill,
    detach_teacher,
    released_transpose,
    freeze_dense,
) -> None:
    """Train the dense projections and the sparse head on precomputed embeddings."""
    from sparse_mm.data import load_dataset
    from training.config import TrainConfig, load_config
    from training.evaluate import format_metrics
    from training.trainer import Trainer, remove_run

    config = TrainConfig()
    if config_file is not None:
        config, ignored = load_config(config_file)
        if ignored:
            click.echo(
                f"note: {config_file} keys not used by training: {', '.join(ignored)}", err=True
            )
    config = config.with_overrides(
        method=method,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        self_distill=False if no_self_distill else None,
        detach_teacher=True if detach_teacher else None,
        released_transpose=True if released_transpose else None,
        freeze_dense=True if freeze_dense else None,
    )
    if out.exists() and any(out.iterdir()) and not (resume or overwrite):
        raise SparseMMError(f"{out} is not empty; use --resume to continue or --overwrite")
    if overwrite and not resume:
        remove_run(out)
    dataset = load_dataset(data_dir, backbone)
    result = Trainer(dataset, config, out, device=device).fit(resume=resume)
    click.echo(
        f"best epoch {result.best_epoch} of {result.epochs_run} "
        f"({result.seconds:.0f}s); model in {result.out}"
    )
    click.echo(format_metrics(result.best_metrics))


@click.command("eval")
@model_option
@data_option
@click.option("--split", default="test", show_default=True, help="Split to evaluate.")
@click.option(
    "--json",
    "json_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the metrics to this JSON file.",
)
@click.option("--topk", type=int, default=None, help="Keep only each vector's top-k terms.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
def evaluate(model_dir, data_dir, split, json_file, topk, device) -> None:
    """Text -> image R@1/5/10 and MRR@10 (dense, sparse, integrated), sparsity and FLOPs."""
    from sparse_mm.data import load_dataset
    from training.evaluate import evaluate_split, format_metrics, write_metrics

    model = load_model(model_dir)
    dataset = load_dataset(data_root(data_dir), splits=[split])
    if split not in dataset.splits:
        raise SparseMMError(f"no split {split!r} in {dataset.root}")
    metrics = evaluate_split(model, dataset, split, topk=topk, device=device)
    click.echo(format_metrics(metrics))
    if json_file is not None:
        write_metrics(metrics, json_file)


COMMANDS = (train, evaluate)

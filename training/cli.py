"""`sparse-mm train` and `sparse-mm eval`: training's own commands (assembled by sparse_mm.cli)."""

from __future__ import annotations

from pathlib import Path

import click

from sparse_mm.cli_support import (
    FiniteFloat,
    check_width,
    check_writable,
    data_option,
    data_root,
    device_option,
    load_model,
    model_option,
    resolve_device,
)
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
@click.option("--lr", type=FiniteFloat(), default=None, help="Override the config's learning rate.")
@click.option("--seed", type=int, default=None, help="Override the config's seed.")
@click.option("--backbone", default=None, help="Which embeddings (blip, albef...) if several.")
@device_option
@click.option(
    "--precision",
    type=click.Choice(["fp16", "bf16", "fp32"]),
    default=None,
    help="Heads under autocast (fp16 with a gradient scaler, as the reference) or fp32; scores "
    "and losses always in fp32 [default: fp16 on CUDA, fp32 on CPU].",
)
@click.option(
    "--include-restval",
    is_flag=True,
    help="Train on meta splits train + restval (Karpathy); the reference uses train only.",
)
@click.option(
    "--select",
    type=click.Choice(["sparse-r1", "sparse-r1-within-budget", "sparse-r1-after-warmup"]),
    default=None,
    help="Which epoch becomes the model: best validation sparse R@1 over every epoch (the "
    "released rule) [default], over epochs within --max-flops/--max-query-terms, or over "
    "epochs after the warm-up.",
)
@click.option(
    "--max-flops", type=FiniteFloat(), default=None, help="Budget for --select ...-budget."
)
@click.option(
    "--max-query-terms", type=FiniteFloat(), default=None, help="Budget for --select ...-budget."
)
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
    precision,
    include_restval,
    select,
    max_flops,
    max_query_terms,
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
        precision=precision,
        include_restval=True if include_restval else None,
        select=select,
        max_flops=max_flops,
        max_query_terms=max_query_terms,
    )
    if out.exists() and any(out.iterdir()) and not (resume or overwrite):
        raise SparseMMError(f"{out} is not empty; use --resume to continue or --overwrite")
    if overwrite and not resume:
        remove_run(out)
    dataset = load_dataset(data_dir, backbone, include_restval=config.include_restval)
    device = resolve_device(device, announce=False)
    trainer = Trainer(dataset, config, out, device=device)  # refuses bad sizes in one line
    click.echo(f"device: {device}", err=True)
    click.echo(
        f"training on {len(dataset.splits['train'].image_ids)} images "
        f"(splits {'+'.join(dataset.train_splits)}), precision {trainer.precision}",
        err=True,
    )
    result = trainer.fit(resume=resume)
    click.echo(
        f"best epoch {result.best_epoch} of {result.epochs_run} "
        f"({result.seconds:.0f}s); model in {result.out}"
    )
    epoch = result.best_epoch or result.epochs_run  # no epoch selected: the last one
    click.echo(f"validation metrics (split val) of the model, epoch {epoch}:")
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
@click.option(
    "--serving-weights",
    is_flag=True,
    help="Integrated score with the model's serving weights (serving.json, from tune-weights) "
    "instead of the training w1, w2.",
)
@device_option
def evaluate(model_dir, data_dir, split, json_file, topk, serving_weights, device) -> None:
    """Text -> image R@1/5/10 and MRR@10 (dense, sparse, integrated), sparsity and FLOPs."""
    from sparse_mm.data import load_dataset
    from training.evaluate import evaluate_split, format_metrics, run_record, write_metrics

    check_writable(json_file, "--json")
    model = load_model(model_dir)
    dataset = load_dataset(data_root(data_dir), splits=[split])
    check_width(model, int(dataset.images.emb.shape[1]), dataset.root)
    if split not in dataset.splits:
        raise SparseMMError(f"no split {split!r} in {dataset.root}")
    device = resolve_device(device)
    weights = model.serving_weights() if serving_weights else (model.config.w1, model.config.w2)
    metrics = evaluate_split(model, dataset, split, topk=topk, device=device, weights=weights)
    click.echo(format_metrics(metrics))
    if json_file is not None:
        run = run_record(model, dataset, split, weights=weights, topk=topk, device=device)
        write_metrics({**metrics, "run": run}, json_file)


@click.command("tune-weights")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Model directory; serving.json is written into it.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Dataset folder in the seed layout (the model's data).",
)
@click.option("--split", default="val", show_default=True, help="Split to tune on.")
@click.option(
    "--metric",
    type=click.Choice(["R@1", "R@5", "R@10", "MRR@10"]),
    default="R@1",
    show_default=True,
    help="Integrated-score metric to maximise.",
)
@device_option
def tune_weights(model_dir, data_dir, split, metric, device) -> None:
    """Choose serving weights (w1, w2) of the integrated score on the validation split.

    Writes MODEL/serving.json; ingest's stored search template, query and bench use it instead
    of the training weights in config.json (which stay as they are). Re-run ingest after it.
    """
    from sparse_mm.checkpoint import write_serving
    from sparse_mm.data import load_dataset
    from training.tune import tune_weights as tune

    model = load_model(model_dir)
    dataset = load_dataset(data_dir, splits=[split])
    check_width(model, int(dataset.images.emb.shape[1]), dataset.root)
    if split not in dataset.splits:
        raise SparseMMError(f"no split {split!r} in {dataset.root}")
    device = resolve_device(device)
    record = tune(model, dataset, split, metric=metric, device=device)
    path = write_serving(model.path, record.pop("w1"), record.pop("w2"), record)
    w1, w2 = load_model(model.path).serving_weights()
    before, after = record["training_weights_metrics"], record["metrics"]
    click.echo(
        f"training weights w1={model.config.w1:g} w2={model.config.w2:g}: {split} integrated "
        f"{metric} {before[metric]:.4f}, MRR@10 {before['MRR@10']:.4f}"
    )
    click.echo(
        f"serving weights  w1={w1:g} w2={w2:g}: {split} integrated {metric} "
        f"{after[metric]:.4f}, MRR@10 {after['MRR@10']:.4f}"
    )
    click.echo(f"written to {path}")


COMMANDS = (train, evaluate, tune_weights)

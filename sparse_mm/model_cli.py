"""`sparse-mm import` and `sparse-mm embed`: from the paper's released artefacts, or from a
user's own images, to what `train`, `eval`, `ingest` and `query` take (assembled by
sparse_mm.cli)."""

from __future__ import annotations

from pathlib import Path

import click

from sparse_mm.cli_support import device_option, resolve_device


@click.command("import")
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.option(
    "--vocab",
    "vocab_file",
    type=click.Path(path_type=Path),
    required=True,
    help="The backbone's vocabulary, one token per line in id order (BLIP: BERT's 30,522 "
    "WordPiece tokens plus its added tokens): exactly as many lines as the projector's rows.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Model directory.")
@click.option(
    "--query-encoder",
    default=None,
    help="BLIP retrieval checkpoint (directory, or a name transformers resolves) whose text "
    "tower embeds query text [default: none; query with --caption-id].",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
def import_checkpoint(ckpt, vocab_file, out, query_encoder, overwrite) -> None:
    """Convert a checkpoint of the reference implementation (Lightning .ckpt) into a model.

    Reads it without executing pickled code, maps the projection heads' names, checks every
    shape, takes w1/w2 from its hyper-parameters and records the file's sha256 and the
    hyper-parameters in the model's provenance.
    """
    from sparse_mm.errors import SparseMMError
    from sparse_mm.importer import import_checkpoint as run

    if out.exists() and not overwrite:
        raise SparseMMError(f"{out} exists; use --overwrite to replace it")
    result = run(ckpt, vocab_file, out, query_encoder=query_encoder)
    h = result.heads
    click.echo(
        f"imported {ckpt.name} (sha256 {result.sha256[:12]}, epoch {result.epoch}): "
        f"{h.in_dim} -> {h.dense_dim} dense, {h.vocab_size} terms, w1={result.w1:g} "
        f"w2={result.w2:g}; model in {result.out}"
    )
    if query_encoder is None:
        click.echo(
            "note: no query encoder: query with --caption-id, or import again with "
            "--query-encoder BLIP_DIR",
            err=True,
        )


@click.command("embed")
@click.option(
    "--backbone",
    type=click.Path(path_type=Path),
    required=True,
    help="A BlipForImageTextRetrieval checkpoint directory (weights, config, tokenizer and "
    "image-processor files) or a name transformers resolves.",
)
@click.option(
    "--images",
    "images_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder the image paths in --meta are relative to.",
)
@click.option(
    "--meta",
    type=click.Path(path_type=Path),
    required=True,
    help="Karpathy-format JSON (images with filename, split, sentences) or JSONL lines "
    '{"image": ..., "caption": ...[, "split": ...]}.',
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Dataset folder.")
@device_option
@click.option("--batch-size", default=32, show_default=True, help="Images (captions) per batch.")
@click.option(
    "--skip-bad",
    is_flag=True,
    help="Finish the collection without the images that cannot be read (exit 0).",
)
def embed(backbone, images_dir, meta, out, device, batch_size, skip_bad) -> None:
    """Embed raw images and captions with BLIP into the paper's data layout.

    Writes the pre-projection embeddings (parquet), dataset_meta.json, and from the same
    checkpoint vocab.txt, word_embeddings.safetensors and init_projection.safetensors: the
    input of `sparse-mm train`. Interrupted, re-run the same command: it resumes.
    """
    from sparse_mm.embed import EmbedOptions, embed_collection
    from sparse_mm.errors import DataError

    device = resolve_device(device, announce=False)
    options = EmbedOptions(batch_size=batch_size, device=device, skip_bad=skip_bad)
    announce = lambda: click.echo(f"device: {device}", err=True)  # noqa: E731
    report = embed_collection(backbone, images_dir, meta, out, options, on_loaded=announce)
    for file, reason in report.bad:
        click.echo(f"{'skipped' if skip_bad else 'failed'}: {file}: {reason}", err=True)
    click.echo(report.describe())
    if report.bad and not skip_bad:
        raise DataError(
            f"{len(report.bad)} images could not be embedded (listed above); fix them and "
            "re-run to resume, or re-run with --skip-bad to leave them out"
        )


COMMANDS = (import_checkpoint, embed)

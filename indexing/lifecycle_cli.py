"""`sparse-mm indices` and `sparse-mm delete`: what is on an engine, and removing documents."""

from __future__ import annotations

import json
from pathlib import Path

import click

from indexing.engine_options import connect_engine, engine_options


@click.command("indices")
@engine_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def indices(engine, url, as_json) -> None:
    """List the sparse-mm indices on the engine: their aliases, the model each is bound to
    (weights' short sha256 and path), documents, HNSW graph, size on disk, creation date.

    Example: sparse-mm indices --engine elasticsearch
    """
    from indexing.inventory import render_indices, sparse_mm_indices

    rows = sparse_mm_indices(connect_engine(url, engine))
    click.echo(json.dumps(rows, indent=2) if as_json else render_indices(rows))


@click.command("delete")
@engine_options
@click.option("--index", required=True, help="Index or alias to delete documents from.")
@click.option("--id", "ids", multiple=True, help="A document id to delete (repeatable).")
@click.option(
    "--ids",
    "ids_file",
    type=click.Path(path_type=Path),
    default=None,
    help="A file of document ids to delete, one per line.",
)
def delete(engine, url, index, ids, ids_file) -> None:
    """Delete documents by id from an index (or through its alias), then refresh, so that no
    later query returns them; prints the count deleted and the ids that were not found.
    Nothing else in the index changes.

    Example: sparse-mm delete --index photos --id 17 --id 42
    """
    from indexing.inventory import delete_ids, read_ids

    if bool(ids) == (ids_file is not None):
        raise click.UsageError("give the documents to delete with --id ID... or --ids FILE")
    wanted = list(ids) if ids else read_ids(ids_file)
    concrete, deleted, missing = delete_ids(connect_engine(url, engine), index, wanted)
    where = repr(index) if concrete == index else f"{index!r} (index {concrete!r})"
    click.echo(f"deleted {deleted} of {len(set(wanted))} documents from {where}")
    if missing:
        shown = ", ".join(missing[:20]) + (
            f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        )
        click.echo(f"not found: {shown}")

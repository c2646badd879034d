"""The model bound to its index: what `_meta` records of the model an index was built with, and
the check every path that encodes for an index (ingest, query, bench, serve) runs first.

Two models of the same dense dimension make vectors the engine accepts alike, so without this
check a query encoded by model B against model A's index returns wrong answers without a word.
The binding identifies a model by content (weights sha256, vocabulary checksum, serving
weights, query encoder), never by its path, which is recorded for people only.
"""

from __future__ import annotations

from pathlib import Path

from sparse_mm.errors import ModelMismatchError

BINDING_KEY = "binding"  # the _meta key holding model_binding(model)
OVERRIDE = "--allow-model-mismatch"
# What makes two bindings the same model, with the word a message uses for each.
COMPARED = {
    "weights_sha256": "weights",
    "vocab_sha256": "vocabulary",
    "w1": "serving weight w1",
    "w2": "serving weight w2",
    "query_encoder": "query encoder",
}


def model_binding(model) -> dict:
    """What an index's `_meta` records of `model` (a LoadedModel): weights sha256, vocabulary
    checksum, serving weights, the query encoder's description (with its file's sha256 when it
    has one) and the path (informative only, never compared)."""
    from sparse_mm.checkpoint import WEIGHTS, sha256_file  # torch: not needed for --help

    path = Path(model.path)
    w1, w2 = model.serving_weights()
    encoder = dict(model.config.query_encoder or {"type": "none"})
    file = encoder.get("file")
    if isinstance(file, str) and (path / file).is_file():
        encoder["file_sha256"] = sha256_file(path / file)
    return {
        "weights_sha256": sha256_file(path / WEIGHTS),
        "vocab_sha256": sha256_file(path / model.config.vocab_file),
        "w1": float(w1),
        "w2": float(w2),
        "query_encoder": encoder,
        # absolute: a service following an alias loads the model from here (indexing.searcher)
        "path": str(path.resolve()),
    }


def short_hash(binding: dict) -> str:
    """The first 12 hex digits of the weights' sha256: how messages and index names say which
    model."""
    return str(binding.get("weights_sha256") or "unknown")[:12]


def describe(binding: dict) -> str:
    """`<short hash> (<path>)`, the way a message names a model."""
    return f"{short_hash(binding)} ({binding.get('path', 'no path recorded')})"


def binding_differences(recorded: dict, current: dict) -> list[str]:
    """The words for what differs between two bindings (empty: the same model)."""
    return [word for key, word in COMPARED.items() if recorded.get(key) != current.get(key)]


def mismatch_line(index: str, meta: dict, current: dict, alias: str | None = None) -> str | None:
    """None when the index whose `_meta` is `meta` is bound to the model of `current`, else
    the one line saying why not (without the override's advice). `alias`: the name the user
    gave, when `index` is the concrete index behind it."""
    name = repr(index) if alias in (None, index) else f"{index!r} (behind {alias!r})"
    again = f"`sparse-mm ingest --alias {alias or index}`"
    recorded = meta.get(BINDING_KEY)
    if not isinstance(recorded, dict) or not recorded.get("weights_sha256"):
        path = meta.get("model", "an unrecorded model")
        return (
            f"index {name} was built before sparse-mm recorded its model's checksums "
            f"(path only: {path}), so model {describe(current)} cannot be checked against it; "
            f"re-index with {again} (the alias then replaces the index), or into a new --index"
        )
    differs = binding_differences(recorded, current)
    if not differs:
        return None
    return (
        f"index {name} is bound to model {describe(recorded)}, not {describe(current)} "
        f"(different {', '.join(differs)}); query and ingest it with its own model, or "
        f"re-index with {again}"
    )


def check_binding(client, index: str, model, *, allow_mismatch: bool = False) -> str | None:
    """Check that `index` (an index or an alias: its concrete index's `_meta`) is bound to
    `model`. None when it is; otherwise a ModelMismatchError whose one line names both models,
    or, with `allow_mismatch`, that line as a warning for the caller to print on stderr."""
    from indexing.index import index_meta

    line = mismatch_line(index, index_meta(client, index), model_binding(model))
    if line is None:
        return None
    if allow_mismatch:
        return f"warning: {line}; going on because of {OVERRIDE} (unsafe: scores may be wrong)"
    raise ModelMismatchError(f"{line}; {OVERRIDE} overrides this (unsafe: scores may be wrong)")


def mismatch_option(f):
    """--allow-model-mismatch, for every command that encodes for an existing index."""
    import click

    return click.option(
        "--allow-model-mismatch",
        "allow_model_mismatch",
        is_flag=True,
        help="UNSAFE: go on with an index bound to another model (or to no recorded model), "
        "with a warning on stderr; its scores and answers are then likely wrong.",
    )(f)

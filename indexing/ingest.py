"""`sparse-mm ingest`: image embeddings -> model heads -> documents -> bulk into the engine.

Encoding runs batch by batch inside the document stream, so memory stays bounded by one encode
batch plus one bulk chunk whatever the collection's size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from indexing.binding import BINDING_KEY, check_binding, model_binding
from indexing.bulk import (
    KEPT,
    BulkOptions,
    BulkReport,
    bulk_index,
    connection_failure,
)
from indexing.documents import DocumentBuilder, Pruning, PruningReport
from indexing.engine import AssetsReport, as_engine
from indexing.index import BULK_DURABILITY, bulk_loading, ensure_index
from indexing.layout import IndexSettings
from indexing.metadata import infer_fields
from sparse_mm.errors import DataError, EngineError, Interrupted

DEFAULT_INDEX = "sparse-mm"
SAMPLE_QUERIES = 20  # captions a new versioned index is verified with (indexing.verify)


@dataclass
class IngestSource:
    """What to index: ids (N,), pre-projection image embeddings (N, in_dim), metadata per row
    (`filename`, `split`, `captions` and the collection's own fields under `meta`), and sample
    queries (Q, in_dim) that a new index is verified with (pre-projection caption embeddings;
    None: the collection has none)."""

    ids: Sequence[str]
    emb: torch.Tensor
    metadata: Sequence[dict] | None = None
    description: str = ""
    queries: torch.Tensor | None = None


@dataclass(frozen=True)
class IngestOptions:
    index: str = DEFAULT_INDEX
    settings: IndexSettings = field(default_factory=IndexSettings)
    batch_size: int = 2048
    pruning: Pruning = field(default_factory=Pruning)
    bulk: BulkOptions = field(default_factory=BulkOptions)
    device: str = "cpu"
    # Translog durability while loading: "async" (fsync every 5 s; documents are reported
    # written after a flush) or "request" (fsync per bulk request, the serving value).
    bulk_durability: str = BULK_DURABILITY
    # Ingest into an index bound to another model (indexing.binding): unsafe, warned about.
    allow_model_mismatch: bool = False
    # more for a new index's _meta (a versioned build's record: indexing.versions)
    extra_meta: dict = field(default_factory=dict)


@dataclass
class IngestReport:
    index: str
    created: bool
    documents: int
    bulk: BulkReport
    pruning: PruningReport
    assets: AssetsReport
    settings: IndexSettings = field(default_factory=IndexSettings)  # as the index was built
    warning: str | None = None  # the binding's warning under --allow-model-mismatch
    left_out: tuple[str, ...] = ()  # metadata fields not indexed (objects)

    def describe(self) -> str:
        verb = "created" if self.created else "updated"
        lines = [
            f"{verb} index {self.index!r} from {self.documents:,} images: {self.bulk.describe()}",
            f"HNSW graph: {self.settings.describe_graph()}",
            self.pruning.describe(),
        ]
        if self.settings.fields:
            shown = ", ".join(f"{n} ({t})" for n, t in self.settings.fields)
            lines.append(f"metadata fields for --filter: {shown}")
        if self.left_out:
            lines.append(
                f"metadata not filterable (objects): {', '.join(self.left_out)}; "
                "they are stored with the documents"
            )
        return "\n".join([*lines, self.assets.describe()])


def source_from_dataset(
    root: Path, split: str = "test", backbone: str | None = None
) -> IngestSource:
    """The images of one split of a dataset in the seed layout, with file names and captions."""
    from sparse_mm.data import load_dataset

    dataset = load_dataset(root, backbone, splits=[split])
    if split not in dataset.splits:
        raise DataError(f"{root}: no split {split!r} (found {', '.join(dataset.splits)})")
    part = dataset.splits[split]
    captions: list[list[str]] = [[] for _ in part.image_ids]
    for caption, image in zip(part.captions, part.text_to_image.tolist(), strict=True):
        captions[image].append(caption)
    own = part.metadata or [{} for _ in part.image_ids]
    metadata = [
        {"filename": name, "split": split, "captions": caps, **({"meta": m} if m else {})}
        for name, caps, m in zip(part.filenames, captions, own, strict=True)
    ]
    emb = dataset.images.emb[part.image_rows]
    queries = None
    if dataset.texts is not None and len(part.text_rows):
        # evenly spread over the split's captions: the same sample on every run
        picks = torch.linspace(0, len(part.text_rows) - 1, min(SAMPLE_QUERIES, len(part.text_rows)))
        queries = dataset.texts.emb[part.text_rows[picks.round().long().unique()]]
    description = f"{root} ({split}, {len(part.image_ids)} images)"
    return IngestSource(part.image_ids, emb, metadata, description, queries)


def ingest(
    client,
    model,
    source: IngestSource,
    options: IngestOptions,
    *,
    progress: bool = True,
    on_written: Callable[[int], None] = lambda _n: None,
    observers: Sequence[Callable] = (),
):
    """Encode `source` with `model` (a LoadedModel) and index it into `client` (an engine
    adapter or a bare client); returns an IngestReport. Raises EngineError (one line) when the
    engine is or goes down. `on_written(n)`: n more documents of `source`, in its order, are
    durable in the index (or rejected): reported only after a flush covered them.
    `observers`: called with each batch as its documents hold it (DocumentBuilder)."""
    engine = as_engine(client)
    with engine_down_is_an_error(engine):
        return _ingest(engine, model, source, options, progress, on_written, observers)


def model_meta(model) -> dict:
    """What a new index's `_meta` (and its index template) records of `model`: the binding
    (indexing.binding), the path, the serving weights and the vocabulary's size."""
    w1, w2 = model.serving_weights()
    return {
        BINDING_KEY: model_binding(model),
        "model": str(model.path),
        "w1": w1,
        "w2": w2,
        "vocab_size": model.config.heads.vocab_size,
    }


def _ingest(engine, model, source, options: IngestOptions, progress, on_written, observers):
    from tqdm import tqdm

    heads, config = model.heads, model.config
    if source.emb.ndim != 2 or source.emb.shape[1] != config.heads.in_dim:
        raise DataError(
            f"{source.description}: embeddings are {tuple(source.emb.shape)} but the model "
            f"expects rows of {config.heads.in_dim}"
        )
    if len(source.ids) != source.emb.shape[0]:
        raise DataError(
            f"{source.description}: {len(source.ids)} ids for {source.emb.shape[0]} rows"
        )
    fields, left_out = infer_fields(row.get("meta", {}) for row in source.metadata or ())
    settings = replace(options.settings, fields=tuple(sorted(fields.items())))
    warning = None
    if engine.index_exists(options.index):  # refuse another model before writing anything
        warning = check_binding(
            engine, options.index, model, allow_mismatch=options.allow_model_mismatch
        )
    meta = model_meta(model)
    dim = config.heads.dense_dim
    created, settings = ensure_index(
        engine, options.index, dim, settings, {**meta, **options.extra_meta}
    )
    assets = engine.install_assets(options.index, dim, settings, *model.serving_weights(), meta)
    builder = DocumentBuilder(model.vocab.tokens, options.pruning)
    builder.observers.extend(observers)
    bar = tqdm(
        total=len(source.ids),
        unit="doc",
        desc=f"ingest {options.index}",
        disable=None if progress else True,
    )

    def documents() -> Iterator[dict]:
        for start in range(0, len(source.ids), options.batch_size):
            stop = min(start + options.batch_size, len(source.ids))
            encoded = heads.encode(source.emb[start:stop], "image", device=options.device)
            metadata = source.metadata[start:stop] if source.metadata is not None else None
            yield from builder.build(
                source.ids[start:stop], encoded.dense, encoded.sparse, metadata
            )

    fallback = options.settings.refresh_interval
    written = 0

    def done(n: int) -> None:
        nonlocal written
        written += n
        bar.update(n)
        on_written(n)

    try:
        with bulk_loading(engine, options.index, fallback, options.bulk_durability):
            report = bulk_index(engine, options.index, documents(), options.bulk, on_done=done)
    except DataError as exc:  # a document the model made cannot be indexed: no partial index
        raise DataError(f"{exc}; {_undo(engine, options.index, created, written)}") from exc
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: {written} documents of this run are written to index "
            f"{options.index!r} and kept; re-run the same ingest to complete it (documents "
            "are replaced by id, never duplicated)"
        ) from None
    finally:
        bar.close()
    return IngestReport(
        options.index,
        created,
        len(source.ids),
        report,
        builder.report,
        assets,
        settings,
        warning,
        tuple(left_out),
    )


def _undo(engine, index: str, created: bool, written: int) -> str:
    """Remove what a failed ingest wrote when it created the index; otherwise say what the
    existing index now holds (its documents are replaced by id, never duplicated)."""
    if created:
        engine.delete_index(index)
        return f"nothing was indexed (the new index {index!r} is removed again)"
    if not written:
        return f"index {index!r} is unchanged"
    return (
        f"{written} documents of this run were already written to index {index!r}; "
        "fix the input and re-run the same ingest"
    )


@contextlib.contextmanager
def engine_down_is_an_error(client) -> Iterator[None]:
    """The engine going away outside the bulk loop (creating the index, installing the assets,
    switching refresh) ends the ingest with the same kind of one-line error as inside it."""
    engine = as_engine(client)
    try:
        yield
    except engine.connection_errors as exc:
        raise EngineError(
            f"{engine.label} at {engine.address()} is unreachable ({connection_failure(exc)}); "
            + KEPT
        ) from exc

"""Creating, checking and bulk-loading an index, on any engine (through its adapter)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from indexing.engine import as_engine
from indexing.layout import MAPPING_VERSION, IndexSettings
from sparse_mm.errors import DataError, EngineError


def ensure_index(
    client, name: str, dense_dim: int, settings: IndexSettings, meta: dict | None = None
) -> bool:
    """Create `name` if it does not exist (True), else check that it fits (False).

    An existing index must be a sparse-mm index of the same mapping version and dense dimension;
    otherwise the one-line error says what differs, and nothing is written.
    """
    engine = as_engine(client)
    if not engine.index_exists(name) and engine.create_index(name, dense_dim, settings, meta):
        return True
    check_index(engine, name, dense_dim)  # it existed, or a concurrent creator won
    return False


def index_meta(client, name: str) -> dict:
    """The index's `_meta` (model description written at creation); error if not an index."""
    mapping = as_engine(client).index_mapping(name)
    if mapping is None:
        raise EngineError(f"index {name!r} does not exist; run `sparse-mm ingest` first")
    return {**mapping.get("_meta", {}), "_properties": mapping.get("properties", {})}


def check_index(client, name: str, dense_dim: int | None = None) -> dict:
    """Verify `name` is a sparse-mm index (and of `dense_dim`); return its `_meta`."""
    engine = as_engine(client)
    meta = index_meta(engine, name)
    version = meta.get("sparse_mm_mapping")
    if version != MAPPING_VERSION:
        raise DataError(
            f"index {name!r} is not a sparse-mm index of mapping version {MAPPING_VERSION} "
            f"(found {version}); choose another --index"
        )
    found = engine.dense_dim(meta["_properties"])
    if dense_dim is not None and found != dense_dim:
        raise DataError(
            f"index {name!r} holds {found}-d vectors but the model makes {dense_dim}-d ones; "
            "use another --index or delete this one"
        )
    return meta


@contextlib.contextmanager
def bulk_loading(client, name: str, fallback: str | None = None) -> Iterator[None]:
    """Turn periodic refresh off while loading; restore it and refresh afterwards, even on
    failure, so that whatever was acknowledged becomes searchable.

    An ingest killed with the engine (or the engine killed under it) cannot restore anything,
    and leaves the index at "-1": the next load then restores `fallback` (the index's configured
    interval) rather than "-1", which would keep new documents invisible for good. When the
    load itself failed (the engine is gone, most often), failing to restore is not reported
    over the error that matters."""
    engine = as_engine(client)
    previous = engine.refresh_interval(name)
    if previous == "-1":
        previous = fallback
    engine.set_refresh_interval(name, "-1")
    failed = True
    try:
        yield
        failed = False
    finally:
        with contextlib.suppress(*((Exception,) if failed else ())):
            engine.set_refresh_interval(name, previous)
            engine.refresh(name)

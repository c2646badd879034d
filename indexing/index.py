"""Creating, checking and bulk-loading an index, on any engine (through its adapter)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace

from indexing.engine import as_engine
from indexing.filters import OWN_FIELDS
from indexing.layout import MAPPING_VERSION, PROFILES, IndexSettings
from sparse_mm.errors import ConfigError, DataError


def ensure_index(
    client, name: str, dense_dim: int, settings: IndexSettings, meta: dict | None = None
) -> tuple[bool, IndexSettings]:
    """Create `name` if it does not exist (True), else check that it fits (False); with the
    settings the index was built with (for an existing index without `check_graph`: its own
    graph, whatever `settings` asked).

    An existing index must be a sparse-mm index of the same mapping version and dense dimension,
    and, with `settings.check_graph`, of the same HNSW graph; otherwise the one-line error says
    what differs, and nothing is written.
    """
    engine = as_engine(client)
    if not engine.index_exists(name) and engine.create_index(name, dense_dim, settings, meta):
        return True, settings
    found = check_index(engine, name, dense_dim)  # it existed, or a concurrent creator won
    built = built_settings(engine, name, found, settings)
    return False, with_fields(engine, name, found["_properties"], built)


def with_fields(engine, name: str, properties: dict, settings: IndexSettings) -> IndexSettings:
    """Add the metadata fields of `settings` that the existing index `name` lacks to its
    mapping (an error, before anything is written, when one it has is of another type);
    `settings` with all of the index's fields."""
    from indexing.filters import filterable_fields
    from indexing.metadata import meta_properties, new_fields

    added = new_fields(properties, dict(settings.fields), name)
    if added:
        engine.add_properties(name, meta_properties(added))
    have = {k: v for k, v in filterable_fields(properties).items() if k not in OWN_FIELDS}
    return replace(settings, fields=tuple(sorted({**have, **added}.items())))


def built_settings(engine, name: str, meta: dict, settings: IndexSettings) -> IndexSettings:
    """`settings` with the graph the existing index `name` (its `meta`) was built with; an
    error when `settings.check_graph` and the graphs differ."""
    graph = meta.get("hnsw") or {}
    built = engine.hnsw_parameters(meta["_properties"])
    if built is None:
        return settings
    m, ef_construction = built
    named = [p for p in PROFILES.values() if (p.m, p.ef_construction) == built]
    recorded = graph.get("profile") or (named[0].name if named else "custom")
    if settings.check_graph and (m, ef_construction) != (settings.m, settings.ef_construction):
        was = f"m {m}, ef_construction {ef_construction} (profile {recorded})"
        raise DataError(
            f"index {name!r} was built with {was}, not {settings.describe_graph()}; ingest "
            "into it with its own profile (or leave out --index-profile, --hnsw-m and "
            "--ef-construction), or use another --index"
        )
    name_ = recorded if recorded in PROFILES else (named[0].name if named else settings.profile)
    ef_search = graph.get("ef_search") or (named[0].ef_search if named else settings.ef_search)
    return replace(
        settings, profile=name_, m=m, ef_construction=ef_construction, ef_search=ef_search
    )


def index_meta(client, name: str) -> dict:
    """The index's `_meta` (model description written at creation); error if not an index."""
    engine = as_engine(client)
    mapping = engine.index_mapping(name)
    if mapping is None:
        raise engine.missing_index(name)
    return {**mapping.get("_meta", {}), "_properties": mapping.get("properties", {})}


def check_index(client, name: str, dense_dim: int | None = None) -> dict:
    """Verify `name` is a sparse-mm index (and of `dense_dim`); return its `_meta`."""
    engine = as_engine(client)
    meta = index_meta(engine, name)
    check_meta(engine, name, meta, dense_dim)
    return meta


def check_meta(engine, name: str, meta: dict, dense_dim: int | None = None) -> None:
    """DataError unless `meta` (an index's `_meta` with its `_properties`) is a sparse-mm
    index's of this mapping version (and of `dense_dim`)."""
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


BULK_REFRESH = "-1"
BULK_DURABILITY = "async"
SERVING_DURABILITY = "request"


@contextlib.contextmanager
def bulk_loading(
    client, name: str, fallback: str | None = None, durability: str = BULK_DURABILITY
) -> Iterator[None]:
    """Load with periodic refresh off and the translog fsynced every 5 s instead of per
    request ("async"); restore both (and refresh) afterwards, even on failure or interruption,
    so that whatever was acknowledged becomes searchable and later writes are durable when
    acknowledged again. Async durability can lose the last 5 s of acknowledged writes on a
    crash: the ingest reports documents as written only after a flush (indexing.bulk).

    An ingest killed with the engine (or the engine killed under it) cannot restore anything,
    and leaves the index at "-1" and "async": the next load then restores `fallback` (the
    index's configured interval) and "request" rather than the bulk values, which would keep
    new documents invisible and writes undurable for good. When the load itself failed (the
    engine is gone, most often), failing to restore is not reported over the error that
    matters."""
    engine = as_engine(client)
    refresh = engine.refresh_interval(name)
    if refresh == BULK_REFRESH:
        refresh = fallback
    if durability not in (BULK_DURABILITY, SERVING_DURABILITY):
        raise ConfigError(f"translog durability must be async or request, got {durability!r}")
    serving = engine.translog_durability(name)
    if serving in (None, BULK_DURABILITY):
        serving = SERVING_DURABILITY
    engine.set_refresh_interval(name, BULK_REFRESH)
    failed = True
    try:
        engine.set_translog_durability(name, durability)
        yield
        failed = False
    finally:
        with contextlib.suppress(*((Exception,) if failed else ())):
            try:
                engine.set_translog_durability(name, serving)
            finally:
                engine.set_refresh_interval(name, refresh)
                engine.refresh(name)

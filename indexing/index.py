"""Creating, checking and bulk-loading an index."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from indexing.mapping import DENSE_FIELD, MAPPING_VERSION, IndexSettings, index_body
from sparse_mm.errors import DataError, EngineError


def ensure_index(
    client, name: str, dense_dim: int, settings: IndexSettings, meta: dict | None = None
) -> bool:
    """Create `name` if it does not exist (True), else check that it fits (False).

    An existing index must be a sparse-mm index of the same mapping version and dense dimension;
    otherwise the one-line error says what differs, and nothing is written.
    """
    from opensearchpy.exceptions import RequestError

    if not client.indices.exists(index=name):
        try:
            client.indices.create(index=name, body=index_body(dense_dim, settings, meta))
            return True
        except RequestError as exc:
            if exc.error != "resource_already_exists_exception":  # lost a race: check below
                raise EngineError(f"could not create index {name!r}: {exc.info}") from exc
    check_index(client, name, dense_dim)
    return False


def index_meta(client, name: str) -> dict:
    """The index's `_meta` (model description written at creation); error if not an index."""
    from opensearchpy.exceptions import NotFoundError

    try:
        mappings = client.indices.get_mapping(index=name)
    except NotFoundError as exc:
        raise EngineError(f"index {name!r} does not exist; run `sparse-mm ingest` first") from exc
    mapping = next(iter(mappings.values()))["mappings"]
    return {**mapping.get("_meta", {}), "_properties": mapping.get("properties", {})}


def check_index(client, name: str, dense_dim: int | None = None) -> dict:
    """Verify `name` is a sparse-mm index (and of `dense_dim`); return its `_meta`."""
    meta = index_meta(client, name)
    version = meta.get("sparse_mm_mapping")
    if version != MAPPING_VERSION:
        raise DataError(
            f"index {name!r} is not a sparse-mm index of mapping version {MAPPING_VERSION} "
            f"(found {version}); choose another --index"
        )
    found = meta["_properties"].get(DENSE_FIELD, {}).get("dimension")
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
    settings = client.indices.get_settings(index=name, name="index.refresh_interval")
    previous = next(iter(settings.values()))["settings"].get("index", {}).get("refresh_interval")
    if previous == "-1":
        previous = fallback
    client.indices.put_settings(index=name, body={"index": {"refresh_interval": "-1"}})
    failed = True
    try:
        yield
        failed = False
    finally:
        with contextlib.suppress(*((Exception,) if failed else ())):
            client.indices.put_settings(index=name, body={"index": {"refresh_interval": previous}})
            client.indices.refresh(index=name)

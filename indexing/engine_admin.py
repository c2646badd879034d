"""The adapter's alias, delete and listing calls (a part of the `Engine` API, indexing/engine.py).

Both official clients (opensearch-py, elasticsearch-py) make these requests with the same
calls, so the implementations here serve both adapters; an adapter overrides what differs for
its engine. Kept apart from engine.py only to keep that module small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DELETE_CHUNK = 1000  # ids per bulk delete request


@dataclass(frozen=True)
class IndexRow:
    """One index as `sparse-mm indices` lists it."""

    name: str
    documents: int
    size_bytes: int
    created: str  # ISO 8601, as the engine reports the creation date
    meta: dict  # the index's _meta (indexing.index.index_meta without the properties)
    properties: dict  # the mapping's properties (for the graph's parameters)
    aliases: tuple[str, ...] = ()


class EngineAdmin:
    """Mixed into `Engine`: needs `self.client` and `request_errors()`."""

    client: object

    def alias_targets(self, alias: str) -> list[str]:
        """The concrete indices `alias` points to, sorted; [] when no such alias exists (a
        concrete index of that name is not an alias)."""
        _, not_found = self.request_errors()
        try:
            found = self.client.indices.get_alias(name=alias)
        except not_found:
            return []
        return sorted(name for name, entry in found.items() if alias in entry.get("aliases", {}))

    def concrete_mappings(self, name: str) -> dict[str, dict]:
        """{concrete index: its mapping} for an index or an alias ({} when neither exists)."""
        _, not_found = self.request_errors()
        try:
            found = self.client.indices.get_mapping(index=name)
        except not_found:
            return {}
        return {index: dict(entry["mappings"]) for index, entry in found.items()}

    def move_alias(
        self, alias: str, to: str, away_from: Sequence[str] = (), remove_index: str | None = None
    ) -> None:
        """ONE `_aliases` request: remove `alias` from `away_from` and add it to `to`, which the
        engine applies atomically (a reader sees the old index or the new, never none);
        `remove_index`: an index deleted in the same request (the concrete index that had the
        alias's name, which the alias replaces)."""
        actions = [{"remove": {"index": old, "alias": alias}} for old in away_from if old != to]
        actions.append({"add": {"index": to, "alias": alias}})
        if remove_index is not None:
            actions.append({"remove_index": {"index": remove_index}})
        self.client.indices.update_aliases(body={"actions": actions})

    def add_properties(self, index: str, properties: dict) -> None:
        """Add fields to `index`'s mapping (existing fields cannot change)."""
        self.client.indices.put_mapping(index=index, body={"properties": properties})

    def put_meta(self, index: str, meta: dict) -> None:
        """Replace `index`'s mapping `_meta` with `meta` (the whole object)."""
        self.client.indices.put_mapping(index=index, body={"_meta": meta})

    def delete_documents(self, index: str, ids: Sequence[str]) -> tuple[int, list[str]]:
        """Delete `ids` from `index` (an index or an alias with one index), then refresh so
        that no later search returns them; (deleted count, ids that were not there)."""
        deleted, missing = 0, []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), DELETE_CHUNK):
            chunk = unique[start : start + DELETE_CHUNK]
            body = [{"delete": {"_index": index, "_id": doc_id}} for doc_id in chunk]
            answer = self.client.bulk(body=body)
            for doc_id, item in zip(chunk, answer["items"], strict=True):
                result = item["delete"].get("result")
                if result == "deleted":
                    deleted += 1
                elif result == "not_found":
                    missing.append(doc_id)
                else:
                    from sparse_mm.errors import EngineError

                    reason = item["delete"].get("error", {}).get("reason", result)
                    raise EngineError(f"could not delete {doc_id!r} from {index!r}: {reason}")
        self.client.indices.refresh(index=index)
        return deleted, missing

    def index_rows(self, pattern: str = "*") -> list[IndexRow]:
        """The open indices matching `pattern`, with their documents, size on disk, creation
        date, `_meta`, properties and aliases, sorted by name."""
        cat = self.client.cat.indices(
            index=pattern, format="json", bytes="b", h="index,docs.count,store.size,creation.date"
        )
        mappings = self.client.indices.get_mapping(index=pattern)
        aliases = self.client.indices.get_alias(index=pattern)
        rows = []
        for entry in cat:
            name = entry["index"]
            mapping = mappings.get(name, {}).get("mappings", {})
            rows.append(
                IndexRow(
                    name=name,
                    documents=int(entry.get("docs.count") or 0),
                    size_bytes=int(entry.get("store.size") or 0),
                    created=_iso(entry.get("creation.date")),
                    meta=mapping.get("_meta", {}),
                    properties=mapping.get("properties", {}),
                    aliases=tuple(sorted(aliases.get(name, {}).get("aliases", {}))),
                )
            )
        return sorted(rows, key=lambda row: row.name)


def _iso(millis: object) -> str:
    """An engine's creation date (milliseconds since the epoch, as text) in ISO 8601 UTC."""
    import datetime as dt

    try:
        when = dt.datetime.fromtimestamp(int(millis) / 1000, tz=dt.UTC)
    except (TypeError, ValueError):
        return "unknown"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")

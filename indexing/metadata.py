"""The collection's own metadata fields (a licence, a date, a category, ... in its meta file:
`sparse_mm.data.entry_fields`), indexed under `meta.<name>` so that queries can filter on them
(indexing.filters).

Types are inferred from the values of the whole collection: text -> `keyword`, whole numbers
-> `long`, other numbers -> `double`, true/false -> `boolean`; a list of such values is a
multi-valued field. A field whose values mix kinds (text in one image, a number in another),
or a name the engines cannot take, is one line before anything is written; objects are not
filterable and are left out with a note.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from indexing.filters import FIELD_NAME, META_FIELD
from sparse_mm.errors import DataError


def _kind(value, field: str) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "keyword"
    if isinstance(value, (list, tuple)):
        kinds = {_kind(v, field) for v in value if v is not None}
        return _merge(kinds, field) if kinds else None
    return "object"


def _merge(kinds: set, field: str) -> str | None:
    kinds.discard(None)
    if kinds <= {"long", "double"} and kinds:
        return "double" if "double" in kinds else "long"
    if len(kinds) > 1:
        raise DataError(
            f"metadata field {field!r} mixes {' and '.join(sorted(kinds))} values; give it "
            "one kind in the meta file (or quote the numbers)"
        )
    return next(iter(kinds), None)


def infer_fields(rows: Iterable[Mapping]) -> tuple[dict[str, str], list[str]]:
    """({name: engine type} of the metadata rows' fields, the names left out (objects)).
    DataError for a name the engines cannot take or a field of mixed kinds."""
    kinds: dict[str, set] = {}
    for row in rows:
        for name, value in row.items():
            kinds.setdefault(name, set()).add(_kind(value, name))
    fields, left_out = {}, []
    for name, found in sorted(kinds.items()):
        if not FIELD_NAME.fullmatch(name):
            raise DataError(
                f"metadata field {name!r} cannot be indexed: a field name is letters, digits, "
                "_ and - (rename it in the meta file)"
            )
        if "object" in found:
            left_out.append(name)
            continue
        kind = _merge(set(found), name)
        if kind is not None:
            fields[name] = kind
    return fields, left_out


def meta_properties(fields: Mapping[str, str]) -> dict:
    """The mapping properties of the `meta` object for these fields ({} for none)."""
    if not fields:
        return {}
    stored = {n: {"type": t, "store": True} for n, t in sorted(fields.items())}
    return {META_FIELD: {"properties": stored}}


def new_fields(properties: Mapping, fields: Mapping[str, str], index: str) -> dict[str, str]:
    """The `fields` an existing index's mapping `properties` lacks; DataError when one it has
    is of another type (its documents could not take the new values)."""
    have = (properties.get(META_FIELD) or {}).get("properties") or {}
    for name, kind in fields.items():
        found = have.get(name, {}).get("type")
        # a double field takes whole numbers too; a long field would truncate 2.5 silently
        if found is not None and found != kind and (found, kind) != ("double", "long"):
            raise DataError(
                f"index {index!r} holds metadata field {name!r} as {found}, but this "
                f"collection's values are {kind}; fix the meta file or use another --index"
            )
    return {name: kind for name, kind in fields.items() if name not in have}

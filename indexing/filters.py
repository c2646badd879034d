"""Search filters: `--filter FIELD=VALUE`, `FIELD>=X` (also `>`, `<=`, `<`) and `--ids FILE`,
applied to every phase of a query so that the hybrid stays exact over the filtered set.

A filter is parsed from the command line (`parse_filter`) without an engine, then resolved
against the index's mapping (`SearchFilter.resolve`): the field must exist, and a value must
fit the field's type (a number for a numeric field), so a misspelt field or a text compared
with numbers is one line, never a silently empty or silently wrong answer. The resolved filter
gives both the engines' query DSL (the same `terms`, `range` and `ids` queries in OpenSearch
and Elasticsearch) and an in-memory predicate (`ResolvedFilter.matches`) for the exact
reference, with the engines' semantics:
- conditions on different fields must all hold; `=` on the same field repeated is any of them;
- the bounds on one field form one range, which one value of the field must satisfy whole;
- a keyword field compares as text (code point order, e.g. ISO dates), a numeric as numbers;
- a multi-valued field matches when any of its values does.

The collection's own fields are `meta.<name>` in the index (indexing.metadata); `id`, `split`
and `filename` are sparse-mm's own keyword fields.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sparse_mm.errors import ConfigError, DataError

OWN_FIELDS = ("id", "split", "filename")  # top-level keyword fields every document has
META_FIELD = "meta"  # the object holding the collection's own metadata fields
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,99}")
_CONDITION = re.compile(r"^\s*([^<>=\s]+)\s*(>=|<=|=|>|<)\s*(.*?)\s*$", re.DOTALL)
_RANGE_KEYS = {">=": "gte", ">": "gt", "<=": "lte", "<": "lt"}
NUMERIC = ("long", "double")
SYNTAX = "FIELD=VALUE, FIELD>=X, FIELD>X, FIELD<=X or FIELD<X"


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # "=", ">=", ">", "<=", "<"
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.value}"


def parse_condition(spec: str) -> Condition:
    """`FIELD=VALUE` (or a bound) -> Condition; one-line ConfigError for anything else."""
    match = _CONDITION.match(spec)
    # a value that starts with an operator is a mistyped one (year=>3), not a value
    if match is None or not match[3] or match[3][0] in "<>=":
        raise ConfigError(f"filter {spec!r}: expected {SYNTAX}")
    field, op, value = match.groups()
    if not FIELD_NAME.fullmatch(field):
        raise ConfigError(
            f"filter {spec!r}: {field!r} is not a field name (letters, digits, _ and -)"
        )
    return Condition(field, op, value)


@dataclass(frozen=True)
class SearchFilter:
    """What the user asked for, before it meets an index."""

    conditions: tuple[Condition, ...] = ()
    ids: tuple[str, ...] | None = None  # only these documents (--ids FILE)

    def __bool__(self) -> bool:
        return bool(self.conditions) or self.ids is not None

    def describe(self) -> str:
        parts = [str(c) for c in self.conditions]
        if self.ids is not None:
            parts.append(f"{len(self.ids):,} ids")
        return " and ".join(parts) or "none"

    def resolve(self, properties: Mapping) -> ResolvedFilter:
        """Check the fields against an index's mapping `properties` and type the values."""
        fields = filterable_fields(properties)
        equals: dict[str, list] = {}
        ranges: dict[str, dict] = {}
        for c in self.conditions:
            kind = fields.get(c.field)
            if kind is None:
                known = ", ".join(sorted(fields)) or "none"
                raise DataError(
                    f"filter {c}: the index has no field {c.field!r} to filter on "
                    f"(its fields: {known})"
                )
            path = field_path(c.field)
            value = typed_value(c, kind)
            if c.op == "=":
                equals.setdefault(path, []).append(value)
                continue
            bounds = ranges.setdefault(path, {})
            key = _RANGE_KEYS[c.op]
            if key in bounds and bounds[key] != value:
                raise ConfigError(f"filter {c}: {c.field} has two {c.op} bounds")
            bounds[key] = value
        return ResolvedFilter(
            tuple((p, tuple(dict.fromkeys(v))) for p, v in equals.items()),
            tuple((p, tuple(sorted(b.items()))) for p, b in ranges.items()),
            self.ids,
        )


def typed_value(c: Condition, kind: str):
    """The condition's value as the field's type compares it."""
    if kind == "keyword":
        return c.value
    if kind == "boolean":
        if c.op != "=" or c.value.lower() not in ("true", "false"):
            raise DataError(f"filter {c}: {c.field} is true or false")
        return c.value.lower() == "true"
    try:
        number = float(c.value)
    except ValueError:
        raise DataError(f"filter {c}: {c.field} holds numbers, not {c.value!r}") from None
    if not math.isfinite(number):
        raise DataError(f"filter {c}: the bound must be a finite number")
    if kind == "long" and c.op == "=":
        if not number.is_integer():
            raise DataError(f"filter {c}: {c.field} holds whole numbers")
        return int(number)
    return int(number) if kind == "long" and number.is_integer() else number


def field_path(name: str) -> str:
    """Where a field lives in the index: sparse-mm's own at the top, the collection's under
    `meta`."""
    return name if name in OWN_FIELDS else f"{META_FIELD}.{name}"


def filterable_fields(properties: Mapping) -> dict[str, str]:
    """{field name: "keyword" | "long" | "double" | "boolean"} of an index's mapping."""
    fields = {name: "keyword" for name in OWN_FIELDS if name in properties}
    for name, spec in (properties.get(META_FIELD, {}).get("properties") or {}).items():
        kind = spec.get("type")
        fields[name] = kind if kind in ("keyword", "boolean", *NUMERIC) else "keyword"
    return fields


@dataclass(frozen=True)
class ResolvedFilter:
    """A filter typed against one index: the query clauses and the in-memory predicate."""

    equals: tuple[tuple[str, tuple], ...] = ()  # (path, any of these values)
    ranges: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()  # (path, bounds)
    ids: tuple[str, ...] | None = None

    def clauses(self) -> list[dict]:
        """The filter as query clauses for a `bool.filter` (both engines read them alike)."""
        out: list[dict] = [{"terms": {path: list(values)}} for path, values in self.equals]
        out += [{"range": {path: dict(bounds)}} for path, bounds in self.ranges]
        if self.ids is not None:
            out.append({"ids": {"values": list(self.ids)}})
        return out

    def query(self) -> dict:
        """One query that matches exactly the filtered documents."""
        return {"bool": {"filter": self.clauses()}}

    def matches(self, doc: Mapping) -> bool:
        """Whether a document (`{"id", "split", "filename", "meta": {...}}`) passes, as the
        engine decides it."""
        if self.ids is not None and str(doc.get("id")) not in self._id_set:
            return False
        for path, values in self.equals:
            if not any(v in values for v in _values(doc, path)):
                return False
        for path, bounds in self.ranges:
            if not any(_within(v, bounds) for v in _values(doc, path)):
                return False
        return True

    @property
    def _id_set(self) -> frozenset[str]:
        cached = self.__dict__.get("_ids_cache")
        if cached is None:
            cached = frozenset(self.ids or ())
            object.__setattr__(self, "_ids_cache", cached)
        return cached

    def mask(self, docs: Sequence[Mapping]):
        """(N,) bool tensor: which of `docs` pass."""
        import torch

        return torch.tensor([self.matches(d) for d in docs], dtype=torch.bool)


def _values(doc: Mapping, path: str) -> list:
    value: object = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


_COMPARE = {
    "gte": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "lte": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}


def _within(value, bounds) -> bool:
    try:
        return all(_COMPARE[key](value, bound) for key, bound in bounds)
    except TypeError:  # a text value against a number bound: the engine would not match it
        return False


def parse_filter(specs: Sequence[str], ids: Sequence[str] | None = None) -> SearchFilter:
    """`--filter` specs (and `--ids`' ids) -> SearchFilter."""
    return SearchFilter(tuple(parse_condition(s) for s in specs), tuple(ids) if ids else None)

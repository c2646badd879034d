"""`sparse-mm ingest --alias NAME`: a new model (or a rebuilt collection) without downtime.

Applications query the alias. Each build goes into a new concrete index named
`<alias>-<model's short hash>-<counter>`, whose `_meta.build` records the alias, the model,
the source's fingerprint and the state ("building", then "verified", then when it went live).
When the build is complete it is verified (document count; a sample of queries equal to exact
in-memory search, indexing.verify), then the alias moves to it in ONE `_aliases` request,
which the engine applies atomically: a reader sees the old index or the new one, never none
and never a mix. Afterwards the stored search template of the alias (OpenSearch) is rewritten
for the new model's weights, and the alias's older indices beyond `keep_old` are deleted with
their assets.

An interrupted or failed build never touches the alias: the unfinished index stays (state
"building") and the same command run again resumes it (documents are replaced by id) and
completes the swap. A concrete index that already has the alias's name (an index made by a
plain `ingest --index NAME`) is replaced by the alias in the same atomic request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from indexing.binding import model_binding, short_hash
from indexing.engine import as_engine
from indexing.ingest import IngestOptions, IngestReport, IngestSource, engine_down_is_an_error
from indexing.layout import MAPPING_VERSION
from indexing.verify import ExactSample, Verification, verified_or_error, verify_index
from sparse_mm.errors import ConfigError, DataError

BUILD_KEY = "build"
DEFAULT_KEEP_OLD = 1  # the previous index stays, for a rollback
# What the engines accept as an index or alias name, kept to the characters that need no
# escaping in a URL: lowercase letters, digits, '-', '_' and '.' (not first).
ALIAS_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,199}")


@dataclass
class AliasReport:
    alias: str
    index: str  # the new concrete index the alias now points to
    ingest: IngestReport
    verification: Verification
    resumed: bool = False  # an unfinished build of the same model and source was completed
    previous: list[str] = field(default_factory=list)  # where the alias pointed before
    replaced: str | None = None  # a concrete index of the alias's name, deleted in the swap
    deleted: list[str] = field(default_factory=list)  # older indices removed (--keep-old)
    kept: list[str] = field(default_factory=list)  # older indices kept
    template: str = ""  # what happened to the alias's stored search template

    def describe(self) -> str:
        was = ", ".join(repr(p) for p in self.previous) or "a new alias"
        resumed = " (an unfinished build, resumed)" if self.resumed else ""
        lines = [
            self.ingest.describe(),
            f"verified {self.index!r}{resumed}: {self.verification.describe()}",
            f"alias {self.alias!r} now points to {self.index!r} (before: {was}), moved in one "
            "atomic request",
        ]
        if self.replaced:
            lines.append(
                f"the index that had the alias's name ({self.replaced!r}) was deleted in the "
                "same request"
            )
        if self.template:
            lines.append(f"search template of the alias: {self.template}")
        if self.kept or self.deleted:
            lines.append(
                f"older indices: kept {', '.join(self.kept) or 'none'}; deleted "
                f"{', '.join(self.deleted) or 'none'}"
            )
        return "\n".join(lines)


def check_alias_name(alias: str) -> str:
    if not ALIAS_NAME.fullmatch(alias):
        raise ConfigError(
            f"--alias {alias!r}: an alias is lowercase letters, digits, '-', '_' and '.' "
            "(starting with a letter or digit), at most 200 characters"
        )
    return alias


def source_key(source: IngestSource, options: IngestOptions) -> str:
    """What decides a build's documents besides the model: the ids, the embeddings' shape,
    the pruning and the graph. A build is resumed only for the same key."""
    digest = hashlib.sha256()
    for doc_id in source.ids:
        digest.update(str(doc_id).encode() + b"\0")
    s, p = options.settings, options.pruning
    digest.update(repr((tuple(source.emb.shape), p.top_k, p.min_weight)).encode())
    digest.update(repr((s.m, s.ef_construction, s.shards)).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Build:
    name: str
    counter: int
    record: dict
    aliases: tuple[str, ...]
    created: str


def builds(engine, alias: str) -> list[Build]:
    """The indices built for `alias` (their `_meta.build` names it), oldest counter first."""
    out = []
    for row in engine.index_rows(f"{alias}-*"):
        record = row.meta.get(BUILD_KEY) or {}
        if record.get("alias") != alias or row.meta.get("sparse_mm_mapping") != MAPPING_VERSION:
            continue
        match = re.fullmatch(rf"{re.escape(alias)}-[0-9a-f]+-(\d+)", row.name)
        counter = int(match[1]) if match else 0
        out.append(Build(row.name, counter, record, row.aliases, row.created))
    return sorted(out, key=lambda b: (b.counter, b.name))


def plan(engine, alias: str, model_hash: str, key: str) -> tuple[str, bool]:
    """(the index to build into, whether it resumes an unfinished build): the newest build of
    this alias for the same model and source that never went live, else a new name."""
    found = builds(engine, alias)
    for build in reversed(found):
        r = build.record
        if (
            r.get("model") == model_hash
            and r.get("source") == key
            and not r.get("live_since")
            and alias not in build.aliases
        ):
            return build.name, True
    taken = {b.counter for b in found if b.name.startswith(f"{alias}-{model_hash}-")}
    counter = max(taken, default=0) + 1
    while engine.index_exists(f"{alias}-{model_hash}-{counter}"):
        counter += 1  # a name taken by an index that is not one of the alias's builds
    return f"{alias}-{model_hash}-{counter}", False


def ingest_alias(
    client,
    model,
    source: IngestSource,
    options: IngestOptions,
    alias: str,
    *,
    keep_old: int = DEFAULT_KEEP_OLD,
    progress: bool = True,
    on_written: Callable[[int], None] = lambda _n: None,
    before_swap: Callable[[str], None] = lambda _index: None,
) -> AliasReport:
    """Build `source` into a new index for `alias`, verify it, move the alias to it (one
    atomic request), retire older builds beyond `keep_old`; see the module doc.
    `before_swap(index)`: called once the new index is verified, before the alias moves."""
    from indexing.ingest import ingest

    check_alias_name(alias)
    if keep_old < 0:
        raise ConfigError(f"--keep-old must be >= 0, got {keep_old}")
    engine = as_engine(client)
    model_hash = short_hash(model_binding(model))
    key = source_key(source, options)
    with engine_down_is_an_error(engine):
        previous = engine.alias_targets(alias)
        replaced = _index_named_like(engine, alias) if not previous else None
        name, resumed = plan(engine, alias, model_hash, key)
    record = {"alias": alias, "model": model_hash, "source": key, "state": "building"}
    sample = ExactSample(model, source.queries) if source.queries is not None else None
    built = replace(options, index=name, extra_meta={BUILD_KEY: record})
    report = ingest(
        engine,
        model,
        source,
        built,
        progress=progress,
        on_written=on_written,
        observers=[sample.observe] if sample else (),
    )
    if report.bulk.failed:
        raise DataError(
            f"{report.bulk.failed} documents were rejected (see {options.bulk.rejects_path}); "
            f"the alias {alias!r} was not moved; fix them and run the same command again"
        )
    with engine_down_is_an_error(engine):
        verification = verify_index(engine, name, sample, len(set(map(str, source.ids))))
        verified_or_error(verification, name)
        _update_record(engine, name, state="verified")
        before_swap(name)
        engine.move_alias(alias, name, away_from=previous, remove_index=replaced)
        _update_record(engine, name, live_since=_now())
        template = engine.install_alias_template(alias, *model.serving_weights())
        kept, deleted = _retire(engine, alias, name, keep_old)
    return AliasReport(
        alias, name, report, verification, resumed, previous, replaced, deleted, kept, template
    )


def _index_named_like(engine, alias: str) -> str | None:
    """The concrete index that has the alias's name, if any: a sparse-mm index is replaced by
    the alias; another one is an error."""
    if not engine.index_exists(alias):
        return None
    from indexing.index import index_meta

    if index_meta(engine, alias).get("sparse_mm_mapping") != MAPPING_VERSION:
        raise DataError(
            f"an index named {alias!r} exists and is not a sparse-mm index; choose another --alias"
        )
    return alias


def _update_record(engine, index: str, **changes) -> None:
    from indexing.index import index_meta

    meta = index_meta(engine, index)
    meta.pop("_properties", None)
    meta[BUILD_KEY] = {**meta.get(BUILD_KEY, {}), **changes}
    engine.put_meta(index, meta)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _retire(engine, alias: str, current: str, keep_old: int) -> tuple[list[str], list[str]]:
    """Keep the `keep_old` most recently live of the alias's older builds, delete the others
    (with their engine assets); unfinished builds are left alone."""
    older = [b for b in builds(engine, alias) if b.name != current and b.record.get("live_since")]
    older.sort(key=lambda b: b.record["live_since"], reverse=True)
    kept, gone = older[:keep_old], older[keep_old:]
    for build in gone:
        engine.delete_index(build.name)
        engine.delete_assets(build.name)
    return [b.name for b in kept], [b.name for b in gone]

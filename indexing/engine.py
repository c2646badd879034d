"""The engine adapter: the one small interface the neutral code (ingest, search, bench) uses.

Each engine has its own package under `indexing/` (mapping, query bodies, client, managed node,
engine assets) and one `Engine` subclass that puts them behind these methods and carries the
engine's `EngineSpec` (indexing/registry.py: names, variables, ports, node, image,
capabilities); adding a third engine is one new package and one line in `ENGINES`. The
neutral code never imports an engine's client library: the adapter turns that library's
errors into `sparse_mm.errors` ones.

Scores: every adapter's `search` returns the model's scores (indexing.query_terms), so results
of different engines sit side by side.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from indexing.client import ConnectionOptions
from indexing.engine_admin import EngineAdmin
from indexing.layout import IndexSettings

# The registry (imported on first use, so that an engine's client library is needed only by
# those who use that engine) lives in indexing.registry; these names stay importable from here.
from indexing.registry import DEFAULT_ENGINE, ENGINES, EngineSpec, engine_class, spec_for_library
from sparse_mm.errors import ConfigError, EngineError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["DEFAULT_ENGINE", "ENGINES", "Engine", "EngineSpec", "engine_class"]


@dataclass
class EngineHit:
    """One hit as the engine returned it, its score already the model's for the mode."""

    id: str
    score: float
    source: dict = field(default_factory=dict)
    index: str = ""  # the concrete index that answered (an alias's target)


@dataclass
class EngineResult:
    hits: list[EngineHit]
    took_ms: int  # the engine's own time, summed over the round trips
    round_trips: int = 1
    profiles: list = field(default_factory=list)  # each request's `profile` when asked for


@dataclass(frozen=True)
class AssetsReport:
    index_template: str  # "created", "updated" or "unchanged"
    search_template: str  # the same, or why the engine has none
    version: int = 1

    def describe(self) -> str:
        return (
            f"engine assets v{self.version}: index template {self.index_template}, "
            f"search template {self.search_template}"
        )


class Engine(EngineAdmin, ABC):
    """One engine behind a connected client (`self.client`, the engine's official client)."""

    spec: ClassVar[EngineSpec]  # what varies by engine (indexing/registry.py)
    name: ClassVar[str]  # spec.name, as on the command line: "opensearch"
    label: ClassVar[str]  # spec.label, as in messages: "OpenSearch"
    libraries: ClassVar[tuple[str, ...]]  # spec.libraries

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "spec" in cls.__dict__:
            cls.name, cls.label, cls.libraries = cls.spec.name, cls.spec.label, cls.spec.libraries

    def __init__(self, client) -> None:
        self.client = client

    def capabilities(self, index: str) -> dict:
        """What this engine can do for `index`, for the record (bench JSONs):
        {"one_request_hybrid": {"available": bool, "why": str}}."""
        available = self.spec.one_request_hybrid
        why = "the engine's exact rescore in the same request" if available else "two requests"
        return {"one_request_hybrid": {"available": available, "why": why}}

    def missing_index(self, index: str) -> EngineError:
        """The one-line error for an index that does not exist, naming this engine's ingest."""
        return EngineError(
            f"index {index!r} does not exist on {self.label}; run "
            f"`sparse-mm ingest --engine {self.name}` first"
        )

    # -------------------------------------------------------------- connection
    @classmethod
    def connect(cls, options: ConnectionOptions, *, check: bool = True) -> Engine:
        """A client for `options` from the spec's client module; with `check`, verify the
        engine answers, with one-line errors for the usual ways it does not."""
        import importlib

        return cls(importlib.import_module(cls.spec.client_module).connect(options, check=check))

    @abstractmethod
    def version(self) -> str:
        """The engine's version number, e.g. "3.4.0"."""

    @abstractmethod
    def address(self) -> str:
        """host:port of the engine, for messages."""

    @property
    @abstractmethod
    def connection_errors(self) -> tuple[type[BaseException], ...]:
        """The client library's errors for a request that never got an answer."""

    @abstractmethod
    def without_retries(self) -> Engine:
        """This engine with the client's own retries off (bulk retries are ours), leaving
        `self` alone (other threads may use it)."""

    # -------------------------------------------------------------- indices
    @abstractmethod
    def index_body(self, dense_dim: int, settings: IndexSettings, meta: dict | None) -> dict:
        """The create-index request's body (settings and mapping) for this engine."""

    @abstractmethod
    def request_errors(self) -> tuple[type[BaseException], type[BaseException]]:
        """The client library's exception classes for a 400 and for a 404."""

    @abstractmethod
    def root_cause(self, exc: BaseException) -> str:
        """The engine's own reason for a refused request (`error_reason` of its body)."""

    def create_index(
        self, name: str, dense_dim: int, settings: IndexSettings, meta: dict | None
    ) -> bool:
        """Create `name`; False if it exists already (a concurrent creator won)."""
        bad_request, _ = self.request_errors()
        try:
            self.client.indices.create(index=name, body=self.index_body(dense_dim, settings, meta))
            return True
        except bad_request as exc:
            if exc.error != "resource_already_exists_exception":
                raise EngineError(
                    f"could not create index {name!r}: {self.root_cause(exc)}"
                ) from exc
            return False

    def index_mapping(self, name: str) -> dict | None:
        """{"_meta": ..., "properties": ...} of `name`, or None if there is no such index."""
        _, not_found = self.request_errors()
        try:
            mappings = self.client.indices.get_mapping(index=name)
        except not_found:
            return None
        return next(iter(mappings.values()))["mappings"]

    @abstractmethod
    def dense_dim(self, properties: Mapping) -> int | None:
        """The dense field's dimension in an index's mapping properties."""

    # The index operations below are the same calls in both official clients (opensearch-py
    # and elasticsearch-py share the API's shape); an adapter overrides what differs.
    def index_exists(self, name: str) -> bool:
        return bool(self.client.indices.exists(index=name))

    def delete_index(self, name: str) -> None:
        self.client.indices.delete(index=name, ignore_unavailable=True)

    def count(self, name: str, query: dict | None = None) -> int:
        """The documents of `name` (those `query` matches, when given)."""
        body = {"query": query} if query is not None else None
        return int(self.client.count(index=name, body=body)["count"])

    def document_fields(self, name: str, doc_id: str, fields: list[str]) -> dict | None:
        """The stored `fields` of document `doc_id` of `name`, or None when it has none (an
        `ids` query, which both engines' clients send the same way)."""
        body = {"query": {"ids": {"values": [doc_id]}}, "_source": fields, "size": 1}
        try:
            hits = self.client.search(index=name, body=body)["hits"]["hits"]
        except self.request_errors()[1] as exc:
            raise self.missing_index(name) from exc
        return dict(hits[0].get("_source") or {}) if hits else None

    def refresh_interval(self, name: str) -> str | None:
        found = self.client.indices.get_settings(index=name, name="index.refresh_interval")
        return next(iter(found.values()))["settings"].get("index", {}).get("refresh_interval")

    def set_refresh_interval(self, name: str, value: str | None) -> None:
        self.client.indices.put_settings(index=name, body={"index": {"refresh_interval": value}})

    def refresh(self, name: str) -> None:
        self.client.indices.refresh(index=name)

    @abstractmethod
    def wait_for_health(self, name: str, status: str = "green", seconds: float = 60.0) -> None:
        """Wait until index `name` is `status` (the engine waits up to `seconds`; the request
        may take 10 s more). The two official clients take a request's own timeout
        differently."""

    def translog_durability(self, name: str) -> str | None:
        """`index.translog.durability`: "request" (fsync before acknowledging each request, the
        default of both engines) or "async" (fsync every 5 s); None when never set."""
        found = self.client.indices.get_settings(index=name, name="index.translog.durability")
        for answer in found.values():  # none when the setting was never set
            return answer["settings"].get("index", {}).get("translog", {}).get("durability")
        return None

    def set_translog_durability(self, name: str, value: str) -> None:
        body = {"index": {"translog": {"durability": value}}}
        self.client.indices.put_settings(index=name, body=body)

    def flush(self, name: str) -> None:
        """A Lucene commit, which also fsyncs the translog: every operation acknowledged before
        it survives a crash, whatever the durability."""
        self.client.indices.flush(index=name)

    @abstractmethod
    def hnsw_parameters(self, properties: Mapping) -> tuple[int, int] | None:
        """(m, ef_construction) of the dense field in an index's mapping properties."""

    # -------------------------------------------------------------- documents
    @abstractmethod
    def bulk(
        self, actions: Sequence[dict], *, max_chunk_bytes: int, request_timeout: float | None
    ) -> Iterable[tuple[bool, dict]]:
        """One bulk round: (ok, {op: outcome}) per action, as the clients' streaming_bulk
        yields them, never raising for item or connection failures."""

    def stored_weights(self, weights: Tensor) -> Tensor:
        """What the engine keeps of document term weights (any shape). Both engines here store
        them in a Lucene FeatureField (indexing/<engine>/mapping.py), 9 significant bits."""
        from sparse_mm.scores import quantize_feature

        return quantize_feature(weights)

    # -------------------------------------------------------------- search
    @abstractmethod
    def search(
        self,
        index: str,
        dense: Sequence[float],
        terms: Mapping[str, float],
        options,
        w1: float,
        w2: float,
        source: list[str],
    ) -> EngineResult:
        """Run one query (options: indexing.search.SearchOptions; `terms` already pruned);
        hits carry the model's scores for the mode and the `source` fields."""

    # -------------------------------------------------------------- assets
    @abstractmethod
    def install_assets(
        self,
        index: str,
        dense_dim: int,
        settings: IndexSettings,
        w1: float,
        w2: float,
        meta: dict,
    ) -> AssetsReport: ...

    def install_alias_template(self, alias: str, w1: float, w2: float) -> str:
        """Make the alias's own engine-side search asset (if the engine has one) score with
        these weights; what happened, in words."""
        return "none (this engine stores no search template)"

    @abstractmethod
    def delete_assets(self, index: str) -> None:
        """Remove the engine assets install_assets made for `index` (absent ones are fine)."""

    @abstractmethod
    def template_request(
        self,
        index: str,
        dense: list[float],
        terms: dict[str, float],
        *,
        k: int,
        window: int,
        knn_k: int,
        w1: float,
        w2: float,
    ) -> dict:
        """What any client can send to get the hybrid results without sparse-mm."""


def fetched(options, source: object) -> dict:
    """What a search body asks to fetch of each hit: `source` from _source, or, without
    explanations in an index that stores them, the shown fields as stored fields."""
    from indexing.layout import STORED_SHOWN

    if options.stored_fields and not options.explain:
        return {"_source": False, "stored_fields": STORED_SHOWN}
    return {"_source": source}


def hit_source(hit: dict) -> dict:
    """A hit's _source, or its shown fields from its stored fields (`fetched`)."""
    if "_source" in hit:
        return hit["_source"] or {}
    from indexing.layout import shown_from_stored

    return shown_from_stored(hit.get("fields") or {})


def as_engine(client) -> Engine:
    """`client` if it is an Engine, else the adapter for a bare client of a known library."""
    if isinstance(client, Engine):
        return client
    spec = spec_for_library(type(client).__module__.split(".")[0])
    if spec is None:
        raise ConfigError(f"no engine adapter for a {type(client).__name__} client")
    return engine_class(spec.name)(client)


def connect(
    options: ConnectionOptions | None = None, *, engine: str = DEFAULT_ENGINE, check: bool = True
) -> Engine:
    """A connected adapter for `engine` (see Engine.connect); without `options`, at the
    engine's URL by the URL rule (indexing.registry.engine_url)."""
    if options is None:
        import os

        from indexing.registry import engine_url

        options = ConnectionOptions(url=engine_url(None, os.environ, engine))
    return engine_class(engine).connect(options, check=check)


def connect_client(
    options: ConnectionOptions | None = None, *, check: bool = True, engine: str = DEFAULT_ENGINE
):
    """The official client of `engine` for `options` (the adapter's `client`)."""
    return connect(options, engine=engine, check=check).client


def error_reason(body: object, fallback: str) -> str:
    """`type: reason` of the first root cause in an engine's error response body (both engines
    answer a refused request in this shape), or `fallback` when the body has none."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        causes = error.get("root_cause") or [error]
        cause = causes[0] if isinstance(causes[0], dict) else {}
        return f"{cause.get('type', 'error')}: {cause.get('reason', fallback)}"
    return fallback

"""The one search path that `sparse-mm query` and `sparse-mm serve` share: a `Searcher` holds the
model, its query encoder (loaded once, on first use), the index (or alias) and the engine
adapter, and turns a text into a `SearchResponse`; `indexing.render.response_dict` is the JSON
shape both print.

Every answer is checked against the model binding (indexing.binding) of the concrete index
that gave it (each hit names it), so an alias moved to another model's index while a searcher
runs is noticed on the first answer from it, at no extra request: the searcher then refuses
it in one line, or, with `follow=True` (what `sparse-mm serve` does), loads the model that
index is bound to from its recorded path (its checksums checked), and answers with it: a new
model goes live behind an alias without restarting the service.

The encoder and the model's heads are torch modules with mutable state (the tokenizer's cache,
autograd's bookkeeping); a lock per model makes sure one thread at a time runs them, so a
threaded server can share one `Searcher`. The engine call takes no lock: the engines' clients
are thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from indexing.binding import BINDING_KEY, OVERRIDE, describe, mismatch_line, model_binding
from indexing.engine import Engine, as_engine
from indexing.filters import SearchFilter
from indexing.layout import stored_shown
from indexing.search import (
    QueryVectors,
    SearchOptions,
    SearchResponse,
    encode_query,
    resolved,
    search,
)
from sparse_mm.errors import ConfigError, EngineError, ModelMismatchError, SparseMMError

log = logging.getLogger("sparse_mm.searcher")
MAX_ALIAS_MOVES = 3  # answers re-asked within one search when the alias keeps moving


@dataclass(frozen=True)
class Timings:
    """Milliseconds: the query's encoding, the engine's own `took` (summed over its requests),
    the round trips to the engine as the client saw them, and the whole search."""

    encode_ms: float
    engine_ms: float
    round_trip_ms: float
    total_ms: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Answer:
    response: SearchResponse
    timings: Timings


class ServingModel:
    """One model with its binding and its query encoder (loaded on first use, behind a lock)."""

    def __init__(self, model, encoder=None) -> None:
        self.model = model
        self.binding = model_binding(model)
        self.key = self.binding["weights_sha256"]
        self._encoder = encoder
        self._lock = threading.Lock()

    def encode(self, text: str) -> QueryVectors:
        with self._lock:
            return encode_query(self.model, self._load_encoder(), text)

    def load_encoder(self):
        with self._lock:
            return self._load_encoder()

    def _load_encoder(self):
        if self._encoder is None:
            from sparse_mm.encoders import load_query_encoder

            self._encoder = load_query_encoder(self.model)
        return self._encoder


class Searcher:
    """Search `index` (an index or an alias) with `model`'s scores. `client` (an engine
    adapter or a bare client) may come later (`connect`), so that a caller can encode before
    it contacts an engine. `follow`: when the index answers from a concrete index bound to
    another model, load that model and answer with it (else: ModelMismatchError)."""

    def __init__(self, model, index: str, client=None, encoder=None, *, follow=False) -> None:
        self.index = index
        self.follow = follow
        self._engine: Engine | None = as_engine(client) if client is not None else None
        self._serving = ServingModel(model, encoder)
        self._models = {self._serving.key: self._serving}
        self._checked: dict[str, str] = {}  # concrete index -> weights sha256 it is bound to
        self._mappings: dict[str, dict] = {}  # concrete index -> its _meta and properties
        self._latest: str | None = None  # the concrete index that answered last
        self._counts: dict[str, int] = {}  # concrete index -> its documents, counted once
        self._unchecked = False  # --allow-model-mismatch: answers are not checked
        self._adopting = threading.Lock()

    @property
    def model(self):
        """The model answering now (another one once the searcher followed an alias)."""
        return self._serving.model

    @property
    def binding(self) -> dict:
        return self._serving.binding

    def connect(self, client) -> Searcher:
        self._engine = as_engine(client)
        return self

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise ConfigError("the searcher has no engine client yet (Searcher.connect)")
        return self._engine

    def encode(self, text: str) -> QueryVectors:
        """The query's unit dense vector (D,) and term weights, from the model's query encoder
        (loaded on the first call)."""
        return self._serving.encode(text)

    def load_encoder(self):
        """The model's query encoder, loaded now if it was not yet."""
        return self._serving.load_encoder()

    # -------------------------------------------------------------- binding
    def bind(self, *, allow_mismatch: bool = False) -> str | None:
        """Check that the index is bound to the model (every concrete index behind an alias);
        None when it is, else ModelMismatchError with the one line naming both models; with
        `allow_mismatch`, that line as a warning (and answers are no longer checked)."""
        mappings = self.engine.concrete_mappings(self.index)
        if not mappings:
            raise self.engine.missing_index(self.index)
        for concrete, mapping in mappings.items():
            line = self._remember(concrete, mapping)
            if line is None:
                continue
            if self.follow and not allow_mismatch and self._checked[concrete]:
                self._adopt(concrete)
                continue
            if not allow_mismatch:
                raise ModelMismatchError(f"{line}; {OVERRIDE} overrides this (unsafe)")
            self._unchecked = True
            return f"warning: {line}; going on because of {OVERRIDE} (unsafe: scores may be wrong)"
        return None

    def _remember(self, concrete: str, mapping: dict) -> str | None:
        """Record `concrete`'s mapping; the mismatch line for the current model, or None.
        DataError when it is not a sparse-mm index at all."""
        from indexing.index import check_meta

        meta = {**mapping.get("_meta", {}), "_properties": mapping.get("properties", {})}
        check_meta(self.engine, concrete, meta)
        self._mappings[concrete] = meta
        self._latest = concrete
        recorded = meta.get(BINDING_KEY) or {}
        self._checked[concrete] = recorded.get("weights_sha256") or ""
        return mismatch_line(concrete, meta, self._serving.binding, self.index)

    def _documents(self) -> int | None:
        """The index's documents (for the candidate window), counted once per concrete index;
        None before the searcher met the index."""
        if self._latest is None:
            return None
        if self._latest not in self._counts:
            self._counts[self._latest] = self.engine.count(self._latest)
        return self._counts[self._latest]

    def index_meta(self) -> dict:
        """The `_meta` (and `_properties`) of the concrete index that answered last (or that
        `bind` checked)."""
        if self._latest is None:
            from indexing.index import index_meta

            return index_meta(self.engine, self.index)
        return self._mappings[self._latest]

    # -------------------------------------------------------------- searching
    def options(self, search_filter: SearchFilter | None = None, **given) -> SearchOptions:
        """SearchOptions from `given`, with `search_filter` resolved against the index's
        mapping (a field it lacks is one line); in dense mode (not exact) with no ef_search
        given, the ef_search the index's graph was measured with (its `_meta`)."""
        stored = stored_shown(self.index_meta().get("_properties", {}))
        options = resolved(SearchOptions(**given, stored_fields=stored), self._documents())
        if search_filter:
            properties = self.index_meta().get("_properties", {})
            options = replace(options, filter=search_filter.resolve(properties))
        if options.mode == "dense" and not options.exact and options.ef_search is None:
            ef_search = self.index_meta().get("hnsw", {}).get("ef_search")
            options = replace(options, ef_search=ef_search)
        return options

    def run(self, vectors: QueryVectors, options: SearchOptions) -> SearchResponse:
        """Search the index with already encoded `vectors` (of the current model), checking
        the answer's binding (no following: the vectors are this model's)."""
        serving = self._serving
        response = search(
            self.engine, self.index, vectors, options, *serving.model.serving_weights()
        )
        moved = self._answer_model(response, serving)
        if moved is not serving:
            raise self._moved_error(response)
        return response

    def search(self, text: str, search_filter: SearchFilter | None = None, **given) -> Answer:
        """Encode `text`, then search with `options(search_filter, **given)`, timed; an answer
        from an index bound to another model is refused, or followed (see the class doc)."""
        began = time.perf_counter()
        encode_ms = 0.0
        for _ in range(MAX_ALIAS_MOVES):
            serving = self._serving
            started = time.perf_counter()
            vectors = serving.encode(text)
            encode_ms += (time.perf_counter() - started) * 1000
            options = self.options(search_filter, **given)
            weights = serving.model.serving_weights()
            response = search(self.engine, self.index, vectors, options, *weights)
            if self._answer_model(response, serving) is serving:
                total = (time.perf_counter() - began) * 1000
                timings = Timings(encode_ms, float(response.took_ms), response.client_ms, total)
                return Answer(response, timings)
        raise EngineError(
            f"{self.index!r} moved to another model's index {MAX_ALIAS_MOVES} times during one "
            "search; try again"
        )

    def _answer_model(self, response: SearchResponse, serving: ServingModel) -> ServingModel:
        """The model that the index which gave `response` is bound to: `serving` when the
        answer is right for its vectors; with `follow`, the model to ask again with."""
        if self._unchecked:
            return serving
        answered = {h.index for h in response.hits if h.index}
        if not response.hits:  # nothing says which index answered: ask the engine
            answered = set(self.engine.concrete_mappings(self.index))
        for concrete in answered:
            if concrete not in self._checked:
                mapping = self.engine.concrete_mappings(concrete).get(concrete, {})
                self._remember(concrete, mapping)
            key = self._checked[concrete]
            if key == serving.key:
                continue
            if not self.follow or not key:  # an index with no recorded model cannot be followed
                raise self._moved_error(response, concrete)
            return self._adopt(concrete)
        return serving

    def _moved_error(self, response: SearchResponse, concrete: str | None = None):
        concrete = concrete or next((h.index for h in response.hits), self.index)
        meta = self._mappings.get(concrete, {})
        line = mismatch_line(concrete, meta, self._serving.binding, self.index)
        return ModelMismatchError(
            f"{line or 'the index moved to another model'} (the alias moved while searching)"
        )

    def _adopt(self, concrete: str) -> ServingModel:
        """The model `concrete` is bound to, loaded from its recorded path (checksums
        compared), now the searcher's current model."""
        with self._adopting:
            key = self._checked[concrete]
            if key in self._models:
                self._serving = self._models[key]
                return self._serving
            recorded = self._mappings[concrete].get(BINDING_KEY) or {}
            serving = _load_bound_model(concrete, recorded)
            self._models[key] = serving
            log.warning(
                "index %s now answers for %s: bound to model %s; loaded it (was %s)",
                self.index, concrete, describe(recorded), describe(self._serving.binding),
            )  # fmt: skip
            self._serving = serving
            return serving


def _load_bound_model(concrete: str, recorded: dict) -> ServingModel:
    from indexing.binding import binding_differences
    from sparse_mm.checkpoint import load_model

    if not recorded.get("weights_sha256"):
        raise ModelMismatchError(f"index {concrete!r} records no model; it cannot be followed")
    path = Path(str(recorded.get("path", "")))
    try:
        serving = ServingModel(load_model(path))
    except SparseMMError as exc:
        raise ModelMismatchError(
            f"index {concrete!r} is bound to model {describe(recorded)}, which cannot be loaded "
            f"here ({exc}); serve it with --model"
        ) from None
    differs = binding_differences(recorded, serving.binding)
    if differs:
        raise ModelMismatchError(
            f"index {concrete!r} is bound to model {describe(recorded)}, but {path} now holds "
            f"another ({', '.join(differs)} differ); serve it with its own --model"
        )
    serving.load_encoder()
    return serving

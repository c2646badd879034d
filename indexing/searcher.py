"""The one search path that `sparse-mm query` and `sparse-mm serve` share: a `Searcher` holds the
model, its query encoder (loaded once, on first use), the index and the engine adapter, and
turns a text into a `SearchResponse`; `indexing.render.response_dict` is
the JSON shape both print.

The encoder and the model's heads are torch modules with mutable state (the tokenizer's cache,
autograd's bookkeeping); a lock makes sure one thread at a time runs them, so a threaded server
can share one `Searcher`. The engine call takes no lock: the engines' clients are thread-safe.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, replace

from indexing.engine import Engine, as_engine
from indexing.search import QueryVectors, SearchOptions, SearchResponse, encode_query, search
from sparse_mm.errors import ConfigError


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


class Searcher:
    """Search `index` with `model`'s scores. `client` (an engine adapter or a bare client) may
    come later (`connect`), so that a caller can encode before it contacts an engine."""

    def __init__(self, model, index: str, client=None, encoder=None) -> None:
        self.model = model
        self.index = index
        self._engine: Engine | None = as_engine(client) if client is not None else None
        self._encoder = encoder
        self._lock = threading.Lock()  # the encoder and the heads: one thread at a time

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
        with self._lock:
            return encode_query(self.model, self._load_encoder(), text)

    def load_encoder(self):
        """The model's query encoder, loaded now if it was not yet."""
        with self._lock:
            return self._load_encoder()

    def _load_encoder(self):
        if self._encoder is None:
            from sparse_mm.encoders import load_query_encoder

            self._encoder = load_query_encoder(self.model)
        return self._encoder

    def options(self, **given) -> SearchOptions:
        """SearchOptions from `given`; in dense mode (not exact) with no ef_search given, the
        ef_search the index's graph was measured with (its `_meta`), as `query` always did."""
        options = SearchOptions(**given)
        if options.mode == "dense" and not options.exact and options.ef_search is None:
            from indexing.index import index_meta

            ef_search = index_meta(self.engine, self.index).get("hnsw", {}).get("ef_search")
            options = replace(options, ef_search=ef_search)
        return options

    def run(self, vectors: QueryVectors, options: SearchOptions) -> SearchResponse:
        """Search the index with already encoded `vectors`."""
        return search(self.engine, self.index, vectors, options, *self.model.serving_weights())

    def search(self, text: str, **given) -> Answer:
        """Encode `text`, then search with SearchOptions(**given) (`options`), timed."""
        began = time.perf_counter()
        vectors = self.encode(text)
        encoded = time.perf_counter()
        response = self.run(vectors, self.options(**given))
        total = (time.perf_counter() - began) * 1000
        timings = Timings(
            encode_ms=(encoded - began) * 1000,
            engine_ms=float(response.took_ms),
            round_trip_ms=response.client_ms,
            total_ms=total,
        )
        return Answer(response, timings)

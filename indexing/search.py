"""Running a query against any engine (through its adapter) and explaining its hits from the
stored vectors.

An explanation is recomputed from each hit's stored dense vector and term weights (not from
`_explain`): the dense part w1 * cos, and per shared term w2 * query weight * stored weight,
the stored weight as the engine stores it (`Engine.stored_weights`). The parts add up to the
reported score.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from indexing.codec import decode_term
from indexing.engine import as_engine
from indexing.filters import ResolvedFilter
from indexing.layout import DENSE_FIELD, SHOWN_FIELDS, SPARSE_FIELD
from indexing.query_terms import (
    DEFAULT_MAX_CLAUSES,
    EXACT_FILTERED,
    MODES,
    PruneReport,
    candidate_window,
    prune_terms,
)
from sparse_mm.errors import ConfigError, EngineError
from sparse_mm.scores import quantize_feature


@dataclass(frozen=True)
class QueryVectors:
    """A query as the model sees it: a unit dense vector (D,) and term -> weight (> 0), and the
    words of its text that the query encoder did not know (`sparse_mm.encoders.UnknownWord`)."""

    dense: Sequence[float]
    terms: Mapping[str, float]
    unknown_words: tuple = ()


@dataclass(frozen=True)
class SearchOptions:
    mode: str = "hybrid"
    k: int = 10
    # hybrid: the candidates rescored exactly, and the neighbours the k-NN clause adds to them
    # (None: query_terms.candidate_window's, for k and the index's size when known)
    window: int | None = None
    knn_k: int | None = None
    # HNSW candidates per k-NN search, at least k (hybrid: at least the window). None: the
    # window in hybrid, DENSE_EF_SEARCH in dense mode.
    ef_search: int | None = None
    exact: bool = False  # hybrid/dense: brute force over every document
    query_top_k: int | None = None
    query_min_weight: float = 0.0
    max_clauses: int = DEFAULT_MAX_CLAUSES
    explain: bool = True
    # only the documents this keeps, in every phase (indexing.filters; resolved against the
    # index's mapping by Searcher.options)
    filter: ResolvedFilter | None = None
    profile: bool = False  # ask the engine's profile API; each request's profile is returned
    # the index stores the shown fields apart from _source (layout.stored_shown): without
    # explanations, read them so (set by Searcher.options from the mapping)
    stored_fields: bool = False


@dataclass
class Match:
    term: str
    query_weight: float
    doc_weight: float  # as stored by the engine
    contribution: float  # (w2 *) query weight * stored weight


@dataclass
class Hit:
    id: str
    score: float  # the model's score for the mode (integrated for hybrid)
    dense_part: float | None = None
    sparse_part: float | None = None
    matches: list[Match] = field(default_factory=list)
    source: dict = field(default_factory=dict)
    index: str = ""  # the concrete index that answered (behind an alias: its target)


@dataclass
class SearchResponse:
    mode: str
    hits: list[Hit]
    took_ms: int
    client_ms: float
    pruning: PruneReport | None = None
    round_trips: int = 1
    unknown_words: tuple = ()  # the query's words the encoder did not know (UnknownWord)
    profiles: list = field(default_factory=list)  # with SearchOptions.profile: per request


def encode_query(model, encoder, text: str) -> QueryVectors:
    """Text -> pre-projection embedding (the model's query encoder) -> dense + term weights,
    with the words the encoder did not know."""
    from sparse_mm.encoders import unknown_words

    embedding = encoder.encode_texts([text])
    vectors = vectors_from_embedding(model, embedding)
    return dataclasses.replace(vectors, unknown_words=tuple(unknown_words(encoder, text)))


def vectors_from_embedding(model, embedding: torch.Tensor) -> QueryVectors:
    """(1, in_dim) pre-projection text embedding -> the query's dense vector and term weights."""
    with torch.no_grad():
        dense = model.heads.dense(embedding.float(), "text")
        weights = model.heads.sparse(dense)[0]
    nonzero = torch.nonzero(weights > 0).flatten().tolist()
    values = weights[nonzero].tolist()
    terms = {model.vocab.tokens[i]: w for i, w in zip(nonzero, values, strict=True)}
    return QueryVectors(dense[0].tolist(), terms)


def resolved(options: SearchOptions, n_docs: int | None = None) -> SearchOptions:
    """`options` with the hybrid window and k-NN neighbours it left open filled in
    (query_terms.candidate_window, for its k and `n_docs` when known)."""
    window, knn_k = candidate_window(options.k, n_docs)
    return dataclasses.replace(
        options, window=options.window or window, knn_k=options.knn_k or knn_k
    )


def search(client, index: str, query: QueryVectors, options: SearchOptions, w1: float, w2: float):
    """Run `query` in `options.mode` on `client` (an engine adapter or a bare client); scores
    are the model's (see indexing.query_terms). A filter that keeps at most EXACT_FILTERED
    documents makes hybrid and dense search them exactly (one count request first)."""
    if options.mode not in MODES:
        raise ConfigError(f"unknown mode {options.mode!r}; expected hybrid, sparse or dense")
    engine = as_engine(client)
    options = resolved(options)
    few = options.filter and options.mode != "sparse" and not options.exact
    if few and engine.count(index, options.filter.query()) <= EXACT_FILTERED:
        options = dataclasses.replace(options, exact=True)
    terms, report = prune_terms(
        query.terms,
        top_k=options.query_top_k,
        min_weight=options.query_min_weight,
        max_clauses=options.max_clauses,
    )
    shown = list(SHOWN_FIELDS)
    source = [DENSE_FIELD, SPARSE_FIELD, *shown] if options.explain else shown
    began = time.perf_counter()
    result = engine.search(index, query.dense, terms, options, w1, w2, source)
    client_ms = (time.perf_counter() - began) * 1000
    for h in result.hits:
        if not isinstance(h.score, (int, float)) or not math.isfinite(h.score):
            raise EngineError(
                f"document {h.id!r} scored {h.score}: its stored term weights times the "
                "query's overflow the engine's float32 scores; re-ingest with sane weights"
            )
    hits = [Hit(h.id, h.score, source=h.source, index=h.index) for h in result.hits]
    if options.explain:
        for hit in hits:
            explain(hit, query.dense, terms, options.mode, w1, w2, engine.stored_weights)
    return SearchResponse(
        options.mode,
        hits,
        result.took_ms,
        client_ms,
        report,
        result.round_trips,
        query.unknown_words,
        result.profiles,
    )


def explain(
    hit: Hit,
    dense: Sequence[float],
    terms: Mapping[str, float],
    mode: str,
    w1: float,
    w2: float,
    stored_weights: Callable[[torch.Tensor], torch.Tensor] = quantize_feature,
) -> None:
    """Fill `hit`'s dense part, sparse part and per-term matches from its stored vectors
    (`stored_weights`: what the engine keeps of a document's term weights)."""
    stored = hit.source.get(SPARSE_FIELD, {})
    names = [name for name in stored if decode_term(name) in terms]
    doc_weights = stored_weights(torch.tensor([stored[n] for n in names], dtype=torch.float32))
    scale = w2 if mode == "hybrid" else 1.0
    hit.matches = sorted(
        (
            Match(decode_term(n), terms[decode_term(n)], dw, scale * terms[decode_term(n)] * dw)
            for n, dw in zip(names, doc_weights.tolist(), strict=True)
        ),
        key=lambda m: -m.contribution,
    )
    cos = float(
        np.dot(
            np.asarray(dense, dtype=np.float64),
            np.asarray(hit.source[DENSE_FIELD], dtype=np.float64),
        )
    )
    hit.sparse_part = sum(m.contribution for m in hit.matches) if mode != "dense" else 0.0
    hit.dense_part = {"hybrid": w1 * cos, "dense": cos}.get(mode, 0.0)

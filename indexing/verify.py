"""Verifying a freshly built index before an alias is moved to it: its document count, and a
sample of queries whose engine answers must equal exact in-memory search.

The exact reference is computed while the index is built (`ExactSample.observe`, called by
the document builder with what each batch's documents hold), so that verifying costs no second
pass over the collection and no more memory than the sample's running top-k: the integrated
score w1 * cos + w2 * sparse with the stored weights quantised as the engine stores them, ties
to the earlier document, as sparse_mm.retriever.ExactRetriever ranks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from indexing.documents import TermBatch
from sparse_mm.errors import EngineError
from sparse_mm.scores import quantize_feature

SCORE_TOLERANCE = 1e-4  # the parity tolerance of the benchmark and the demo check
# At least this share of the sample must give the exact top-k ids: the hybrid's candidate
# window is exact in >= 99% of queries at 1M (bench/results/peers); 90% of 20 leaves room for
# one or two HNSW misses without letting a broken index through (its scores, checked for every
# hit, would not match at all).
MIN_IDENTICAL = 0.9


class ExactSample:
    """The exact hybrid top-k of a few queries over the documents observed so far."""

    def __init__(self, model, query_emb: torch.Tensor, k: int = 10) -> None:
        from indexing.search import vectors_from_embedding

        self.k = k
        self.w1, self.w2 = model.serving_weights()
        self.vocab_size = model.config.heads.vocab_size
        self.queries = [vectors_from_embedding(model, row[None]) for row in query_emb.float()]
        index = {t: i for i, t in enumerate(model.vocab.tokens)}
        q_sparse = torch.zeros(self.vocab_size, len(self.queries))
        for j, q in enumerate(self.queries):
            for term, weight in q.terms.items():
                q_sparse[index[term], j] = weight
        self.q_dense = torch.tensor([list(q.dense) for q in self.queries]).t()  # (D, Q)
        self.q_sparse = q_sparse  # (V, Q)
        self.scores = torch.full((len(self.queries), 0), float("-inf"))
        self.ids: list[str] = []
        self.positions = torch.zeros((len(self.queries), 0), dtype=torch.int64)
        self.seen = 0

    def observe(self, ids: Sequence[str], dense: torch.Tensor, terms: TermBatch) -> None:
        """One batch as its documents hold it: (B, D) dense rows, the kept term weights."""
        quantized = quantize_feature(torch.from_numpy(terms.vals)).numpy()
        stored = TermBatch(terms.crow, terms.cols, quantized)
        sparse = stored.tensor(self.vocab_size) @ self.q_sparse  # (B, Q)
        batch = (self.w1 * (dense.float() @ self.q_dense) + self.w2 * sparse).t()  # (Q, B)
        positions = torch.arange(self.seen, self.seen + len(ids)).expand(len(self.queries), -1)
        self.ids.extend(str(i) for i in ids)
        self.seen += len(ids)
        scores = torch.cat([self.scores, batch], dim=1)
        where = torch.cat([self.positions, positions], dim=1)
        # best first, ties to the earlier document: sort by position, then stably by score
        order = where.argsort(dim=1)
        scores, where = scores.gather(1, order), where.gather(1, order)
        best = scores.argsort(dim=1, descending=True, stable=True)[:, : self.k]
        self.scores, self.positions = scores.gather(1, best), where.gather(1, best)

    def expected(self, j: int) -> list[tuple[str, float]]:
        """Query j's exact top-k: (id, integrated score), best first."""
        return [
            (self.ids[p], s)
            for p, s in zip(self.positions[j].tolist(), self.scores[j].tolist(), strict=True)
        ]


@dataclass(frozen=True)
class Verification:
    documents: int
    expected_documents: int
    queries: int = 0
    identical: int = 0  # queries whose top-k ids equal exact search (ties aside)
    max_score_error: float = 0.0  # over the hits found in both

    @property
    def passed(self) -> bool:
        if self.documents != self.expected_documents:
            return False
        if not self.queries:
            return True
        return (
            self.identical >= MIN_IDENTICAL * self.queries
            and self.max_score_error <= SCORE_TOLERANCE
        )

    def describe(self) -> str:
        text = f"{self.documents:,} of {self.expected_documents:,} documents"
        if not self.queries:
            return text + "; no sample queries (the collection has no caption embeddings)"
        return (
            f"{text}; {self.identical} of {self.queries} sample queries give the exact top "
            f"10 (at least {MIN_IDENTICAL:.0%} needed), scores within "
            f"{self.max_score_error:.1e} of exact (at most {SCORE_TOLERANCE:g})"
        )


def verify_index(engine, index: str, sample: ExactSample | None, expected_documents: int):
    """Count the documents of `index` and run the sample's queries on it (hybrid, the default
    window): a Verification."""
    from indexing.search import SearchOptions, search

    engine.refresh(index)
    documents = engine.count(index)
    if sample is None or not sample.queries:
        return Verification(documents, expected_documents)
    identical, worst, checked = 0, 0.0, 0
    options = SearchOptions(mode="hybrid", k=sample.k, explain=False, stored_fields=True)
    for j, vectors in enumerate(sample.queries):
        if not vectors.terms:  # a caption with no terms has no hybrid query
            continue
        checked += 1
        found = search(engine, index, vectors, options, sample.w1, sample.w2)
        got = [(h.id, h.score) for h in found.hits]
        exact = sample.expected(j)
        exact_scores = dict(exact)
        errors = [abs(s - exact_scores[i]) for i, s in got if i in exact_scores]
        worst = max([worst, *errors])
        identical += same_ranking(got, exact)
    return Verification(documents, expected_documents, checked, identical, worst)


def same_ranking(got: list[tuple[str, float]], exact: list[tuple[str, float]]) -> bool:
    """The same ids in the same order, where ids may swap only between equal scores."""
    if len(got) != len(exact):
        return False
    for (gid, gscore), (eid, escore) in zip(got, exact, strict=True):
        if abs(gscore - escore) > SCORE_TOLERANCE:
            return False
        tied = {i for i, s in exact if abs(s - gscore) <= SCORE_TOLERANCE}
        if gid != eid and gid not in tied:
            return False
    return True


def verified_or_error(result: Verification, index: str) -> None:
    if not result.passed:
        raise EngineError(
            f"index {index!r} failed verification ({result.describe()}); the alias was not "
            "moved and the index is kept for inspection"
        )

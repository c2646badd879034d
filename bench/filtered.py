"""Filtered hybrid search in the benchmark: every document carries `meta.bucket` (0-999, from
its id), and a filter `bucket < n` keeps about n / 1000 of the collection: 50%, 5% and 0.1%.
The engine's filtered hybrid is timed and compared with exact in-memory search over the same
kept documents (sparse_mm.retriever.ExactRetriever.subset), with the same predicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from bench.metrics import K, aggregate_parity, percentiles, query_parity
from indexing.filters import ResolvedFilter
from indexing.search import SearchOptions
from sparse_mm.retriever import top_k

FIELD = "bucket"
FIELDS = ((FIELD, "long"),)  # the index's metadata fields (IndexSettings.fields)
SELECTIVITY = {"50%": 500, "5%": 50, "0.1%": 1}  # kept share -> the bound of `bucket < n`
BLOCK = 32  # queries whose exact score rows are held at once


def bucket(doc_id: str) -> int:
    """0-999, spread evenly over any ids (the first bytes of their sha256)."""
    return int.from_bytes(hashlib.sha256(str(doc_id).encode()).digest()[:4], "big") % 1000


def buckets(ids: Sequence[str]) -> torch.Tensor:
    return torch.tensor([bucket(i) for i in ids], dtype=torch.int64)


def bucket_filter(below: int) -> ResolvedFilter:
    return ResolvedFilter(ranges=((f"meta.{FIELD}", (("lt", below),)),))


def measure_filtered(run_queries, client, name, queries, retriever, keys, warmup, w1, w2):
    """{selectivity: kept share, latency and took percentiles, parity against exact search over
    the kept documents} of the filtered hybrid, every query once (after `warmup` of them).
    `keys`: each document's bucket (N,); `run_queries`: bench.engine.run_queries."""
    out = {}
    for label, below in SELECTIVITY.items():
        keep = keys < below
        kept = retriever.subset(keep)
        options = SearchOptions(
            mode="hybrid", k=K, explain=False, filter=bucket_filter(below), stored_fields=True
        )
        run_queries(client, name, queries.vectors[:warmup], options, w1, w2)
        timed = run_queries(client, name, queries.vectors, options, w1, w2)
        parity = _parity(kept, queries, timed)
        out[label] = {
            "filter": f"{FIELD}<{below}",
            "kept_docs": len(kept),
            "kept_share": len(kept) / max(len(retriever), 1),
            "latency_ms": percentiles(timed.client_ms),
            "took_ms": percentiles(timed.took_ms),
            **parity,
        }
    return out


def _parity(kept, queries, timed) -> dict:
    from bench.reference import pair_scores  # bench.reference imports bench.engine, which this

    position = {doc: i for i, doc in enumerate(kept.ids)}
    per_query = []
    for lo in range(0, len(queries), BLOCK):
        rows = list(range(lo, min(lo + BLOCK, len(queries))))
        scores = kept.w1 * kept.dense_scores(queries.dense[rows]) + kept.w2 * kept.sparse_scores(
            queries.sparse[rows]
        )
        values, idx = top_k(scores, min(K, len(kept))) if len(kept) else (scores, scores.long())
        for j, row in enumerate(rows):
            ids = timed.ids[row]
            outside = [i for i in ids if i not in position]
            if outside:  # a hit the filter does not keep: the worst parity failure
                raise AssertionError(f"filtered hybrid returned {outside[:3]} outside the filter")
            docs = torch.tensor([position[i] for i in ids], dtype=torch.int64)
            exact_of = dict(
                zip(ids, pair_scores(kept, queries, row, docs, "hybrid").tolist(), strict=True)
            )
            exact_ids = [kept.ids[i] for i in idx[j].tolist()]
            k = max(min(K, len(kept)), 1)
            top = values[j].tolist()
            per_query.append(query_parity(ids, timed.scores[row], exact_ids, top, exact_of, k))
    return aggregate_parity(per_query)

"""Text -> image retrieval metrics with one relevant image per caption, and sparsity figures.

Computed exactly in torch from score matrices, chunk by chunk over the queries, so that every
epoch's validation is cheap; tests/unit/test_metrics.py cross-checks the numbers with ranx.
Ties are broken by the lower image index, as `torch.topk` and the engine-side tests do.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

CUTOFFS = (1, 5, 10)


def ranks_of_relevant(scores: Tensor, relevant: Tensor) -> Tensor:
    """1-based rank of each query's relevant item. scores (Q, N), relevant (Q,) -> (Q,) long."""
    rel_scores = scores.gather(1, relevant[:, None])
    higher = (scores > rel_scores).sum(dim=1)
    index = torch.arange(scores.shape[1], device=scores.device)[None, :]
    ties_before = ((scores == rel_scores) & (index < relevant[:, None])).sum(dim=1)
    return higher + ties_before + 1


def retrieval_metrics(ranks: Tensor) -> dict[str, float]:
    """R@1/5/10 (fractions) and MRR@10 from 1-based ranks (Q,)."""
    ranks = ranks.double()
    out = {f"R@{k}": float((ranks <= k).double().mean()) for k in CUTOFFS}
    out["MRR@10"] = float(torch.where(ranks <= 10, 1.0 / ranks, torch.zeros_like(ranks)).mean())
    return out


def chunked_ranks(
    score_fn: Callable[[slice], Tensor], relevant: Tensor, n_queries: int, chunk: int = 1024
) -> Tensor:
    """Ranks for all queries, computing the (chunk, N) score block of each slice at a time."""
    parts = []
    for start in range(0, n_queries, chunk):
        part = slice(start, min(start + chunk, n_queries))
        parts.append(ranks_of_relevant(score_fn(part), relevant[part].to(torch.long)))
    return torch.cat(parts).cpu()


def sparsity(query_terms: Tensor, doc_terms: Tensor) -> dict[str, float]:
    """Mean non-zero terms per query / per document, and FLOPs: the expected number of
    multiplications per query-document pair, sum_t P(t active in a query) * P(t in a doc).

    Inputs (Q, V) and (N, V), dense or torch sparse (COO/CSR)."""
    q_active = _active_fraction(query_terms)
    d_active = _active_fraction(doc_terms)
    return {
        "query_terms": float(q_active.sum()),
        "doc_terms": float(d_active.sum()),
        "flops": float((q_active * d_active).sum()),
    }


def _active_fraction(terms: Tensor) -> Tensor:
    """(V,) fraction of rows in which each term is non-zero."""
    if terms.layout == torch.sparse_csr:
        cols = terms.col_indices()[terms.values() != 0]
        counts = torch.bincount(cols, minlength=terms.shape[1])
    elif terms.is_sparse:
        coalesced = terms.coalesce()
        cols = coalesced.indices()[1][coalesced.values() != 0]
        counts = torch.bincount(cols, minlength=terms.shape[1])
    else:
        counts = (terms != 0).sum(dim=0)
    return counts.double() / max(1, terms.shape[0])

"""The in-memory side of a run: the exact retriever (sparse_mm.retriever.ExactRetriever), with
the stored weights quantised as the engine stores them, so that its scores are the ones the
engine must reproduce.

It is the strongest exact method PyTorch offers per mode: dense is one matrix product with the
(N, D) document matrix; sparse gathers only the query terms' posting columns (CSC) and
scatter-adds them; hybrid is both, summed. Timed as single queries (one call per query, like
an engine request) and batched (`batch` queries per call, where in-memory dense shines).
"""

from __future__ import annotations

import time

import torch

from bench.collection import Collection, Queries
from bench.engine import throughput
from bench.metrics import K, percentiles
from sparse_mm.retriever import MODES, ExactRetriever


def build_reference(collection: Collection, w1: float, w2: float, device: str = "cpu"):
    began = time.perf_counter()
    enc = collection.encoded
    retriever = ExactRetriever(
        collection.ids, enc.dense, enc.sparse, w1=w1, w2=w2, quantize=True, device=device
    )
    return retriever, time.perf_counter() - began


def exact_scores(retriever: ExactRetriever, queries: Queries, rows, mode: str) -> torch.Tensor:
    """(len(rows), N) exact scores of the chosen queries for `mode`, on CPU."""
    qd, qs = queries.dense[rows], queries.sparse[rows]
    if mode == "dense":
        out = retriever.dense_scores(qd)
    elif mode == "sparse":
        out = retriever.sparse_scores(qs)
    else:
        out = retriever.w1 * retriever.dense_scores(qd) + retriever.w2 * retriever.sparse_scores(qs)
    return out.cpu()


def pair_scores(
    retriever: ExactRetriever, queries: Queries, row: int, docs: torch.Tensor, mode: str
) -> torch.Tensor:
    """(M,) exact scores of query `row` with the documents at positions `docs` (M,) only: the
    same numbers as `exact_scores(...)[0, docs]` (up to float rounding), without scoring all N
    (a parity check needs the scores of the hits an engine returned, at 1M for every mode and
    grid point). Sparse reads only the query terms' postings, matched against `docs`."""
    docs = docs.to(torch.int64)
    dense = retriever.dense[docs].cpu() @ queries.dense[row].float()
    if mode == "dense":
        return dense
    q = queries.sparse[row]
    sparse = torch.zeros(len(docs))
    if len(docs):
        ordered, order = docs.sort()
        for t in q.nonzero().flatten().tolist():
            lo, hi = int(retriever.col_ptr[t]), int(retriever.col_ptr[t + 1])
            rows = retriever.rows[lo:hi].cpu()
            pos = torch.searchsorted(ordered, rows).clamp_(max=len(docs) - 1)
            hit = ordered[pos] == rows
            sparse.index_add_(0, order[pos[hit]], retriever.values[lo:hi].cpu()[hit] * q[t])
    if mode == "sparse":
        return sparse
    return retriever.w1 * dense + retriever.w2 * sparse


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_reference(
    retriever: ExactRetriever,
    queries: Queries,
    *,
    batch: int = 256,
    clients: tuple[int, ...] = (1, 2, 4),
    modes: tuple[str, ...] = MODES,
    threads: tuple[int, ...] | None = None,
    timing_queries: int | None = None,
    seconds: float | None = None,
) -> dict:
    """Per mode: single-query latency percentiles, qps with 1/2/4 threads, batched qps.

    Timed on the first `timing_queries` queries (all when None; parity uses every query
    elsewhere), each once after a warm-up; qps per client count over a time budget of
    `seconds`, shared by the thread counts tried (each query once when None); one warm-up
    batch, then one timed batch.

    Each measurement is taken with every torch intra-op thread count in `threads` (default:
    1 and all cores) and the best is reported, with the count that gave it: one query's work
    is small, and on a loaded machine a second intra-op thread waiting for a busy core can cost
    tens of milliseconds, while a batch may gain from it."""
    device = retriever.device
    m = len(queries) if timing_queries is None else min(timing_queries, len(queries))
    qd, qs = queries.dense[:m].to(device), queries.sparse[:m].to(device)
    default = torch.get_num_threads()
    threads = threads or tuple(sorted({1, default}))
    out = {}
    try:
        for mode in modes:
            tried = {}
            for t in threads:
                torch.set_num_threads(t)
                # the budget is shared by the thread counts tried
                share = seconds / len(threads) if seconds else None
                tried[t] = _time_mode(retriever, qd, qs, mode, batch, clients, share)
            best = min(tried, key=lambda t: tried[t]["latency_ms"]["p50"])
            result = dict(tried[best], threads=best)
            result["qps_by_clients"] = {
                c: max(x["qps_by_clients"][c] for x in tried.values())
                for c in tried[best]["qps_by_clients"]
            }
            result["qps"] = result["qps_by_clients"].get("1")
            result["batched"] = max((x["batched"] for x in tried.values()), key=lambda b: b["qps"])
            result["by_threads"] = {
                str(t): {
                    "latency_ms": x["latency_ms"],
                    "qps_by_clients": x["qps_by_clients"],
                    "batched_qps": x["batched"]["qps"],
                }
                for t, x in tried.items()
            }
            result["timed_queries"] = m
            result["qps_seconds"] = seconds
            out[mode] = result
    finally:
        torch.set_num_threads(default)
    return out


def _time_mode(
    retriever, qd, qs, mode: str, batch: int, clients: tuple[int, ...], seconds: float | None
) -> dict:
    device, n = retriever.device, qd.shape[0]

    def one(i: int) -> None:
        retriever.search(qd[i : i + 1], qs[i : i + 1], k=K, mode=mode)
        _sync(device)

    for i in range(min(n, 5)):  # warm-up: allocator, kernels, caches
        one(i)
    latencies = []
    for i in range(n):
        began = time.perf_counter()
        one(i)
        latencies.append((time.perf_counter() - began) * 1000)
    qps = {str(c): throughput(one, n, c, seconds) for c in clients}
    reps = -(-batch // n)
    bd, bs = qd.repeat(reps, 1)[:batch], qs.repeat(reps, 1)[:batch]
    retriever.search(bd, bs, k=K, mode=mode)  # warm-up
    _sync(device)
    began = time.perf_counter()
    retriever.search(bd, bs, k=K, mode=mode)
    _sync(device)
    seconds = time.perf_counter() - began
    return {
        "latency_ms": percentiles(latencies),
        "qps": qps.get("1"),
        "qps_by_clients": qps,
        "batched": {
            "batch": batch,
            "seconds": seconds,
            "qps": batch / seconds,
            "threads": torch.get_num_threads(),
        },
    }

"""The work a query does, and the memory-bandwidth limit for that work.

Work per query, per system and mode:

- sparse: postings touched, the sum of the document frequencies of the query's terms (both an
  engine's term-at-a-time/WAND disjunction and the in-memory CSC gather read at most these;
  WAND may skip some, so for an engine it is an upper bound);
- dense: vectors compared. Exact in-memory search compares all N. An engine's HNSW search
  compares an estimated `hnsw_visits(N, ef, m)`: on layer 0 each of the ~ef candidates it
  expands has up to 2m neighbours, plus a greedy descent of ~m per upper layer
  (log N / log m layers). It is an estimate (the engines do not report it), stated as such;
- hybrid: both (the engine's k-NN clause with ef = the window, plus the term postings).

The limit: the time to stream the bytes of that work once from memory at a bandwidth measured
in the same run (`measure_bandwidth`: a large torch copy, read + write bytes over time). A
posting is counted as 8 bytes (a 4-byte document id and a 4-byte weight), a vector as 4 * D
bytes (float32). Real systems also pay for random access, decoding and scoring, so the ratio
measured / limit says how far each system is from that floor for the same work.
"""

from __future__ import annotations

import math
import time

import torch

POSTING_BYTES = 8
FLOAT_BYTES = 4


def postings_per_query(docs_csr: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """(Q,) postings touched per query: sum of the document frequencies of its terms
    (docs: CSR (N, V); queries: (Q, V), a term is asked when its weight is > 0)."""
    df = torch.bincount(docs_csr.col_indices(), minlength=docs_csr.shape[1]).double()
    return (queries > 0).double() @ df


def hnsw_visits(n: int, ef: int, m: int) -> float:
    """Estimated vectors compared by one HNSW search for `ef` candidates in a graph of `n`
    vectors with `m` links per node (2m on layer 0); never more than n."""
    if n <= 1:
        return float(n)
    layers = math.log(n) / math.log(max(m, 2))
    return float(min(n, ef * 2 * m + m * layers))


def work_per_query(
    n: int, dim: int, postings_mean: float, *, ef_dense: int, ef_hybrid: int, m: int
) -> dict:
    """Per system ("engine", "exact") and mode: postings and vectors of an average query
    (`ef_dense`, `ef_hybrid`: the HNSW candidates of the dense query and of the hybrid
    query's k-NN clause)."""
    engine_dense = hnsw_visits(n, ef_dense, m)
    engine_hybrid = hnsw_visits(n, ef_hybrid, m)
    return {
        "engine": {
            "dense": {"vectors": engine_dense, "postings": 0.0, "estimate": True},
            "sparse": {"vectors": 0.0, "postings": postings_mean, "estimate": False},
            "hybrid": {"vectors": engine_hybrid, "postings": postings_mean, "estimate": True},
        },
        "exact": {
            "dense": {"vectors": float(n), "postings": 0.0, "estimate": False},
            "sparse": {"vectors": 0.0, "postings": postings_mean, "estimate": False},
            "hybrid": {"vectors": float(n), "postings": postings_mean, "estimate": False},
        },
        "hnsw": {"m": m, "ef_dense": ef_dense, "ef_hybrid": ef_hybrid},
        "dim": dim,
        "bytes_per_posting": POSTING_BYTES,
        "bytes_per_vector": FLOAT_BYTES * dim,
    }


def work_bytes(work: dict, dim: int) -> float:
    """Bytes an amount of work reads: postings * 8 + vectors * 4 * dim."""
    return work["postings"] * POSTING_BYTES + work["vectors"] * FLOAT_BYTES * dim


def against_limit(p50_ms: float, work: dict, dim: int, bandwidth_bytes_s: float) -> dict:
    """Time per unit of work and the ratio of the measured p50 to the bandwidth limit."""
    units = work["postings"] + work["vectors"]
    limit_ms = 1000 * work_bytes(work, dim) / bandwidth_bytes_s if bandwidth_bytes_s else math.nan
    return {
        "p50_ms": p50_ms,
        "units": units,
        "ns_per_unit": 1e6 * p50_ms / units if units else math.nan,
        "bandwidth_limit_ms": limit_ms,
        "x_limit": p50_ms / limit_ms if limit_ms and limit_ms > 0 else math.nan,
    }


def measure_bandwidth(mib: int = 256, repeats: int = 5) -> dict:
    """Memory bandwidth of this machine as torch sees it: the best of `repeats` copies of a
    `mib` MiB float32 tensor, counting the bytes read and written."""
    src = torch.ones(mib * 2**20 // 4)
    dst = torch.empty_like(src)
    best = math.inf
    for _ in range(repeats):
        began = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - began)
    moved = 2 * src.numel() * 4
    return {
        "method": f"torch copy of {mib} MiB float32, best of {repeats} (read + write bytes)",
        "bytes_per_s": moved / best,
        "threads": torch.get_num_threads(),
    }

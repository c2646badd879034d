"""One benchmark run per collection size: ingest, parity, latency, throughput, pruning grid.

Engine and in-memory reference are measured in the same process, one after the other, on the
same machine, so their ratio is meaningful even where absolute times are noisy.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bench.collection import Collection, Queries
from bench.engine import ingest_collection, run_queries, throughput
from bench.metrics import (
    K,
    aggregate_parity,
    fit_linear,
    percentiles,
    query_parity,
    recall_at,
)
from bench.profile import profile_mode, time_variants
from bench.reference import build_reference, exact_scores, time_reference
from indexing.search import SearchOptions, search
from sparse_mm.retriever import MODES, top_k

SCHEMA_VERSION = 1
PARITY_BLOCK = 32  # queries whose full exact score rows are held at once


@dataclass(frozen=True)
class GridPoint:
    mode: str
    query_top_k: int | None = None
    window: int = SearchOptions.window  # the hybrid default (query_terms.DEFAULT_WINDOW)
    ef_search: int | None = None

    def options(self) -> SearchOptions:
        return SearchOptions(
            mode=self.mode,
            k=K,
            window=self.window,
            ef_search=self.ef_search,
            query_top_k=self.query_top_k,
            explain=False,
        )


DEFAULT_GRID = (
    *(GridPoint("sparse", query_top_k=t) for t in (4, 8, 16, 32)),
    *(GridPoint("hybrid", query_top_k=t) for t in (4, 8, 16, 32)),
    *(GridPoint("hybrid", window=w) for w in (10, 25, 50, 200)),
    *(GridPoint("dense", ef_search=e) for e in (16, 32, 64, 256)),
)


@dataclass
class RunOptions:
    index: str = "sparse-mm-bench"
    clients: tuple[int, ...] = (1, 2, 4)
    ingest_clients: int = 2
    batch: int = 256
    reuse_index: bool = False
    keep_index: bool = False
    grid: tuple[GridPoint, ...] = DEFAULT_GRID
    devices: tuple[str, ...] = ("cpu",)
    threads: tuple[int, ...] | None = None  # torch intra-op thread counts to try
    profile_queries: int = 10  # queries sent with the profile API, per mode
    log: Callable[[str], None] = field(default=lambda _m: None)


def run_one(client, model, collection: Collection, queries: Queries, opts: RunOptions) -> dict:
    """All measurements for one collection; returns the run's JSON object."""
    w1, w2 = model.serving_weights()
    n = len(collection)
    name = f"{opts.index}-{n}"
    opts.log(f"[{n:,}] ingest into {name!r}")
    ingest = ingest_collection(
        client, name, model, collection, clients=opts.ingest_clients, reuse=opts.reuse_index
    )
    opts.log(f"[{n:,}] ingest: {ingest.as_dict(collection.encode_seconds)}")
    retriever, build_s = build_reference(collection, w1, w2)
    exact = _exact_top(retriever, queries)
    run: dict = {
        "n_docs": n,
        "n_queries": len(queries),
        "collection": collection.description,
        "index": name,
        "terms_per_doc": collection.encoded.sparse.values().numel() / max(n, 1),
        "terms_per_query": float((queries.sparse > 0).sum(1).float().mean()),
        "ingest": ingest.as_dict(collection.encode_seconds),
        "modes": {},
        "reference": {},
        "seconds": {"source": collection.source_seconds, "reference_build": build_s},
    }
    for mode in MODES:
        opts.log(f"[{n:,}] engine {mode}")
        run["modes"][mode] = _engine_mode(client, name, queries, mode, exact[mode], opts, w1, w2)
        run["modes"][mode]["R@k"]["exact"] = recall_at(exact[mode]["ids"], queries.relevant)
    opts.log(f"[{n:,}] in-memory reference")
    run["reference"]["torch_cpu"] = time_reference(
        retriever, queries, batch=opts.batch, clients=opts.clients, threads=opts.threads
    )
    for device in opts.devices:
        if device.startswith("cuda") and torch.cuda.is_available():
            opts.log(f"[{n:,}] in-memory reference on {device}")
            gpu, _ = build_reference(collection, w1, w2, device=device)
            run["reference"]["torch_cuda"] = time_reference(
                gpu, queries, batch=opts.batch, clients=opts.clients
            )
            run["reference"]["torch_cuda"]["device_name"] = torch.cuda.get_device_name(device)
            del gpu
    opts.log(f"[{n:,}] pruning grid ({len(opts.grid)} points)")
    run["pruning"] = [
        _grid_point(client, name, queries, p, exact[p.mode], w1, w2) for p in opts.grid
    ]
    run["profile"] = _profile(run)
    opts.log(f"[{n:,}] engine profile and variants")
    sample = queries.vectors[: opts.profile_queries]
    run["engine_profile"] = {
        mode: profile_mode(client, name, sample, mode, w1, w2) for mode in MODES
    }
    run["variants"] = time_variants(client, name, queries.vectors, w1, w2)
    if not opts.keep_index:
        client.indices.delete(index=name, ignore_unavailable=True)
    del retriever
    gc.collect()
    return run


def _exact_top(retriever, queries: Queries) -> dict:
    """Per mode: the exact top-k ids and scores of every query, and what `_score_lookup` needs
    to score any other hit exactly."""
    out, position = {}, {doc: i for i, doc in enumerate(retriever.ids)}
    for mode in MODES:
        ids, scores = [], []
        for lo in range(0, len(queries), PARITY_BLOCK):
            rows = list(range(lo, min(lo + PARITY_BLOCK, len(queries))))
            s = exact_scores(retriever, queries, rows, mode)
            values, idx = top_k(s, K)
            ids += [[retriever.ids[i] for i in row] for row in idx.tolist()]
            scores += values.tolist()
        out[mode] = {"ids": ids, "scores": scores, "retriever": retriever, "queries": queries}
        out[mode]["position"] = position
    return out


def _score_lookup(exact: dict, engine_ids: list[list[str]], mode: str) -> list[dict]:
    """Exact score of every id the engine returned, per query."""
    retriever, queries, position = exact["retriever"], exact["queries"], exact["position"]
    out = []
    for lo in range(0, len(engine_ids), PARITY_BLOCK):
        rows = list(range(lo, min(lo + PARITY_BLOCK, len(engine_ids))))
        s = exact_scores(retriever, queries, rows, mode)
        for r, row in enumerate(rows):
            out.append({d: float(s[r, position[d]]) for d in engine_ids[row]})
    return out


def _parity(exact: dict, ids, scores, mode: str) -> dict:
    lookup = _score_lookup(exact, ids, mode)
    per_query = [
        query_parity(i, s, ei, es, lk)
        for i, s, ei, es, lk in zip(ids, scores, exact["ids"], exact["scores"], lookup, strict=True)
    ]
    return aggregate_parity(per_query)


def _engine_mode(client, name, queries: Queries, mode, exact, opts: RunOptions, w1, w2) -> dict:
    options = SearchOptions(mode=mode, k=K, explain=False)
    first = run_queries(client, name, queries.vectors, options, w1, w2)  # also the warm-up
    timed = run_queries(client, name, queries.vectors, options, w1, w2)

    def one(i: int) -> None:
        search(client, name, queries.vectors[i], options, w1, w2)

    qps = {str(c): throughput(one, len(queries), c) for c in opts.clients}
    result = _parity(exact, first.ids, first.scores, mode)
    result.update(
        {
            "latency_ms": percentiles(timed.client_ms),
            "took_ms": percentiles(timed.took_ms),
            "qps": qps.get("1"),
            "qps_by_clients": qps,
            "R@k": {"engine": recall_at(first.ids, queries.relevant)},
        }
    )
    return result


def _grid_point(client, name, queries: Queries, point: GridPoint, exact, w1, w2) -> dict:
    options = point.options()
    timed = run_queries(client, name, queries.vectors, options, w1, w2)
    parity = _parity(exact, timed.ids, timed.scores, point.mode)
    return {
        "mode": point.mode,
        "query_top_k": point.query_top_k,
        "window": point.window if point.mode == "hybrid" else None,
        "ef_search": point.ef_search,
        "latency_ms": percentiles(timed.client_ms),
        "took_ms": percentiles(timed.took_ms),
        f"overlap@{K}": parity[f"overlap@{K}"],
        f"overlap@{K}_ties": parity[f"overlap@{K}_ties"],
        "R@10": recall_at(timed.ids, queries.relevant)["R@10"],
    }


def _profile(run: dict) -> dict:
    """Where a query's time goes, per mode, at p50: inside the engine (`took`), and outside it
    (client: body, JSON, HTTP, parsing; network is loopback here)."""
    out = {}
    for mode, m in run["modes"].items():
        client_p50, took_p50 = m["latency_ms"]["p50"], m["took_ms"]["p50"]
        out[mode] = {
            "client_p50_ms": client_p50,
            "engine_took_p50_ms": took_p50,
            "outside_engine_p50_ms": client_p50 - took_p50,
            "torch_cpu_p50_ms": run["reference"]["torch_cpu"][mode]["latency_ms"]["p50"],
        }
    return out


def scale_fit(runs: list[dict]) -> dict:
    """latency p50 = a + b * N per mode, for the engine and each in-memory device."""
    sizes = [r["n_docs"] for r in runs]
    fits: dict = {"engine": {}}
    for mode in MODES:
        fits["engine"][mode] = fit_linear(
            sizes, [r["modes"][mode]["latency_ms"]["p50"] for r in runs]
        )
    for device in sorted({d for r in runs for d in r["reference"]}):
        pts = [(r["n_docs"], r["reference"][device]) for r in runs if device in r["reference"]]
        fits[device] = {
            mode: fit_linear([n for n, _ in pts], [d[mode]["latency_ms"]["p50"] for _, d in pts])
            for mode in MODES
        }
    return fits


def check_targets(runs: list[dict]) -> list[dict]:
    """The issue's done-when targets, each met or not (or not measured) with its numbers."""
    by_n = {r["n_docs"]: r for r in runs}
    out = []

    def add(name: str, n: int, fn) -> None:
        r = by_n.get(n)
        if r is None:
            out.append({"target": name, "n_docs": n, "status": "not measured"})
            return
        met, detail = fn(r)
        out.append({"target": name, "n_docs": n, "status": "met" if met else "not met", **detail})

    def hybrid_parity(r):
        m = r["modes"]["hybrid"]
        ok = m["overlap@10"] >= 0.99 and m["score_rel_err_max"] <= 1e-4
        return ok, {"overlap@10": m["overlap@10"], "score_rel_err_max": m["score_rel_err_max"]}

    def sparse_parity(r):
        m = r["modes"]["sparse"]
        return m["overlap@10_ties"] >= 0.999, {
            "overlap@10": m["overlap@10"],
            "overlap@10_ties": m["overlap@10_ties"],
        }

    def faster(mode):
        def check(r):
            e = r["modes"][mode]["latency_ms"]["p50"]
            t = r["reference"]["torch_cpu"][mode]["latency_ms"]["p50"]
            return e < t, {"engine_p50_ms": e, "torch_cpu_p50_ms": t}

        return check

    def ingest_rate(r):
        rate = r["ingest"]["docs_per_s"]
        return rate is not None and rate >= 2000, {"docs_per_s": rate}

    add("hybrid overlap@10 >= 0.99 and score error <= 1e-4", 100_000, hybrid_parity)
    add("sparse overlap@10 >= 0.999 (exact ties aside)", 100_000, sparse_parity)
    add("engine sparse p50 < in-memory sparse p50", 1_000_000, faster("sparse"))
    add("engine hybrid p50 < in-memory hybrid p50", 1_000_000, faster("hybrid"))
    add("ingest >= 2,000 docs/s sustained", 1_000_000, ingest_rate)
    return out


def report_header(client, model, argv: list[str] | str | None = None) -> dict:
    """The report's top level: bench.provenance's record (command, git describe, model with
    its weights' sha256, engine with the index settings, machine) and the run list."""
    from bench.engine import measured_engine
    from bench.provenance import provenance

    return {
        "schema_version": SCHEMA_VERSION,
        **provenance(
            argv,
            prog="sparse-mm bench",
            model=model.path,
            engine=measured_engine(client, model.config.heads.dense_dim),
        ),
        "runs": [],
    }

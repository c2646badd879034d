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
from bench.engine import ingest_collection, node_memory, run_queries, throughput
from bench.filtered import SELECTIVITY, buckets, measure_filtered
from bench.metrics import (
    K,
    aggregate_parity,
    percentiles,
    query_parity,
    recall_at,
)
from bench.phases import Phases
from bench.profile import profile_mode, time_variants
from bench.reference import build_reference, exact_scores, pair_scores, time_reference
from bench.work import against_limit, postings_per_query, work_per_query
from indexing.engine import as_engine
from indexing.layout import IndexSettings
from indexing.query_terms import DEFAULT_KNN_K, DEFAULT_WINDOW
from indexing.registry import engine_spec
from indexing.search import SearchOptions, search
from sparse_mm.retriever import MODES, top_k

SCHEMA_VERSION = 1
PARITY_BLOCK = 32  # queries whose full exact score rows are held at once


@dataclass(frozen=True)
class GridPoint:
    mode: str
    query_top_k: int | None = None
    window: int = DEFAULT_WINDOW  # the hybrid default
    ef_search: int | None = None
    knn_k: int | None = None  # hybrid: the k-NN clause's neighbours (None: the default)

    def options(self) -> SearchOptions:
        return SearchOptions(
            mode=self.mode,
            k=K,
            window=self.window,
            ef_search=self.ef_search,
            query_top_k=self.query_top_k,
            explain=False,
            knn_k=self.knn_k,
            stored_fields=True,  # the bench's own indices store the shown fields
        )


DEFAULT_GRID = (
    *(GridPoint("sparse", query_top_k=t) for t in (4, 8, 16, 32)),
    *(GridPoint("hybrid", query_top_k=t) for t in (4, 8, 16, 32)),
    *(GridPoint("hybrid", window=w) for w in (100, 200, 400, 600, 1000, 2000)),
    # the k-NN clause's neighbours apart from the rescored window (SearchOptions.knn_k)
    *(
        GridPoint("hybrid", window=w, knn_k=n)
        for w, n in ((600, 200), (600, 100), (400, 100), (200, 100))
    ),
    *(GridPoint("dense", ef_search=e) for e in (64, 128, 256, 768, 1024)),
)


@dataclass
class RunOptions:
    index: str = "sparse-mm-bench"
    clients: tuple[int, ...] = (1, 2, 4)
    ingest_clients: int = 1  # each stream keeps indexing.bulk's own requests in flight
    batch: int = 256
    reuse_index: bool = False
    keep_index: bool = False
    grid: tuple[GridPoint, ...] = DEFAULT_GRID
    index_settings: IndexSettings = field(default_factory=IndexSettings)  # graph, ef_search
    devices: tuple[str, ...] = ("cpu",)
    threads: tuple[int, ...] | None = None  # torch intra-op thread counts to try
    profile_queries: int = 10  # queries sent with the profile API, per mode (OpenSearch)
    bandwidth_bytes_s: float = float("nan")  # bench.work.measure_bandwidth, once per command
    timing_queries: int | None = 50  # queries timed one by one on the in-memory reference
    qps_seconds: float | None = 5.0  # time budget of each throughput level (None: each query once)
    grid_queries: int | None = 100  # queries per pruning grid point (None: all)
    variants: bool = True  # time the candidate query-body variants (OpenSearch)
    # sent before the one timed pass per mode (None: every query, a whole untimed pass): the
    # JVM compiles a query path's code over its first hundreds of queries, and a fresh index's
    # pages come into the cache; 20 queries left the first timed passes measurably slower
    warmup_queries: int | None = None
    phases: Phases = field(default_factory=Phases)
    log: Callable[[str], None] = field(default=lambda _m: None)


@dataclass
class Shared:
    """What every engine of one size is compared with, measured once: the exact retriever, the
    exact top-k per mode, the in-memory reference's timings and the work per query."""

    retriever: object
    exact: dict
    reference: dict
    build_seconds: float
    postings_mean: float
    buckets: torch.Tensor  # each document's filter bucket (bench.filtered)


def measure_reference(collection: Collection, queries: Queries, opts: RunOptions, w1, w2):
    """The exact in-memory PyTorch side of one size (single query and batched, per mode):
    the exact top-k of every query (parity), timings on `opts.timing_queries` of them."""
    n = len(collection)
    opts.log(f"[{n:,}] exact reference: build and top-{K} of every query")
    retriever, build_s = build_reference(collection, w1, w2)
    exact = _exact_top(retriever, queries)
    opts.log(f"[{n:,}] in-memory reference timings")
    timing = {
        "batch": opts.batch,
        "clients": opts.clients,
        "timing_queries": opts.timing_queries,
        "seconds": opts.qps_seconds,
    }
    reference = {"torch_cpu": time_reference(retriever, queries, threads=opts.threads, **timing)}
    for device in opts.devices:
        if device.startswith("cuda") and torch.cuda.is_available():
            opts.log(f"[{n:,}] in-memory reference on {device}")
            gpu, _ = build_reference(collection, w1, w2, device=device)
            reference["torch_cuda"] = time_reference(gpu, queries, **timing)
            reference["torch_cuda"]["device_name"] = torch.cuda.get_device_name(device)
            del gpu
    postings = postings_per_query(collection.encoded.sparse, queries.sparse)
    keys = buckets(collection.ids)
    return Shared(retriever, exact, reference, build_s, float(postings.mean()), keys)


def run_size(
    engines: dict,
    model,
    collection: Collection,
    queries: Queries,
    opts: RunOptions,
    label: str | None = None,
):
    """Every engine ({name: client}) on the same documents and queries, against one shared
    exact reference; {name: that engine's run}. Phases are recorded under `label`."""
    w1, w2 = model.serving_weights()
    with opts.phases.timed("reference", label=label, n_docs=len(collection)):
        shared = measure_reference(collection, queries, opts, w1, w2)
    try:
        return {
            name: measure_engine(client, model, collection, queries, shared, opts, label)
            for name, client in engines.items()
        }
    finally:
        del shared
        gc.collect()


def run_one(client, model, collection: Collection, queries: Queries, opts: RunOptions) -> dict:
    """All measurements for one collection on one engine; returns the run's JSON object."""
    return next(iter(run_size({"engine": client}, model, collection, queries, opts).values()))


def measure_engine(
    client,
    model,
    collection: Collection,
    queries: Queries,
    shared: Shared,
    opts: RunOptions,
    label: str | None = None,
) -> dict:
    """One engine at one size: ingest, parity and latency per mode, throughput, pruning grid,
    memory, work per query against the bandwidth limit."""
    w1, w2 = model.serving_weights()
    engine = as_engine(client).name
    n = len(collection)
    name = f"{opts.index}-{engine}-{n}"
    where = {"label": label, "n_docs": n, "engine": engine}
    opts.log(f"[{engine} {n:,}] ingest into {name!r}")
    with opts.phases.timed("ingest", **where):
        ingest = ingest_collection(
            client,
            name,
            model,
            collection,
            clients=opts.ingest_clients,
            reuse=opts.reuse_index,
            settings=opts.index_settings,
        )
    opts.log(f"[{engine} {n:,}] ingest: {ingest.as_dict(collection.encode_seconds)}")
    exact = shared.exact
    capabilities = as_engine(client).capabilities(name)
    run: dict = {
        "n_docs": n,
        "n_queries": len(queries),
        "collection": collection.description,
        "index": name,
        "terms_per_doc": collection.encoded.sparse.values().numel() / max(n, 1),
        "terms_per_query": float((queries.sparse > 0).sum(1).float().mean()),
        "ingest": ingest.as_dict(collection.encode_seconds),
        "capabilities": capabilities,  # e.g. a one-request hybrid (Engine.capabilities)
        "dense_ef_search": opts.index_settings.ef_search,  # dense mode's HNSW candidates
        "modes": {},
        "reference": shared.reference,
        "seconds": {
            "source": collection.source_seconds,
            "reference_build": shared.build_seconds,
        },
    }
    with opts.phases.timed("queries", **where):
        for mode in MODES:
            opts.log(f"[{engine} {n:,}] engine {mode}")
            m = _engine_mode(client, name, queries, mode, exact[mode], opts, w1, w2)
            m["R@k"]["exact"] = recall_at(exact[mode]["ids"], queries.relevant)
            run["modes"][mode] = m
        opts.log(f"[{engine} {n:,}] engine filtered hybrid ({', '.join(SELECTIVITY)} kept)")
        run["filtered"] = measure_filtered(
            run_queries, client, name, queries, shared.retriever, shared.buckets,
            opts.warmup_queries, w1, w2,
        )  # fmt: skip
    g = len(queries) if opts.grid_queries is None else min(opts.grid_queries, len(queries))
    opts.log(f"[{engine} {n:,}] pruning grid ({len(opts.grid)} points, {g} queries each)")
    with opts.phases.timed("grid", **where):
        run["pruning"] = [
            _grid_point(client, name, queries, p, _first_rows(exact[p.mode], g), w1, w2, g)
            for p in opts.grid
        ]
    run["profile"] = _profile(run)
    if opts.profile_queries:
        opts.log(f"[{engine} {n:,}] engine profile" + (" and variants" if opts.variants else ""))
        sample = queries.vectors[: opts.profile_queries]
        with opts.phases.timed("profile", **where):
            run["engine_profile"] = {
                mode: profile_mode(client, name, sample, mode, w1, w2) for mode in MODES
            }
            # the variants are OpenSearch's bodies (bench.profile.body_for)
            if opts.variants and engine_spec(engine).query_profile:
                run["variants"] = time_variants(client, name, queries.vectors[:g], w1, w2)
    run["engine_memory"] = node_memory(client)
    run["work"] = _work(run, engine, collection.dense_dim, shared.postings_mean, opts)
    if not opts.keep_index:
        client.indices.delete(index=name, ignore_unavailable=True)
    return run


def _work(run: dict, engine: str, dim: int, postings_mean: float, opts: RunOptions) -> dict:
    """Work per query per system and mode, and each p50 against the bandwidth limit."""
    settings = opts.index_settings
    # the hybrid's k-NN clause searches as wide as the neighbours it adds, on both engines
    ef_hybrid = DEFAULT_KNN_K
    work = work_per_query(
        run["n_docs"],
        dim,
        postings_mean,
        ef_dense=settings.ef_search,
        ef_hybrid=ef_hybrid,
        m=settings.m,
    )
    bandwidth = opts.bandwidth_bytes_s
    out = {"per_query": work, "bandwidth_bytes_s": bandwidth, "engine": {}, "torch_cpu": {}}
    for mode in MODES:
        out["engine"][mode] = against_limit(
            run["modes"][mode]["latency_ms"]["p50"], work["engine"][mode], dim, bandwidth
        )
        out["torch_cpu"][mode] = against_limit(
            run["reference"]["torch_cpu"][mode]["latency_ms"]["p50"],
            work["exact"][mode],
            dim,
            bandwidth,
        )
    return out


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
    """Exact score of every id the engine returned, per query (only those documents scored)."""
    retriever, queries, position = exact["retriever"], exact["queries"], exact["position"]
    out = []
    for row, ids in enumerate(engine_ids):
        docs = torch.tensor([position[d] for d in ids], dtype=torch.int64)
        scores = pair_scores(retriever, queries, row, docs, mode).tolist()
        out.append(dict(zip(ids, scores, strict=True)))
    return out


def _parity(exact: dict, ids, scores, mode: str) -> dict:
    lookup = _score_lookup(exact, ids, mode)
    per_query = [
        query_parity(i, s, ei, es, lk)
        for i, s, ei, es, lk in zip(ids, scores, exact["ids"], exact["scores"], lookup, strict=True)
    ]
    return aggregate_parity(per_query)


def _engine_mode(client, name, queries: Queries, mode, exact, opts: RunOptions, w1, w2) -> dict:
    # dense mode searches the graph's own ef_search, as `sparse-mm query --mode dense` does
    ef_search = opts.index_settings.ef_search if mode == "dense" else None
    options = SearchOptions(mode=mode, k=K, ef_search=ef_search, explain=False, stored_fields=True)
    run_queries(client, name, queries.vectors[: opts.warmup_queries], options, w1, w2)  # warm-up
    # one pass gives both the parity and the latency
    first = timed = run_queries(client, name, queries.vectors, options, w1, w2)

    def one(i: int) -> None:
        search(client, name, queries.vectors[i], options, w1, w2)

    qps = {str(c): throughput(one, len(queries), c, opts.qps_seconds) for c in opts.clients}
    result = _parity(exact, first.ids, first.scores, mode)
    result.update(
        {
            "latency_ms": percentiles(timed.client_ms),
            "took_ms": percentiles(timed.took_ms),
            "qps": qps.get("1"),
            "qps_by_clients": qps,
            "qps_seconds": opts.qps_seconds,
            "R@k": {"engine": recall_at(first.ids, queries.relevant)},
        }
    )
    return result


def _first_rows(exact: dict, g: int) -> dict:
    """`exact` (one mode of _exact_top) for the first `g` queries only."""
    return {**exact, "ids": exact["ids"][:g], "scores": exact["scores"][:g]}


def _grid_point(client, name, queries: Queries, point: GridPoint, exact, w1, w2, g: int) -> dict:
    """One pruning grid point on the first `g` queries (parity against their exact top-k)."""
    options = point.options()
    timed = run_queries(client, name, queries.vectors[:g], options, w1, w2)
    parity = _parity(exact, timed.ids, timed.scores, point.mode)
    return {
        "mode": point.mode,
        "query_top_k": point.query_top_k,
        "window": point.window if point.mode == "hybrid" else None,
        "knn_k": point.knn_k if point.mode == "hybrid" else None,
        "ef_search": point.ef_search,
        "latency_ms": percentiles(timed.client_ms),
        "took_ms": percentiles(timed.took_ms),
        f"overlap@{K}": parity[f"overlap@{K}"],
        f"overlap@{K}_ties": parity[f"overlap@{K}_ties"],
        "R@10": recall_at(timed.ids, queries.relevant[:g])["R@10"],
        "queries": g,
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


def report_header(
    client,
    model,
    argv: list[str] | str | None = None,
    dense_dim: int | None = None,
    settings: IndexSettings | None = None,
) -> dict:
    """The report's top level: sparse_mm.provenance's record (command, git describe, model with
    its weights' sha256, engine with the index settings, machine) and the run list."""
    from bench.engine import measured_engine
    from sparse_mm.provenance import provenance

    return {
        "schema_version": SCHEMA_VERSION,
        **provenance(
            argv,
            prog="sparse-mm bench",
            model=model.path,
            engine=measured_engine(client, dense_dim or model.config.heads.dense_dim, settings),
        ),
        "runs": [],
    }

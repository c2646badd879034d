"""The engine side of a run: loading the collection into an index, then timing queries.

Ingest uses the production pieces (`DocumentBuilder`, `bulk_index`, `bulk_loading`) on the
already-encoded collection, so the engine's rate is measured apart from the model's encoding
(which the report gives separately). Time until searchable runs from the last acknowledged
bulk request to the moment a count sees every document (refresh re-enabled and done).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from bench.collection import Collection
from bench.filtered import FIELD, FIELDS, bucket
from indexing.binding import BINDING_KEY, mismatch_line, model_binding
from indexing.bulk import BulkReport, bulk_index
from indexing.documents import DocumentBuilder
from indexing.index import bulk_loading, ensure_index, index_meta
from indexing.layout import IndexSettings
from indexing.search import QueryVectors, SearchOptions, search
from sparse_mm.errors import EngineError

BENCH_MARK = "sparse_mm_bench"  # _meta key naming the collection a bench index holds


@dataclass
class IngestResult:
    docs: int
    reused: bool
    bulk_seconds: float = 0.0
    searchable_seconds: float = 0.0
    settled_seconds: float | None = None  # from the last bulk ack until no merge is running
    build_seconds: float = 0.0  # client side: documents + JSON, measured on a sample
    index_bytes: int = 0
    segments: int = 0
    clients: int = 1
    engine_ms: dict | None = None  # the engine's own time per activity (index stats)

    def as_dict(self, encode_seconds: float) -> dict:
        total = self.bulk_seconds + self.searchable_seconds
        settled = self.bulk_seconds + self.settled_seconds if self.settled_seconds else None
        return {
            "docs": self.docs,
            "reused_index": self.reused,
            "clients": self.clients,
            "docs_per_s": self.docs / total if total and not self.reused else None,
            "bulk_seconds": self.bulk_seconds,
            "time_until_searchable_s": self.searchable_seconds,
            "time_until_merges_settled_s": self.settled_seconds,
            "docs_per_s_merges_settled": (
                self.docs / settled if settled and not self.reused else None
            ),
            "client_build_json_s_estimate": self.build_seconds,
            "encode_seconds": encode_seconds,
            "encode_docs_per_s": self.docs / encode_seconds if encode_seconds else None,
            "end_to_end_docs_per_s": (
                self.docs / (total + encode_seconds) if total and not self.reused else None
            ),
            "index_bytes": self.index_bytes,
            "segments": self.segments,
            "engine_time_ms": self.engine_ms,
        }


def _csr_rows(sparse: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    crow = sparse.crow_indices()
    lo, hi = int(crow[start]), int(crow[stop])
    return torch.sparse_csr_tensor(
        crow[start : stop + 1] - lo,
        sparse.col_indices()[lo:hi],
        sparse.values()[lo:hi],
        size=(stop - start, sparse.shape[1]),
        check_invariants=False,
    )


def collection_documents(model, collection: Collection, start: int, stop: int, batch: int = 2048):
    """The documents of rows start..stop, each with its filter bucket (bench.filtered)."""
    builder = DocumentBuilder(collection.tokens or model.vocab.tokens)
    enc = collection.encoded
    for lo in range(start, stop, batch):
        hi = min(lo + batch, stop)
        ids = collection.ids[lo:hi]
        metadata = [{"meta": {FIELD: bucket(i)}} for i in ids]
        yield from builder.build(ids, enc.dense[lo:hi], _csr_rows(enc.sparse, lo, hi), metadata)


def prepare_index(
    client,
    name: str,
    model,
    collection: Collection,
    reuse: bool,
    settings: IndexSettings | None = None,
) -> bool:
    """Make `name` ready for this collection and graph; True when an existing copy can be
    reused.

    Refuses to delete an index that a benchmark did not create."""
    settings = replace(settings or IndexSettings(), fields=FIELDS)
    binding = model_binding(model)
    marker = (
        f"{collection.description} | model {model.path} | {settings.describe_graph()} | "
        f"filter field {FIELD} | shown fields stored"
    )
    if client.indices.exists(index=name):
        meta = index_meta(client, name)
        if BENCH_MARK not in meta:
            raise EngineError(
                f"index {name!r} exists and was not created by `sparse-mm bench`; "
                "choose another --index"
            )
        count = client.count(index=name)["count"]
        # a bench index is the bench's own: bound to another model it is rebuilt, never read
        bound = mismatch_line(name, meta, binding) is None
        if reuse and bound and meta[BENCH_MARK] == marker and count == len(collection):
            return True
        client.indices.delete(index=name)
    w1, w2 = model.serving_weights()
    meta = {"w1": w1, "w2": w2, BENCH_MARK: marker, BINDING_KEY: binding}
    ensure_index(client, name, collection.dense_dim, settings, meta)
    return False


def ingest_collection(
    client,
    name: str,
    model,
    collection: Collection,
    *,
    clients: int = 1,
    reuse: bool = False,
    settings: IndexSettings | None = None,
) -> IngestResult:
    """Bulk-load the collection with `clients` concurrent bulk streams (contiguous slices)
    into an index built with `settings` (default: the default profile's graph)."""
    n = len(collection)
    if prepare_index(client, name, model, collection, reuse, settings):
        result = IngestResult(n, reused=True)
    else:
        result = IngestResult(n, reused=False, clients=clients)
        result.build_seconds = _build_cost(model, collection)
        reports: list[BulkReport] = []
        errors: list[BaseException] = []
        bounds = [round(i * n / clients) for i in range(clients + 1)]

        def load(lo: int, hi: int) -> None:
            try:
                reports.append(
                    bulk_index(client, name, collection_documents(model, collection, lo, hi))
                )
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

        began = time.perf_counter()
        with bulk_loading(client, name):
            threads = [
                threading.Thread(target=load, args=(lo, hi))
                for lo, hi in itertools.pairwise(bounds)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
            result.bulk_seconds = time.perf_counter() - began
            acked = time.perf_counter()
        # leaving bulk_loading restored the refresh interval and refreshed
        while client.count(index=name)["count"] < n:
            time.sleep(0.05)
        result.searchable_seconds = time.perf_counter() - acked
        result.settled_seconds = _merges_settled(client, name, acked)
        failed = sum(r.failed for r in reports)
        if failed:
            raise EngineError(f"{failed} documents were rejected while loading {name!r}")
    client.indices.flush(index=name)  # the translog is not part of the index's size
    stats = client.indices.stats(index=name)["_all"]["primaries"]
    result.index_bytes = int(stats["store"]["size_in_bytes"])
    result.segments = int(stats["segments"]["count"])
    if not result.reused:
        result.engine_ms = {
            "indexing": stats["indexing"]["index_time_in_millis"],
            "refresh": stats["refresh"]["total_time_in_millis"],
            "flush": stats["flush"]["total_time_in_millis"],
            "merge": stats["merges"]["total_time_in_millis"],
        }
    return result


def _merges_settled(client, name: str, since: float, timeout: float = 1800.0) -> float | None:
    """Seconds from `since` until the index runs no merge (None if that takes over `timeout`)."""
    while time.perf_counter() - since < timeout:
        stats = client.indices.stats(index=name, metric="merge")["_all"]["primaries"]
        if int(stats["merges"]["current"]) == 0:
            return time.perf_counter() - since
        time.sleep(0.2)
    return None


def node_memory(client) -> dict:
    """The node's JVM heap in use and committed, and its resident memory (RSS, read from
    /proc when the node runs on this machine, else None)."""
    nodes = client.nodes.stats(metric="jvm,process")["nodes"]
    node = next(iter(nodes.values()))
    heap = node.get("jvm", {}).get("mem", {})
    pid = client.nodes.info(metric="process")["nodes"]
    pid = next(iter(pid.values())).get("process", {}).get("id")
    return {
        "heap_used_bytes": heap.get("heap_used_in_bytes"),
        "heap_committed_bytes": heap.get("heap_committed_in_bytes"),
        "rss_bytes": _rss(pid),
        "virtual_bytes": node.get("process", {}).get("mem", {}).get("total_virtual_in_bytes"),
    }


def _rss(pid) -> int | None:
    try:
        with open(f"/proc/{int(pid)}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, TypeError, ValueError):
        return None
    return None


def _build_cost(model, collection: Collection, sample: int = 2000) -> float:
    """Estimated client-side seconds to build and serialise every document (from a sample)."""
    n = min(sample, len(collection))
    began = time.perf_counter()
    for doc in collection_documents(model, collection, 0, n):
        json.dumps(doc)
    return (time.perf_counter() - began) * len(collection) / max(n, 1)


@dataclass
class Timed:
    ids: list[list[str]]
    scores: list[list[float]]
    client_ms: list[float]
    took_ms: list[float]


def run_queries(
    client, name: str, queries: Sequence[QueryVectors], options: SearchOptions, w1, w2
) -> Timed:
    """Every query once, in order; client latency includes building the body and parsing."""
    out = Timed([], [], [], [])
    for q in queries:
        began = time.perf_counter()
        response = search(client, name, q, options, w1, w2)
        out.client_ms.append((time.perf_counter() - began) * 1000)
        out.took_ms.append(float(response.took_ms))
        out.ids.append([h.id for h in response.hits])
        out.scores.append([h.score for h in response.hits])
    return out


def throughput(
    call: Callable[[int], object], n_calls: int, clients: int, seconds: float | None = None
) -> float:
    """Calls per second when `clients` threads share the calls call(i), i < `n_calls`: each
    call once, or with a time budget `seconds`, call(i % n_calls) for i = 0, 1, ... until the
    budget has passed (every started call completes and counts)."""
    counter = itertools.count() if seconds else iter(range(n_calls))
    lock = threading.Lock()
    errors: list[BaseException] = []
    done = [0]
    began = time.perf_counter()
    deadline = began + seconds if seconds else float("inf")

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None or time.perf_counter() >= deadline:
                return
            try:
                call(i % n_calls)
            except BaseException as exc:
                errors.append(exc)
                return
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return done[0] / elapsed


def engine_info(client) -> dict:
    """The engine's name and version, Lucene and JVM versions, the node's processors and heap
    (from the node's info: Elasticsearch's minimal distribution has no `GET /`)."""
    from indexing.engine import as_engine

    adapter = as_engine(client)
    nodes = client.nodes.info(metric="jvm,os")["nodes"]
    node = next(iter(nodes.values()))
    jvm, os_ = node.get("jvm", {}), node.get("os", {})
    version = adapter.version()
    try:
        lucene = client.info()["version"].get("lucene_version")
    except Exception:  # no `GET /` on this distribution: Lucene's version is not exposed
        lucene = None
    return {
        "name": adapter.name,
        "version": version,
        adapter.name: version,  # kept for readers of older reports (under OpenSearch's name)
        "lucene": lucene,
        "jdk": f"{jvm.get('vm_vendor', '')} {jvm.get('version', '')}".strip(),
        "heap_max_bytes": jvm.get("mem", {}).get("heap_max_in_bytes"),
        "available_processors": os_.get("available_processors"),
        "allocated_processors": os_.get("allocated_processors"),
    }


def measured_engine(client, dense_dim: int, settings: IndexSettings | None = None) -> dict:
    """The engine and the index settings and mapping a benchmark measures (provenance)."""
    from indexing.engine import as_engine
    from sparse_mm.provenance import engine_record

    body = as_engine(client).index_body(dense_dim, settings or IndexSettings(), None)
    return engine_record(engine_info(client), body)

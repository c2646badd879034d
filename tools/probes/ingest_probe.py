"""Ingest speed and dense recall per HNSW graph, through `sparse-mm ingest`'s own code path:
`python -m tools.probes.ingest_probe --model DIR --url URL [--engine opensearch] [--n 100000]
[--graphs 16:128,16:64,12:64,8:64] [--durability async,request] [--json FILE]`.

The collection is the first `--n` images of a synthetic world (bench.collection: clustered
embeddings, so that recall means something), generated once into a memory-mapped file before
any timing, so the timed part is what a user's ingest does: `indexing.ingest.ingest` (encode
with the model's heads, build documents, bulk with checkpoints, restore the serving settings)
into a new index per configuration: graph `m:ef_construction` x translog durability during the
load ("async", the default of `sparse-mm ingest`, or "request"). For each it records docs/s
(ingest start to searchable), the engine's CPU per document (the node's process CPU, steadier
than docs/s on a shared machine), this process's CPU per document (encoding, documents, JSON),
the load average, the segment count, and dense recall@10 of the k-NN query against the exact
top-10 (in memory, float32) at several ef_search with the engine's p50/p95 `took`. Every index
is deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import torch

from bench.collection import synthetic_queries, synthetic_workload
from bench.metrics import percentiles
from indexing.bulk import BulkOptions
from indexing.client import ConnectionOptions
from indexing.engine import connect
from indexing.ingest import IngestOptions, IngestSource, ingest
from indexing.layout import DEFAULT_PROFILE, IndexSettings
from indexing.search import SearchOptions, search
from sparse_mm.provenance import engine_record, provenance

K = 10
CHUNK = 20_000  # images generated and encoded at once (a multiple of sparse_mm.synth.BLOCK)


def parse_graphs(text: str) -> list[tuple[int, int]]:
    """ "16:128,8:64" -> [(16, 128), (8, 64)] (m:ef_construction)."""
    try:
        return [(int(m), int(ef)) for m, ef in (g.split(":") for g in text.split(","))]
    except ValueError:
        raise SystemExit(f"error: --graphs wants m:ef_construction[,...], got {text!r}") from None


def prepare(model, n: int, seed: int, folder: Path, n_queries: int):
    """The source (embeddings in a memory-mapped .npy under `folder`), the queries' dense
    vectors (Q, D) and their exact top-`K` ids by cosine over the collection."""
    from sparse_mm.synth import SynthParams, World, generate_chunk

    world = World(SynthParams(seed=seed, n_images=n))
    emb = np.lib.format.open_memmap(
        folder / "emb.npy", mode="w+", dtype=np.float32, shape=(n, world.params.dim)
    )
    queries = synthetic_queries(model, seed=seed, n_queries=n_queries, n_images=max(n, 10_000))
    q = queries.dense.float()
    best_s = torch.full((len(q), K), -2.0)
    best_i = torch.zeros((len(q), K), dtype=torch.long)
    for start in range(0, n, CHUNK):
        part = generate_chunk(world, start, min(CHUNK, n - start), captions=False).image_emb
        emb[start : start + len(part)] = part
        dense = model.heads.encode(torch.from_numpy(part), "image").dense.float()
        scores = torch.cat([best_s, q @ dense.T], dim=1)
        ids = torch.cat([best_i, torch.arange(start, start + len(part)).expand(len(q), -1)], 1)
        best_s, top = scores.topk(K, dim=1)
        best_i = ids.gather(1, top)
    emb.flush()
    source = IngestSource([str(i) for i in range(n)], torch.from_numpy(emb), None, "probe")
    exact = [[str(i) for i in row] for row in best_i.tolist()]
    return source, queries, exact


def node_cpu_ms(engine) -> int:
    nodes = engine.client.nodes.stats(metric="process")["nodes"]
    return sum(n["process"]["cpu"]["total_in_millis"] for n in nodes.values())


def measure(engine, model, source, queries, exact, graph, durability, efs) -> dict:
    m, ef_construction = graph
    index = f"bench-probe-{uuid.uuid4().hex[:8]}"
    settings = IndexSettings(m=m, ef_construction=ef_construction)
    options = IngestOptions(
        index=index,
        settings=settings,
        batch_size=2000,
        bulk=BulkOptions(),
        bulk_durability=durability,
    )
    n = len(source.ids)
    load_before = os.getloadavg()
    cpu0, client0, began = node_cpu_ms(engine), time.process_time(), time.perf_counter()
    try:
        report = ingest(engine, model, source, options, progress=False)
        seconds = time.perf_counter() - began
        client_s, engine_ms = time.process_time() - client0, node_cpu_ms(engine) - cpu0
        load_after = os.getloadavg()
        stats = engine.client.indices.stats(index=index)["_all"]["primaries"]
        out = {
            "m": m,
            "ef_construction": ef_construction,
            "profile": settings.graph["profile"],
            "translog_during_load": durability,
            "docs": engine.count(index),
            "seconds": seconds,
            "docs_per_s": n / seconds,
            "bulk_seconds": report.bulk.seconds,
            "engine_cpu_ms_per_doc": engine_ms / n,
            "client_cpu_ms_per_doc": client_s * 1000 / n,
            "load_average_before": list(load_before),
            "load_average_after": list(load_after),
            "segments": stats["segments"]["count"],
            "index_bytes": stats["store"]["size_in_bytes"],
            "recall": {},
        }
        w1, w2 = model.serving_weights()
        for ef in efs:
            hits, took = 0, []
            for vectors, want in zip(queries.vectors, exact, strict=True):
                options = SearchOptions(mode="dense", k=K, ef_search=ef, explain=False)
                response = search(engine, index, vectors, options, w1, w2)
                hits += len({h.id for h in response.hits} & set(want))
                took.append(float(response.took_ms))
            out["recall"][str(ef)] = {
                f"recall@{K}": hits / (K * len(exact)),
                "took_ms": percentiles(took),
            }
        return out
    finally:
        engine.delete_index(index)


def describe(r: dict) -> str:
    recall = "  ".join(
        f"ef {ef}: {v[f'recall@{K}']:.3f} ({v['took_ms']['p50']:.0f} ms)"
        for ef, v in r["recall"].items()
    )
    return (
        f"m {r['m']:>2} ef_c {r['ef_construction']:>3} {r['translog_during_load']:<7} "
        f"{r['docs_per_s']:>6,.0f} docs/s  engine {r['engine_cpu_ms_per_doc']:.2f} ms/doc  "
        f"client {r['client_cpu_ms_per_doc']:.3f} ms/doc  load {r['load_average_after'][0]:.1f}"
        f"  {r['segments']} segments  {recall}"
    )


def main(argv: list[str] | None = None) -> None:
    from bench.engine import engine_info
    from sparse_mm.checkpoint import load_model
    from sparse_mm.provenance import write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--n", type=int, default=100_000, help="synthetic images")
    parser.add_argument("--seed", type=int, default=7, help="synthetic world seed")
    parser.add_argument("--engine", default="opensearch", choices=["opensearch", "elasticsearch"])
    parser.add_argument("--url", default="http://localhost:9200", help="the engine's URL")
    parser.add_argument("--graphs", default="16:128,16:64,12:64,8:64", help="m:ef_construction")
    parser.add_argument("--durability", default="async,request", help="translog during load")
    parser.add_argument("--ef", default="64,128,256", help="ef_search values for recall")
    parser.add_argument("--queries", type=int, default=200, help="recall queries")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    graphs, durabilities = parse_graphs(args.graphs), args.durability.split(",")
    efs = [int(e) for e in args.ef.split(",")]
    model = load_model(args.model)
    engine = connect(ConnectionOptions(url=args.url, timeout=120.0), engine=args.engine)
    # The record of what runs, taken now: the tree may change while a long probe runs.
    info = engine_info(engine.client) if args.engine == "opensearch" else {}
    info.update(name=args.engine, version=engine.version())
    record = provenance(
        argv,
        prog="python -m tools.probes.ingest_probe",
        model=model.path,
        engine=engine_record(info),
    )
    results: list[dict] = []

    def save(complete: bool) -> None:  # after every run: a long probe's partial results stay
        if args.json:
            workload = synthetic_workload(
                args.seed, args.n, args.queries, model.config.heads.vocab_size
            )
            report = {**record, "workload": workload, "default_profile": DEFAULT_PROFILE}
            write_json({**report, "complete": complete, "runs": results}, args.json)

    with tempfile.TemporaryDirectory(prefix="sparse-mm-probe-") as folder:
        source, queries, exact = prepare(model, args.n, args.seed, Path(folder), args.queries)
        print(f"{args.n:,} images ready; {len(exact)} queries with their exact top-{K}")
        for graph in graphs:
            for durability in durabilities:
                results.append(
                    measure(engine, model, source, queries, exact, graph, durability, efs)
                )
                print(describe(results[-1]), flush=True)
                save(complete=False)
    save(complete=True)


if __name__ == "__main__":
    main()

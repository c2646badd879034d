"""Where ingest time goes, by elimination: `python -m bench.ingest_probe --model DIR [--n 20000]`.

Loads the same synthetic collection into temporary indices that differ in one thing each:
- production: the mapping `sparse-mm ingest` creates (HNSW m=16, ef_construction=128);
- ef_construction=32: a cheaper HNSW graph build;
- dense not in _source: the vector is indexed but not kept as JSON text in `_source`
  (explanations would then need the vector from doc values);
- no dense field: term weights only (no vector, no HNSW graph);
and prints docs/s and the engine's indexing time per document for each. Every index is deleted.
"""

from __future__ import annotations

import argparse
import itertools
import time
import uuid

from bench.collection import synthetic_collection, synthetic_workload
from bench.engine import collection_documents, measured_engine
from bench.provenance import provenance
from bench.report import write_json
from indexing.bulk import bulk_index
from indexing.client import ConnectionOptions, connect
from indexing.index import bulk_loading
from indexing.layout import DENSE_FIELD, IndexSettings
from indexing.opensearch.mapping import index_body
from sparse_mm.checkpoint import load_model


def _variants(dense_dim: int) -> dict:
    production = index_body(dense_dim, IndexSettings(), {})
    cheap = index_body(dense_dim, IndexSettings(ef_construction=32), {})
    excluded = index_body(dense_dim, IndexSettings(), {})
    excluded["mappings"]["_source"] = {"excludes": [DENSE_FIELD]}
    sparse_only = index_body(dense_dim, IndexSettings(), {})
    del sparse_only["mappings"]["properties"][DENSE_FIELD]
    return {
        "production": (production, True),
        "ef_construction=32": (cheap, True),
        "dense not in _source": (excluded, True),
        "no dense field": (sparse_only, False),
    }


def probe(client, model, collection, clients: int = 2) -> list[dict]:
    import threading

    out = []
    n = len(collection)
    for name, (body, with_dense) in _variants(model.config.heads.dense_dim).items():
        index = f"bench-probe-{uuid.uuid4().hex[:8]}"
        client.indices.create(index=index, body=body)

        def docs(lo, hi, with_dense=with_dense):
            for doc in collection_documents(model, collection, lo, hi):
                if not with_dense:
                    doc.pop(DENSE_FIELD)
                yield doc

        try:
            bounds = [round(i * n / clients) for i in range(clients + 1)]
            began = time.perf_counter()
            with bulk_loading(client, index):
                threads = [
                    threading.Thread(target=bulk_index, args=(client, index, docs(lo, hi)))
                    for lo, hi in itertools.pairwise(bounds)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            seconds = time.perf_counter() - began
            client.indices.flush(index=index)
            stats = client.indices.stats(index=index)["_all"]["primaries"]
            count = client.count(index=index)["count"]
            out.append(
                {
                    "variant": name,
                    "docs": count,
                    "docs_per_s": count / seconds,
                    "engine_indexing_ms_per_doc": stats["indexing"]["index_time_in_millis"] / n,
                    "index_bytes": stats["store"]["size_in_bytes"],
                }
            )
        finally:
            client.indices.delete(index=index, ignore_unavailable=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--n", type=int, default=20_000, help="synthetic images")
    parser.add_argument("--seed", type=int, default=7, help="synthetic world seed")
    parser.add_argument("--url", default="http://localhost:9200", help="OpenSearch URL")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    collection, _ = synthetic_collection(model, args.n, seed=args.seed, n_queries=1)
    client = connect(ConnectionOptions(url=args.url))
    results = probe(client, model, collection)
    for r in results:
        print(
            f"{r['variant']:<22} {r['docs_per_s']:>7,.0f} docs/s  engine indexing "
            f"{r['engine_indexing_ms_per_doc']:.2f} ms/doc  "
            f"index {r['index_bytes'] / 2**20:.1f} MiB"
        )
    if args.json:
        report = {
            **provenance(
                argv,
                prog="python -m bench.ingest_probe",
                model=model.path,
                engine=measured_engine(client, model.config.heads.dense_dim),
            ),
            "workload": synthetic_workload(args.seed, args.n, 0, model.config.heads.vocab_size),
            "variants": results,
        }
        write_json(report, args.json)


if __name__ == "__main__":
    main()

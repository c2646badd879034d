"""Both engines side by side on one synthetic collection, in one run: parity of each mode with
the exact in-memory scores, and single-client latency.

    python -m bench.engines_compare --size 100000 --opensearch-url URL --elasticsearch-url URL \
        --json bench/results/engines_100k.json

For each engine: the collection is bulk-loaded with the production pieces (bench.engine), then
every query runs once as a warm-up and once timed, per mode, through the engine adapter
(indexing.search.search), and compared with `ExactRetriever` (stored weights quantised as both
engines store them). The JSON records the command, `git describe`, the model and its weights'
SHA-256, the collection's recipe and the machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench.collection import synthetic_collection
from bench.engine import ingest_collection, run_queries
from bench.metrics import K, percentiles
from bench.reference import build_reference
from bench.report import write_json
from bench.run import _exact_top, _parity
from indexing.client import ConnectionOptions
from indexing.engine import connect
from indexing.search import SearchOptions
from sparse_mm.checkpoint import load_model
from sparse_mm.demo import demo_model_dir
from sparse_mm.retriever import MODES


def compare(
    engines: dict[str, str], model, collection, queries, log, windows: tuple[int, ...] = (100,)
) -> dict:
    """Per engine: ingest figures, and per mode parity and latency percentiles; hybrid once per
    candidate window (`hybrid` for the first, `hybrid_window_<w>` for the others)."""
    w1, w2 = model.serving_weights()
    retriever, _ = build_reference(collection, w1, w2)
    exact = _exact_top(retriever, queries)
    out = {}
    for name, url in engines.items():
        adapter = connect(ConnectionOptions(url=url, timeout=120.0), engine=name)
        index = f"sparse-mm-compare-{name}-{len(collection)}"
        log(f"[{name}] ingest {len(collection):,} documents")
        ingested = ingest_collection(adapter.client, index, model, collection, clients=2)
        result = {
            "version": adapter.version(),
            "ingest": ingested.as_dict(collection.encode_seconds),
            "modes": {},
        }
        runs = [(m, m, windows[0]) for m in MODES]
        runs += [(f"hybrid_window_{w}", "hybrid", w) for w in windows[1:]]
        for key, mode, window in runs:
            log(f"[{name}] {key}")
            options = SearchOptions(mode=mode, k=K, window=window, explain=False)
            first = run_queries(adapter.client, index, queries.vectors, options, w1, w2)
            timed = run_queries(adapter.client, index, queries.vectors, options, w1, w2)
            parity = _parity(exact[mode], first.ids, first.scores, mode)
            parity["latency_ms"] = percentiles(timed.client_ms)
            parity["took_ms"] = percentiles(timed.took_ms)
            if mode == "hybrid":
                parity["window"] = window
            result["modes"][key] = parity
        adapter.delete_index(index)
        out[name] = result
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--opensearch-url", required=True)
    parser.add_argument("--elasticsearch-url", required=True)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument(
        "--windows",
        default="100",
        help="hybrid candidate windows to measure, comma-separated; the first is `hybrid`",
    )
    args = parser.parse_args(argv)
    windows = tuple(int(w) for w in args.windows.split(","))

    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    from bench.provenance import data_record, guard_results, provenance

    model_dir = args.model or demo_model_dir()
    model = load_model(model_dir)
    log(f"generating and encoding {args.size:,} synthetic images (seed {args.seed})")
    collection, queries = synthetic_collection(
        model, args.size, seed=args.seed, n_queries=args.queries
    )
    engines = {"opensearch": args.opensearch_url, "elasticsearch": args.elasticsearch_url}
    report = provenance(
        argv,
        prog="python -m bench.engines_compare",
        model=Path(model_dir),
        data=data_record(
            synthetic={"seed": args.seed, "images": args.size, "queries": args.queries}
        ),
    )
    report.update(
        {
            # the machine is shared: the load when the run started and ended says how much
            "load_average_start": os.getloadavg(),
            "collection": {"recipe": collection.description, "docs": len(collection)},
            "k": K,
            "engines": compare(engines, model, collection, queries, log, windows),
        }
    )
    report["load_average_end"] = os.getloadavg()
    write_json(guard_results(report, args.json), args.json)
    for name, result in report["engines"].items():
        for mode, m in result["modes"].items():
            log(
                f"{name} {result['version']} {mode}: overlap@10 {m['overlap@10']:.4f}, "
                f"top10 identical {m['top10_identical']:.3f}, max rel err "
                f"{m['score_rel_err_max']:.2e}, p50 {m['latency_ms']['p50']:.1f} ms"
            )


if __name__ == "__main__":
    main()

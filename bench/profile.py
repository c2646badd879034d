"""Where a query's time goes inside the engine: the engines' profile API, summarised.

Each engine's own requests (`indexing.search.search` with `SearchOptions.profile`: the adapter
adds `"profile": true` to every request it sends, Elasticsearch's two hybrid steps included)
are profiled; per query and request, the shard's rewrite time (where a k-NN clause runs its
HNSW search), the time of each top-level query node (with its children's types), the
collectors, the rescore phase when there is one, and the fetch. Times are medians over the
profiled queries. The query-body variants (`time_variants`) are OpenSearch's bodies.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence

from indexing.opensearch.queries import dense_query, hybrid_query, sparse_query
from indexing.query_terms import prune_terms
from indexing.search import QueryVectors


def body_for(q: QueryVectors, mode: str, w1: float, w2: float, k: int = 10) -> dict:
    terms, _ = prune_terms(q.terms)
    if mode == "dense":
        return dense_query(q.dense, k=k)
    if mode == "sparse":
        return sparse_query(terms, k=k)
    return hybrid_query(q.dense, terms, w1=w1, w2=w2, k=k)


def _walk(node: dict, depth: int, out: dict) -> None:
    out[f"{'  ' * depth}{node['type']}"].append(node["time_in_nanos"] / 1e6)
    for child in node.get("children", [])[:8] if depth < 2 else []:
        _walk(child, depth + 1, out)


def profile_mode(
    client, index: str, queries: Sequence[QueryVectors], mode: str, w1: float, w2: float
) -> dict:
    """Median ms per profiled component for `queries` in `mode`, on any engine; a component
    of a mode's n-th request (Elasticsearch's hybrid step 2) is prefixed "request n: "."""
    from indexing.search import SearchOptions, search

    parts: dict[str, list[float]] = defaultdict(list)
    options = SearchOptions(mode=mode, explain=False, profile=True, stored_fields=True)
    for q in queries:
        response = search(client, index, q, options, w1, w2)
        parts["took (whole query)"].append(float(response.took_ms))
        for n, profile in enumerate(response.profiles, start=1):
            _summarise(profile, "" if n == 1 else f"request {n}: ", parts)
    return {name: statistics.median(values) for name, values in parts.items()}


def _summarise(profile: dict, prefix: str, parts: dict) -> None:
    for shard in profile["shards"]:
        for search in shard["searches"]:
            parts[f"{prefix}rewrite"].append(search["rewrite_time"] / 1e6)
            named: dict[str, list[float]] = defaultdict(list)
            for node in search["query"]:
                _walk(node, 0, named)
            for collector in search.get("collector", []):
                named[f"collector {collector['name']}"].append(collector["time_in_nanos"] / 1e6)
            for name, values in named.items():
                parts[f"{prefix}{name}"].extend(values)
        fetch = shard.get("fetch") or []
        for phase in fetch if isinstance(fetch, list) else [fetch]:
            parts[f"{prefix}fetch"].append(phase["time_in_nanos"] / 1e6)


def _counted_hits(body: dict) -> dict:
    """The body as sparse-mm sent it before assets v4: the engine counts hits up to 10,000."""
    return {**body, "track_total_hits": 10_000}


def _no_rescore(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "rescore"}


def _nested(body: dict) -> dict:
    """Hybrid candidates as sparse-mm built them before (bench/results/report.md of commit
    686bb3b): the k-NN clause boosted 2 * w1 beside one bool of the rank_feature clauses boosted
    w2, instead of one flat disjunction. Same candidates in the same order, same rescore."""
    knn, *clauses = body["query"]["bool"]["should"]
    w2 = body["rescore"]["query"]["rescore_query"]["bool"]["should"][1]["bool"]["boost"]
    clause = knn["knn"]["dense"]
    knn = {"knn": {"dense": {**clause, "boost": clause["boost"] * w2}}}
    return {
        **body,
        "query": {"bool": {"should": [knn, {"bool": {"should": clauses, "boost": w2}}]}},
    }


# Variants of the production bodies that the report measures as candidate fixes.
# track_total_hits=10000: what the bodies asked before (the engines' default), counting hits,
# which keeps Lucene from skipping non-competitive documents (block-max WAND / MaxScore) until
# then; production now sends track_total_hits=false.
VARIANTS = {
    "sparse": {"track_total_hits=10000 (before)": _counted_hits},
    "hybrid": {
        "track_total_hits=10000 (before)": _counted_hits,
        "no rescore (approximate scores)": _no_rescore,
        "nested candidate clauses (before)": _nested,
    },
}


def time_variants(
    client, index: str, queries: Sequence[QueryVectors], w1: float, w2: float
) -> list[dict]:
    """Client latency and `took` p50 of each variant next to the production body, measured
    alternately query by query so that both see the same machine load; `same_hits` is the
    fraction of queries where both return the same ids and scores (to 6 decimals)."""
    import time

    from bench.metrics import percentiles

    out = []
    for mode, variants in VARIANTS.items():
        for name, change in variants.items():
            base_ms, var_ms, base_took, var_took, same = [], [], [], [], 0
            for q in queries:
                body = body_for(q, mode, w1, w2)
                body["_source"] = False
                hits = []
                for make, ms, took in (
                    (lambda b: b, base_ms, base_took),
                    (change, var_ms, var_took),
                ):
                    began = time.perf_counter()
                    response = client.search(index=index, body=make(body))
                    ms.append((time.perf_counter() - began) * 1000)
                    took.append(float(response["took"]))
                    found = response["hits"]["hits"]
                    hits.append([(h["_id"], round(h["_score"], 6)) for h in found])
                same += hits[0] == hits[1]
            out.append(
                {
                    "mode": mode,
                    "variant": name,
                    "production_latency_ms": percentiles(base_ms),
                    "variant_latency_ms": percentiles(var_ms),
                    "production_took_ms": percentiles(base_took),
                    "variant_took_ms": percentiles(var_took),
                    "same_hits": same / max(len(queries), 1),
                }
            )
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m bench.profile --model DIR --index NAME [--url URL] [--seed 7]`: the engine
    profile and the candidate fixes on an existing bench index (e.g. kept with --keep-index),
    with the synthetic world's test-caption queries."""
    import argparse
    import json
    import os

    from bench.collection import synthetic_queries, synthetic_workload
    from bench.engine import measured_engine
    from indexing.client import ConnectionOptions
    from indexing.engine import connect_client
    from indexing.registry import engine_url, specs
    from sparse_mm.checkpoint import load_model
    from sparse_mm.provenance import provenance, write_json

    parser = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument(
        "--index", required=True, help="a bench index, e.g. sparse-mm-bench-1000000"
    )
    profiled = next(s.name for s in specs() if s.query_profile)  # the bodies here are its
    parser.add_argument("--url", default=None, help=f"{profiled}'s URL [default: the URL rule]")
    parser.add_argument("--seed", type=int, default=7, help="synthetic world seed")
    parser.add_argument("--queries", type=int, default=100, help="caption queries")
    parser.add_argument("--profile-queries", type=int, default=10, help="queries profiled")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    url = engine_url(args.url, os.environ, profiled)
    client = connect_client(ConnectionOptions(url=url), engine=profiled)
    queries = synthetic_queries(model, seed=args.seed, n_queries=args.queries)
    w1, w2 = model.serving_weights()
    sample = queries.vectors[: args.profile_queries]
    n_docs = client.count(index=args.index)["count"]
    result = {
        **provenance(
            argv,
            prog="python -m bench.profile",
            model=model.path,
            engine=measured_engine(client, model.config.heads.dense_dim),
        ),
        "workload": synthetic_workload(
            args.seed, n_docs, len(queries), model.config.heads.vocab_size
        ),
        "index": args.index,
        "n_docs": n_docs,
        "n_queries": len(queries),
        "engine_profile": {
            mode: profile_mode(client, args.index, sample, mode, w1, w2)
            for mode in ("dense", "sparse", "hybrid")
        },
        "variants": time_variants(client, args.index, queries.vectors, w1, w2),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        write_json(result, args.json)


if __name__ == "__main__":
    main()

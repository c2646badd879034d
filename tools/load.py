"""Query load: `python -m tools.load [--images 100000] [--clients 4] [--duration 120]`.

Indexes the first `--images` images of a synthetic world (or reuses the index a previous run
kept, `--reuse-index`), then runs `--clients` query clients, each a process of its own with
its own connection, for `--duration` seconds, all starting at the same instant. Each client
sends caption queries in the modes of `--modes` in turn (k = 10, as `sparse-mm query` sends
them, without fetching stored vectors) and checks every answer for an error and k hits, and
`--check` of them (spread over the clients) against exact in-memory search (tools.answers):
scores and, in sparse mode, ids. Reported per mode and overall: requests, errors, queries/s,
the client's latency (request to parsed response) and the engine's own `took`, as
p50/p95/p99/max; per `--window` seconds the queries/s and latency percentiles, to show
whether latency drifts during the run; the answers checked and the mismatches.

The connection comes from `--url` (or $OPENSEARCH_URL) and, for a secured cluster,
$OPENSEARCH_USER, $OPENSEARCH_PASSWORD and $OPENSEARCH_CA_CERTS. Exits non-zero when any
request failed or any checked answer did not match exact search.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.metrics import K, percentiles
from tools.answers import Answer, describe_answers

MODES = ("hybrid", "sparse", "dense")


@dataclass(frozen=True)
class Sample:
    """One request as a client saw it."""

    client: int
    at_s: float  # when it was sent, seconds after the common start
    mode: str
    client_ms: float
    took_ms: float | None  # the engine's own time; None when the request failed
    error: str | None = None
    answer: Answer | None = None  # kept for the first answers of each client, to check


@dataclass(frozen=True)
class _Job:
    client: int
    connection: object  # indexing.client.ConnectionOptions (picklable)
    index: str
    queries: list  # QueryVectors
    modes: tuple[str, ...]
    w1: float
    w2: float
    start_at: float  # time.time() at which every client begins
    duration: float
    keep_answers: int = 0  # this client's first answers kept for checking against exact


def _client_loop(job: _Job) -> list[Sample]:
    """One client: its own connection, queries from its own offset, until the deadline and,
    past it, until its `keep_answers` are collected (however slow the engine; an error past the
    deadline ends it). Samples sent after the deadline are left out of the summary."""
    from indexing.engine import connect_client as connect
    from indexing.search import SearchOptions, search

    client = connect(job.connection)
    options = {m: SearchOptions(mode=m, k=K, explain=False) for m in job.modes}
    samples: list[Sample] = []
    kept = 0
    i = job.client * 7919  # clients start at different queries
    time.sleep(max(0.0, job.start_at - time.time()))
    origin = time.perf_counter() - (time.time() - job.start_at)
    deadline = origin + job.duration
    while (sent := time.perf_counter()) < deadline or kept < job.keep_answers:
        mode = job.modes[i % len(job.modes)]
        query_index = i % len(job.queries)
        query = job.queries[query_index]
        i += 1
        try:
            response = search(client, job.index, query, options[mode], job.w1, job.w2)
        except Exception as exc:  # counted and reported, the run goes on
            elapsed = (time.perf_counter() - sent) * 1000
            message = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            samples.append(Sample(job.client, sent - origin, mode, elapsed, None, message))
            if sent >= deadline:
                break
            continue
        elapsed = (time.perf_counter() - sent) * 1000
        error = None if len(response.hits) == K else f"{len(response.hits)} hits, not {K}"
        answer = None
        if error is None and kept < job.keep_answers:
            kept += 1
            ids, scores = zip(*((h.id, h.score) for h in response.hits), strict=True)
            answer = Answer(query_index, mode, ids, scores)
        took = float(response.took_ms)
        samples.append(Sample(job.client, sent - origin, mode, elapsed, took, error, answer))
    return samples


def run_load(
    connection,
    index: str,
    queries: Sequence,
    *,
    clients: int,
    duration: float,
    modes: Sequence[str] = MODES,
    w1: float,
    w2: float,
    check: int = 0,
) -> list[Sample]:
    """Every client's samples; `check` of them (each client's first answers; the clients run
    past `duration` until they have them) keep their answer for `tools.answers.check_answers`.
    Clients are forked processes (no GIL shared)."""
    context = multiprocessing.get_context("fork")
    start_at = time.time() + 1.0 + 0.2 * clients  # after every process is up
    shares = [check // clients + (c < check % clients) for c in range(clients)]
    jobs = [
        _Job(c, connection, index, list(queries), tuple(modes), w1, w2, start_at, duration, keep)
        for c, keep in enumerate(shares)
    ]
    with context.Pool(clients) as pool:
        results = pool.map(_client_loop, jobs)
    return [s for samples in results for s in samples]


def _stats(samples: Sequence[Sample], seconds: float) -> dict:
    ok = [s for s in samples if s.error is None]
    client = percentiles([s.client_ms for s in ok])
    client["max"] = max((s.client_ms for s in ok), default=float("nan"))
    took = percentiles([s.took_ms for s in ok])
    took["max"] = max((s.took_ms for s in ok), default=float("nan"))
    return {
        "requests": len(samples),
        "errors": len(samples) - len(ok),
        "qps": len(ok) / seconds if seconds > 0 else float("nan"),
        "client_ms": client,
        "took_ms": took,
    }


def summarize(samples: Sequence[Sample], duration: float, window: float = 10.0) -> dict:
    """Overall, per mode and per time window, of the samples sent within `duration`; the
    first error messages, counted."""
    samples = [s for s in samples if s.at_s < duration]
    modes = sorted({s.mode for s in samples})
    n_windows = max(1, math.ceil(duration / window - 1e-9))
    windows = []
    for w in range(n_windows):
        lo, hi = w * window, min((w + 1) * window, duration)
        inside = [s for s in samples if lo <= s.at_s < hi]
        stats = _stats(inside, hi - lo)
        windows.append({"from_s": lo, "to_s": hi, **stats})
    errors: dict[str, int] = {}
    for s in samples:
        if s.error is not None:
            errors[s.error] = errors.get(s.error, 0) + 1
    return {
        "overall": _stats(samples, duration),
        "modes": {m: _stats([s for s in samples if s.mode == m], duration) for m in modes},
        "windows": windows,
        "per_client_requests": [
            sum(1 for s in samples if s.client == c)
            for c in range(1 + max((s.client for s in samples), default=-1))
        ],
        "error_messages": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:10]),
    }


def markdown(report: dict) -> str:
    """The report as a markdown section."""
    s, m, e = report["summary"], report["machine"], report["engine"]
    setup = report["setup"]
    lines = [
        f"## Query load: {setup['clients']} clients for {setup['duration_s']:.0f} s "
        f"against {setup['n_docs']:,} documents",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_bytes'] / 2**30:.0f} GiB; "
        f"OpenSearch {e['opensearch']} ({e['jdk']}, heap {e['heap_max_bytes'] / 2**30:.1f} GiB) "
        "on the same machine as the clients; git "
        f"{report.get('git') or m['git_commit']}; {report['created']}.  ",
        f"Each client is a process with its own connection; modes in turn: "
        f"{', '.join(setup['modes'])}; k = {K}; every answer checked for an error and {K} hits.",
        *([describe_answers(report["answers"])] if report.get("answers") else []),
        "",
        "| mode | requests | errors | queries/s | client p50 | p95 | p99 | max | engine p50 "
        "| p99 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in [*s["modes"].items(), ("all", s["overall"])]:
        c, t = row["client_ms"], row["took_ms"]
        lines.append(
            f"| {name} | {row['requests']:,} | {row['errors']} | {row['qps']:.1f} | "
            f"{c['p50']:.1f} | {c['p95']:.1f} | {c['p99']:.1f} | {c['max']:.1f} | "
            f"{t['p50']:.1f} | {t['p99']:.1f} |"
        )
    lines += [
        "",
        "Latencies in ms. Over time (all modes):",
        "",
        "| window (s) | queries/s | client p50 | p99 | errors |",
        "|---|---|---|---|---|",
    ]
    for w in s["windows"]:
        c = w["client_ms"]
        lines.append(
            f"| {w['from_s']:.0f}-{w['to_s']:.0f} | {w['qps']:.1f} | {c['p50']:.1f} | "
            f"{c['p99']:.1f} | {w['errors']} |"
        )
    if s["error_messages"]:
        lines += ["", "Errors:", ""]
        lines += [f"- {n} x {message}" for message, n in s["error_messages"].items()]
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    from indexing.registry import DEFAULT_ENGINE, engine_spec, engine_url

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    spec = engine_spec(DEFAULT_ENGINE)
    parser.add_argument("--url", default=engine_url(None, os.environ, spec.name))
    parser.add_argument("--model", type=Path, help="model directory [default: the demo model]")
    parser.add_argument("--images", type=int, default=100_000, help="documents in the index")
    parser.add_argument("--seed", type=int, default=7, help="synthetic world seed")
    parser.add_argument("--queries", type=int, default=1000, help="distinct caption queries")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per time window")
    parser.add_argument("--check", type=int, default=300, help="answers compared with exact")
    parser.add_argument("--modes", default=",".join(MODES), help="modes sent in turn")
    parser.add_argument("--index", default="sparse-mm-load", help="index prefix (-<N> added)")
    parser.add_argument("--reuse-index", action="store_true", help="keep a matching index")
    parser.add_argument("--keep-index", action="store_true", help="do not delete it after")
    parser.add_argument("--json", type=Path, help="write the report's JSON here")
    parser.add_argument("--markdown", type=Path, help="write the report as markdown here")
    return parser


def _parse(argv: list[str] | None) -> tuple[argparse.Namespace, tuple[str, ...]]:
    parser = _parser()
    args = parser.parse_args(argv)
    modes = tuple(m.strip() for m in args.modes.split(","))
    if not set(modes) <= set(MODES) or args.clients < 1 or args.duration <= 0 or args.check < 0:
        parser.error(
            f"--modes must be among {', '.join(MODES)}; --clients >= 1; --duration > 0; "
            "--check >= 0"
        )
    return args, modes


def _connection(url: str):
    from indexing.client import ConnectionOptions, read_password
    from indexing.registry import DEFAULT_ENGINE, engine_spec

    spec = engine_spec(DEFAULT_ENGINE)
    return ConnectionOptions(
        url=url,
        user=os.environ.get(spec.user_variable),
        password=read_password(None, spec.password_variable),
        ca_certs=os.environ.get(spec.ca_variable),
    )


@dataclass
class _Prepared:
    """The indexed collection a load runs against, and its exact reference."""

    name: str
    queries: object  # bench.collection.Queries
    retriever: object  # sparse_mm.retriever.ExactRetriever
    ingest: dict
    w1: float
    w2: float


def _prepare(client, model, args) -> _Prepared:
    """Generate, encode and index the collection (or reuse the index); the exact reference."""
    from bench.collection import synthetic_collection
    from bench.engine import ingest_collection
    from bench.reference import build_reference

    print(f"generating and encoding {args.images:,} synthetic images (seed {args.seed})")
    collection, queries = synthetic_collection(
        model, args.images, seed=args.seed, n_queries=args.queries
    )
    name = f"{args.index}-{args.images}"
    ingest = ingest_collection(client, name, model, collection, reuse=args.reuse_index)
    figures = ingest.as_dict(collection.encode_seconds)
    rate = figures["docs_per_s"]
    print(f"index {name}: " + ("reused" if ingest.reused else f"ingested at {rate:,.0f} docs/s"))
    w1, w2 = model.serving_weights()
    retriever, _ = build_reference(collection, w1, w2)
    return _Prepared(name, queries, retriever, figures, w1, w2)


def _report(argv, args, modes, client, model, prepared: _Prepared, samples, began) -> dict:
    from bench.collection import synthetic_workload
    from bench.engine import measured_engine
    from sparse_mm.provenance import provenance
    from tools.answers import check_answers

    answers = [s.answer for s in samples if s.answer]
    return {
        **provenance(
            argv,
            prog="python -m tools.load",
            model=model.path,
            engine=measured_engine(client, model.config.heads.dense_dim),
        ),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(began)),
        "workload": synthetic_workload(
            args.seed, args.images, len(prepared.queries), model.config.heads.vocab_size
        ),
        "setup": {
            "n_docs": args.images,
            "index": prepared.name,
            "clients": args.clients,
            "duration_s": args.duration,
            "modes": list(modes),
            "distinct_queries": len(prepared.queries),
            "k": K,
            "ingest": prepared.ingest,
        },
        "summary": summarize(samples, args.duration, args.window),
        "answers": check_answers(answers, prepared.retriever, prepared.queries),
    }


def main(argv: list[str] | None = None) -> None:
    from indexing.engine import connect_client as connect
    from sparse_mm.atomic import write_text_atomic
    from sparse_mm.checkpoint import load_model
    from sparse_mm.demo import demo_model_dir
    from sparse_mm.provenance import write_json

    args, modes = _parse(argv)
    connection = _connection(args.url)
    client = connect(connection)
    model = load_model(args.model or demo_model_dir())
    prepared = _prepare(client, model, args)
    print(f"{args.clients} clients, {args.duration:.0f} s, modes {', '.join(modes)}")
    began = time.time()
    samples = run_load(connection, prepared.name, prepared.queries.vectors,
                       clients=args.clients, duration=args.duration, modes=modes,
                       w1=prepared.w1, w2=prepared.w2, check=args.check)  # fmt: skip
    report = _report(argv, args, modes, client, model, prepared, samples, began)
    if not args.keep_index:
        client.indices.delete(index=prepared.name, ignore_unavailable=True)
    text = markdown(report)
    print(text)
    if args.json:
        write_json(report, args.json)
    if args.markdown:
        write_text_atomic(args.markdown, text)
    if report["summary"]["overall"]["errors"]:
        raise SystemExit(f"{report['summary']['overall']['errors']} requests failed")
    if report["answers"]["mismatches"]:
        raise SystemExit(
            f"{report['answers']['mismatches']} checked answers did not match exact search"
        )


if __name__ == "__main__":
    main()

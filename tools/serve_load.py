"""Load on `sparse-mm serve`, bounded, on the loopback:
`python -m tools.serve_load [--engines opensearch,elasticsearch] [--clients 1,4,16]
[--requests 400] [--json FILE]`.

For each engine (its URL by the URL rule: $OPENSEARCH_URL, $ELASTICSEARCH_URL, the port
variables, the default ports) it builds the bundled demo corpus' test split into a fresh index
behind the alias `serve-load` (`ingest --alias`, verified), starts `sparse-mm serve` on it as a
process of its own on a free loopback port, and sends GET /api/search (hybrid, k = 10, the demo
corpus' captions in turn) from 1, 4 and 16 concurrent clients (one asyncio loop in this
process, one connection per client), `--requests` requests per level after a warm-up. Each
level reports requests, errors (any answer but a 200 with k hits: 0 expected), queries/s, the
client's latency p50/p95/p99 and, beside it, what the service reports of the same requests:
its own total, the query's encoding, the engine's `took` and the round trips to it.

Writes the record with its provenance to `--json` (bench/results/serve_load.json, rendered
into docs/serve.md by tools.recorders.readme_tables). Exits non-zero on any error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.metrics import percentiles

ALIAS = "serve-load"
K = 10
WARMUP = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_index(engine, url: str) -> str:
    """The demo corpus' test split behind ALIAS (a fresh verified index); its concrete name."""
    from indexing.client import ConnectionOptions
    from indexing.engine import connect
    from indexing.ingest import IngestOptions, source_from_dataset
    from indexing.versions import ingest_alias
    from sparse_mm.checkpoint import load_model
    from sparse_mm.demo import demo_data_dir, demo_model_dir

    adapter = connect(ConnectionOptions(url=url), engine=engine)
    source = source_from_dataset(demo_data_dir(), "test")
    model = load_model(demo_model_dir())
    report = ingest_alias(adapter, model, source, IngestOptions(), ALIAS, keep_old=0)
    return report.index


def start_service(engine: str, url: str, port: int, log) -> subprocess.Popen:
    """`sparse-mm serve` on the alias, its output into the file `log` (a pipe nobody reads
    would fill up and stop the service)."""
    command = [
        sys.executable, "-c", "from sparse_mm.cli import main; main()", "serve",
        "--index", ALIAS, "--engine", engine, "--url", url, "--port", str(port),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(base: str, process: subprocess.Popen, log: Path, seconds: float = 120) -> dict:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"sparse-mm serve ended: {log.read_text()[-2000:]}")
        try:
            answer = httpx.get(f"{base}/api/health", timeout=5)
            if answer.status_code == 200:
                return answer.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"sparse-mm serve at {base} was not healthy within {seconds:.0f} s")


async def _level(base: str, texts: list[str], clients: int, requests: int) -> dict:
    import httpx

    samples: list[dict] = []
    errors: list[str] = []
    counter = iter(range(requests))

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for i in counter:
                params = {"q": texts[i % len(texts)], "mode": "hybrid", "k": K}
                began = time.perf_counter()
                try:
                    answer = await http.get("/api/search", params=params)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                ms = (time.perf_counter() - began) * 1000
                if answer.status_code != 200 or len(answer.json()["hits"]) != K:
                    errors.append(f"{answer.status_code}: {answer.text[:200]}")
                    continue
                samples.append({"client_ms": ms, **answer.json()["timings"]})

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - began

    def p(key: str) -> dict:
        return percentiles([s[key] for s in samples])

    return {
        "clients": clients,
        "requests": requests,
        "answered": len(samples),
        "errors": len(errors),
        "first_errors": errors[:5],
        "seconds": elapsed,
        "qps": len(samples) / elapsed if elapsed else None,
        "latency_ms": p("client_ms"),
        "service_total_ms": p("total_ms"),
        "encode_ms": p("encode_ms"),
        "engine_took_ms": p("engine_ms"),
        "round_trip_ms": p("round_trip_ms"),
    }


def load_levels(base: str, texts: list[str], levels: list[int], requests: int) -> list[dict]:
    asyncio.run(_level(base, texts, 1, WARMUP))  # the encoder and the engine's caches warm
    return [asyncio.run(_level(base, texts, c, requests)) for c in levels]


def main(argv: list[str] | None = None) -> None:
    from indexing.engine import engine_class
    from indexing.ingest import source_from_dataset
    from indexing.registry import engine_url
    from sparse_mm.demo import demo_data_dir, demo_model_dir
    from sparse_mm.provenance import data_record, guard_results, provenance, write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="opensearch,elasticsearch")
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--requests", type=int, default=400, help="requests per level")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for name in engines:
        engine_class(name)  # an unknown engine: one line, before anything runs
    levels = [int(c) for c in args.clients.split(",")]
    report = provenance(
        argv,
        prog="python -m tools.serve_load",
        model=demo_model_dir(),
        data=data_record(demo_data_dir()),
    )
    if args.json:
        guard_results(report, args.json)
    source = source_from_dataset(demo_data_dir(), "test")
    texts = list(dict.fromkeys(c for row in source.metadata for c in row["captions"]))[:200]
    report["runs"] = []
    for name in engines:
        url = engine_url(None, os.environ, name)
        index = build_index(name, url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as folder:
            log = Path(folder) / "serve.log"
            with log.open("wb") as out:
                service = start_service(name, url, port, out)
                try:
                    health = wait_healthy(base, service, log)
                    levels_out = load_levels(base, texts, levels, args.requests)
                finally:
                    service.terminate()
                    service.wait(timeout=30)
        run = {"engine": name, "version": health["version"], "index": index,
               "documents": health["documents"], "levels": levels_out}  # fmt: skip
        report["runs"].append(run)
        for level in levels_out:
            print(
                f"{name} {level['clients']:>2} clients: {level['answered']} answered, "
                f"{level['errors']} errors, {level['qps']:.1f} q/s, p50 "
                f"{level['latency_ms']['p50']:.1f} ms, p99 {level['latency_ms']['p99']:.1f} ms "
                f"(engine took p50 {level['engine_took_ms']['p50']:.1f} ms)"
            )
    if args.json:
        write_json(report, args.json)
    if any(level["errors"] for run in report["runs"] for level in run["levels"]):
        sys.exit("errors under load: see first_errors in the report")


if __name__ == "__main__":
    main()

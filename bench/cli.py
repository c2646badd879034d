"""`sparse-mm bench`: the click command (assembled into the root command by sparse_mm/cli.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from indexing.engine_options import connect_engine, connection_options
from sparse_mm.cli_support import check_writable, model_option
from sparse_mm.errors import ConfigError

_SUFFIX = {"k": 1_000, "m": 1_000_000}


def parse_sizes(text: str) -> list[int]:
    """ "10k,100k,1M" -> [10000, 100000, 1000000] (ascending, unique)."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        scale = _SUFFIX.get(part[-1:], 1)
        digits = part[:-1] if part[-1:] in _SUFFIX else part
        try:
            value = int(float(digits) * scale)
        except ValueError:
            raise ConfigError(f"--synth: {part!r} is not a size like 10000, 100k or 1M") from None
        if value < 10:
            raise ConfigError(f"--synth: sizes must be at least 10, got {part!r}")
        sizes.append(value)
    return sorted(set(sizes))


def parse_ints(text: str, name: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"{name}: expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{name}: values must be >= 1, got {text!r}")
    return values


@click.command("bench")
@connection_options
@model_option
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Dataset folder in the seed layout [default: the demo corpus, unless --synth].",
)
@click.option("--split", default="test", show_default=True, help="Split of --data to index.")
@click.option(
    "--synth",
    "synth_sizes",
    default=None,
    help="Instead of --data: synthetic collections of these sizes, e.g. 10k,100k,1M "
    "(the first N images of the seed's world; queries are captions of its test images).",
)
@click.option("--seed", default=7, show_default=True, help="Synthetic world seed (--synth).")
@click.option(
    "--index",
    default="sparse-mm-bench",
    show_default=True,
    help="Index name prefix; each size gets <prefix>-<N>, deleted afterwards.",
)
@click.option(
    "--url",
    envvar="OPENSEARCH_URL",
    default="http://localhost:9200",
    show_default=True,
    help="OpenSearch URL (or $OPENSEARCH_URL).",
)
@click.option("--queries", "n_queries", default=200, show_default=True, help="Caption queries.")
@click.option(
    "--json",
    "json_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the JSON here.",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write report.json, report.md and PNG plots into this folder.",
)
@click.option("--clients", default="1,2,4", show_default=True, help="Concurrency levels for qps.")
@click.option(
    "--ingest-clients", default=2, show_default=True, help="Concurrent bulk streams for ingest."
)
@click.option("--batch", default=256, show_default=True, help="Queries per batched torch call.")
@click.option("--no-grid", is_flag=True, help="Skip the pruning grid.")
@click.option(
    "--reuse-index",
    is_flag=True,
    help="Keep an existing bench index of the same collection instead of re-ingesting "
    "(ingest rate is then not measured).",
)
@click.option("--keep-index", is_flag=True, help="Do not delete the indices afterwards.")
@click.option(
    "--device",
    "devices",
    default="cpu",
    show_default=True,
    help="In-memory devices, comma-separated: cpu, or cpu,cuda (when a GPU is present).",
)
def bench(
    model_dir,
    data_dir,
    split,
    synth_sizes,
    seed,
    index,
    url,
    n_queries,
    json_file,
    report_dir,
    clients,
    ingest_clients,
    batch,
    no_grid,
    reuse_index,
    keep_index,
    devices,
) -> None:
    """Benchmark OpenSearch against exact in-memory PyTorch retrieval.

    For each collection: ingest rate and index size, parity per mode (overlap@10, recall@10
    vs exact, score errors, R@1/5/10 of both), latency percentiles and queries/s with 1, 2
    and 4 clients, the same for the in-memory reference (single and batched), a pruning grid;
    with several sizes, latency = a + b * N per mode.
    """
    from bench.collection import (
        dataset_collection,
        dataset_workload,
        synthetic_collection,
        synthetic_workload,
    )
    from bench.report import write_json, write_report
    from bench.run import RunOptions, check_targets, report_header, run_one, scale_fit
    from sparse_mm.checkpoint import load_model
    from sparse_mm.demo import demo_data_dir, demo_model_dir

    if synth_sizes and data_dir:
        raise click.UsageError("give either --data or --synth, not both")
    if n_queries < 1 or batch < 1 or ingest_clients < 1:
        raise click.UsageError("--queries, --batch and --ingest-clients must be >= 1")
    # Local inputs first: a wrong path must not be reported as an unreachable engine.
    sizes = parse_sizes(synth_sizes) if synth_sizes else None
    clients_levels = parse_ints(clients, "--clients")
    model = load_model(model_dir or demo_model_dir())
    check_writable(json_file, "--json")
    if report_dir is not None and report_dir.exists() and not report_dir.is_dir():
        raise click.UsageError(f"--report {report_dir} is a file, not a folder")
    if data_dir is not None and not data_dir.is_dir():
        raise click.UsageError(f"--data {data_dir} is not a folder")
    prepared = None
    if sizes is None:  # one dataset split: read and check it before contacting the engine
        root = data_dir or demo_data_dir()
        prepared = dataset_collection(model, root, split, n_queries=n_queries)
    client = connect_engine(url)

    def log(message: str) -> None:
        click.echo(message, err=True)

    options = RunOptions(
        index=index,
        clients=clients_levels,
        ingest_clients=ingest_clients,
        batch=batch,
        reuse_index=reuse_index,
        keep_index=keep_index,
        devices=tuple(d.strip() for d in devices.split(",")),
        log=log,
    )
    if no_grid:
        options.grid = ()
    report = report_header(client, model, sys.argv[1:])
    vocab_size = model.config.heads.vocab_size
    for size in sizes or [None]:
        if size is None:
            (collection, queries), prepared = prepared, None
            workload = dataset_workload(
                data_dir or demo_data_dir(), split, len(queries), vocab_size
            )
        else:
            log(f"generating and encoding {size:,} synthetic images (seed {seed})")
            collection, queries = synthetic_collection(model, size, seed=seed, n_queries=n_queries)
            workload = synthetic_workload(seed, size, len(queries), vocab_size)
        run = {"workload": workload, **run_one(client, model, collection, queries, options)}
        report["runs"].append(run)
        click.echo(summary(run))
        del collection, queries
        report["scale_fit"] = scale_fit(report["runs"])
        report["targets"] = check_targets(report["runs"])
        if json_file:  # after every size, so a long run leaves its results so far
            write_json(report, json_file)
        if report_dir:
            write_report(report, report_dir)


def summary(run: dict) -> str:
    lines = [f"N = {run['n_docs']:,}, {run['n_queries']} queries"]
    for mode, m in run["modes"].items():
        t = run["reference"]["torch_cpu"][mode]
        lines.append(
            f"  {mode:<6} overlap@10 {m['overlap@10']:.4f} (ties {m['overlap@10_ties']:.4f}) "
            f"max rel err {m['score_rel_err_max']:.2e}  engine p50 {m['latency_ms']['p50']:.2f} ms "
            f"(took {m['took_ms']['p50']:.1f})  torch p50 {t['latency_ms']['p50']:.2f} ms, "
            f"batched {t['batched']['qps']:,.0f} q/s"
        )
    ing = run["ingest"]
    rate = f"{ing['docs_per_s']:,.0f} docs/s" if ing["docs_per_s"] else "reused index"
    lines.append(
        f"  ingest {rate}, searchable after {ing['time_until_searchable_s']:.2f}s, "
        f"index {ing['index_bytes'] / 2**20:,.1f} MiB"
    )
    return "\n".join(lines)

"""The options of `sparse-mm bench` (bench/cli.py), in one decorator: `bench_options`."""

from __future__ import annotations

from pathlib import Path

import click

from indexing.engine_options import EngineName, connection_options, url_option
from indexing.layout import DEFAULT_PROFILE, PROFILES
from indexing.registry import DEFAULT_ENGINE, specs
from sparse_mm.cli_support import model_option


def _engine_url_options(f):
    """--url (the chosen engine's) and, for --engine both, one --<engine>-url per engine other
    than the first (the first's is --url), generated from the registry."""
    for spec in specs()[1:]:
        f = click.option(
            f"--{spec.name}-url",
            f"{spec.name}_url",
            default=None,
            help=f"With --engine both: {spec.label}'s URL [default: by the URL rule, "
            f"${spec.url_variable} first]. With one engine, --url is its URL.",
        )(f)
    return url_option(f)


def bench_options(f):
    """Every option of the bench command, in --help's order."""
    for option in reversed(_OPTIONS):
        f = option(f)
    return f


_OPTIONS = [
    connection_options,
    model_option,
    click.option(
        "--data",
        "data_dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Dataset folder in the seed layout [default: the demo corpus, unless --synth].",
    ),
    click.option("--split", default="test", show_default=True, help="Split of --data to index."),
    click.option(
        "--synth",
        "synth_sizes",
        default=None,
        help="Instead of --data: synthetic collections of these sizes, e.g. 10k,100k,1M "
        "(the first N images of the seed's world; queries are captions of its test images).",
    ),
    click.option(
        "--sizes",
        "sizes_text",
        default=None,
        help="Collection sizes for every --workload, e.g. 10k,100k,1M (--synth is the same for "
        "the model workload).",
    ),
    click.option(
        "--workload",
        "workloads",
        default="model",
        show_default=True,
        help="model (the model encoding synthetic images), lsr-30k (learned-sparse statistics over "
        "30,522 terms), or both: model,lsr-30k.",
    ),
    click.option(
        "--engine",
        "engine_choice",
        type=EngineName(extra=("both",)),
        default=DEFAULT_ENGINE,
        show_default=True,
        help="Engines measured in the same run, on the same documents and queries (both: every "
        "registered engine).",
    ),
    _engine_url_options,
    click.option(
        "--lsr-grid",
        is_flag=True,
        help="Also the lsr-30k grid of (32, 128) doc terms x (8, 32) query terms at "
        "--lsr-grid-size.",
    ),
    click.option("--lsr-grid-size", default="100k", show_default=True, help="N of the lsr grid."),
    click.option(
        "--seed",
        default=7,
        show_default=True,
        help="Workload seed: the lsr workloads' generator's; for the model workload, "
        "held-out queries of the model's own synthetic training world (its provenance.json; "
        "that world's seed asks the default sample), or for a model without one the "
        "synthetic world itself.",
    ),
    click.option(
        "--index",
        default="sparse-mm-bench",
        show_default=True,
        help="Index name prefix; each size gets <prefix>-<engine>-<N>, deleted afterwards.",
    ),
    click.option("--queries", "n_queries", default=200, show_default=True, help="Caption queries."),
    click.option(
        "--json",
        "json_file",
        type=click.Path(path_type=Path),
        default=None,
        help="Write the JSON here.",
    ),
    click.option(
        "--report",
        "report_dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Write <engine>.json per engine, report.md and PNG plots into this folder.",
    ),
    click.option(
        "--clients", default="1,2,4", show_default=True, help="Concurrency levels for qps."
    ),
    click.option(
        "--ingest-clients",
        default=1,
        show_default=True,
        help="Concurrent bulk streams for ingest (each keeps the ingest command's requests in "
        "flight).",
    ),
    click.option(
        "--index-profile",
        type=click.Choice(list(PROFILES)),
        default=DEFAULT_PROFILE,
        show_default=True,
        help="HNSW graph of the bench indices, and the ef_search of dense mode: "
        + "; ".join(f"{p.name}: {p.summary}, ef_search {p.ef_search}" for p in PROFILES.values())
        + ".",
    ),
    click.option("--batch", default=256, show_default=True, help="Queries per batched torch call."),
    click.option("--no-grid", is_flag=True, help="Skip the pruning grid."),
    click.option(
        "--timing-queries",
        default=50,
        show_default=True,
        help="Queries timed one by one on the in-memory reference (parity uses every query).",
    ),
    click.option(
        "--qps-seconds",
        default=5.0,
        show_default=True,
        help="Seconds of each throughput level (1/2/4 clients), engine and in-memory.",
    ),
    click.option(
        "--grid-queries", default=100, show_default=True, help="Queries per pruning grid point."
    ),
    click.option(
        "--pruning-grid-size",
        default="100k",
        show_default=True,
        help="With --sizes: the N at which the pruning grid and the query-body variants run "
        "(none at other sizes).",
    ),
    click.option(
        "--append",
        is_flag=True,
        help="Add this run's sizes/workloads to the report already in --report (same clean git "
        "commit and options; refused otherwise), to split one long command into pieces.",
    ),
    click.option(
        "--reuse-index",
        is_flag=True,
        help="Keep an existing bench index of the same collection instead of re-ingesting "
        "(ingest rate is then not measured).",
    ),
    click.option("--keep-index", is_flag=True, help="Do not delete the indices afterwards."),
    click.option(
        "--device",
        "devices",
        default="cpu",
        show_default=True,
        help="In-memory devices, comma-separated: cpu, or cpu,cuda (when a GPU is present).",
    ),
]

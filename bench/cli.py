"""`sparse-mm bench`: the click command (assembled into the root command by sparse_mm/cli.py)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from types import SimpleNamespace

import click

from bench.cli_options import bench_options
from indexing.engine_options import connect_engine
from indexing.layout import IndexSettings
from indexing.registry import specs
from sparse_mm.cli_support import check_writable
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
@bench_options
def bench(**given) -> None:
    """Benchmark the engines against exact in-memory PyTorch retrieval.

    For each workload and collection size: ingest rate (to searchable and until merges settle),
    index size and engine memory, parity per mode (overlap@10, recall@10 vs exact, score
    errors, R@1/5/10 of both), latency percentiles and queries/s with 1, 2 and 4 clients, the
    same for the in-memory reference (single and batched, measured once and shared by the
    engines), the work per query against a memory-bandwidth limit, a pruning grid; with several
    sizes, latency = a + b * N per system and mode; the issue's targets, met or not.
    """
    from sparse_mm.checkpoint import load_model
    from sparse_mm.demo import demo_model_dir

    a = SimpleNamespace(**given)
    _check_options(a)
    # Local inputs first: a wrong path must not be reported as an unreachable engine.
    plan_ = _plan(a)
    model = load_model(a.model_dir or demo_model_dir())
    check_writable(a.json_file, "--json")
    _check_paths(a, plan_)
    prepared = None
    if plan_.sizes is None:  # one dataset split: read and check it before contacting the engine
        from bench.collection import dataset_collection
        from sparse_mm.demo import demo_data_dir

        root = a.data_dir or demo_data_dir()
        prepared = dataset_collection(model, root, a.split, n_queries=a.n_queries)
    engines = {name: connect_engine(url, name, option=flag) for name, (url, flag) in
               engine_urls(a.engine_choice, given).items()}  # fmt: skip
    options = _run_options(a)
    if plan_.sizes is not None:
        _run_sizes(a, plan_, engines, model, options)
    else:
        _run_dataset(a, prepared, engines, model, options)


@dataclass(frozen=True)
class _Plan:
    names: tuple[str, ...]
    workloads: tuple[str, ...]
    sizes: list[int] | None
    grid_size: int
    clients: tuple[int, ...]


def _check_options(a: SimpleNamespace) -> None:
    if (a.synth_sizes or a.sizes_text) and a.data_dir:
        raise click.UsageError("give either --data or --synth/--sizes, not both")
    if a.synth_sizes and a.sizes_text:
        raise click.UsageError("give either --synth or --sizes, not both")
    if min(a.n_queries, a.batch, a.ingest_clients, a.timing_queries, a.grid_queries) < 1:
        raise click.UsageError(
            "--queries, --batch, --ingest-clients, --timing-queries and --grid-queries must be >= 1"
        )
    if not a.qps_seconds > 0:
        raise click.UsageError("--qps-seconds must be > 0")
    if a.append and (a.report_dir is None or not (a.sizes_text or a.synth_sizes)):
        raise click.UsageError("--append needs --report and --sizes")


def _plan(a: SimpleNamespace) -> _Plan:
    from bench.suite import engine_names, parse_workloads

    try:
        names = engine_names(a.engine_choice)
        chosen = parse_workloads(a.workloads)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    text = a.synth_sizes or a.sizes_text
    return _Plan(
        names,
        chosen,
        parse_sizes(text) if text else None,
        parse_sizes(a.lsr_grid_size)[0],
        parse_ints(a.clients, "--clients"),
    )


def _check_paths(a: SimpleNamespace, plan_: _Plan) -> None:
    if a.json_file and len(plan_.names) > 1:
        raise click.UsageError("--json takes one engine's report; with --engine both use --report")
    if a.report_dir is not None and a.report_dir.exists() and not a.report_dir.is_dir():
        raise click.UsageError(f"--report {a.report_dir} is a file, not a folder")
    if a.data_dir is not None and not a.data_dir.is_dir():
        raise click.UsageError(f"--data {a.data_dir} is not a folder")
    if plan_.sizes is None and plan_.workloads != ("model",):
        raise click.UsageError("--workload lsr-30k needs --sizes")


def engine_urls(choice: str, given: dict) -> dict[str, tuple[str | None, str]]:
    """engine -> (its URL or None for the URL rule, the option that names it). One engine: its
    URL is --url, and a --<engine>-url (for --engine both) is refused in one line; both: the
    first engine's is --url, each other's its --<engine>-url."""
    from bench.suite import engine_names

    names = engine_names(choice)
    others = {s.name: f"--{s.name}-url" for s in specs()[1:]}
    stray = [flag for name, flag in others.items() if given.get(f"{name}_url")]
    if len(names) == 1 and stray:
        raise click.UsageError(
            f"{', '.join(stray)} is for --engine both; with --engine {choice} give its URL as --url"
        )
    if len(names) == 1:
        return {choice: (given.get("url"), "--url")}
    return {
        name: (given.get("url"), "--url")
        if name not in others
        else (given.get(f"{name}_url"), others[name])
        for name in names
    }


def _run_options(a: SimpleNamespace):
    from bench.run import RunOptions

    def log(message: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {message}", err=True)

    options = RunOptions(
        index=a.index,
        clients=parse_ints(a.clients, "--clients"),
        ingest_clients=a.ingest_clients,
        index_settings=IndexSettings(profile=a.index_profile),
        batch=a.batch,
        reuse_index=a.reuse_index,
        keep_index=a.keep_index,
        devices=tuple(d.strip() for d in a.devices.split(",")),
        timing_queries=a.timing_queries,
        qps_seconds=a.qps_seconds,
        grid_queries=a.grid_queries,
        log=log,
    )
    if a.no_grid:
        options.grid = ()
    return options


def _run_sizes(a: SimpleNamespace, plan_: _Plan, engines: dict, model, options) -> None:
    """Every workload at every size on every engine (bench.suite), the reports rewritten after
    each size."""
    from bench.phases import summary_line
    from bench.pieces import earlier_pieces, run_recipe
    from bench.suite import plan, run_suite
    from bench.work import measure_bandwidth

    pruning_size = parse_sizes(a.pruning_grid_size)[0]
    recipe = run_recipe(options, seed=a.seed, n_queries=a.n_queries,
                        lsr_grid_size=plan_.grid_size)  # fmt: skip
    recipe["pruning_grid_size"] = pruning_size
    options.bandwidth_bytes_s = measure_bandwidth()["bytes_per_s"]
    items = plan(plan_.workloads, plan_.sizes, n_queries=a.n_queries, seed=a.seed,
                 lsr_grid=a.lsr_grid, lsr_grid_size=plan_.grid_size)  # fmt: skip
    earlier = {}
    if a.append:  # refused (one line) before anything is measured
        earlier = earlier_pieces(
            a.report_dir, engines, model, recipe, items, _argv(), options.index_settings
        )
    options.log(f"plan: {len(items)} collections x {len(engines)} engines")
    write = _writer(a, plan_.names, earlier, recipe, options)
    for item, runs in run_suite(items, engines, model, options, argv=_argv(),
                                n_queries=a.n_queries, seed=a.seed, write=write,
                                pruning_size=pruning_size):  # fmt: skip
        for name, run in runs.items():
            click.echo(f"{name} {item.label} " + summary(run))
    options.log("phases: " + summary_line(options.phases.records))


def _writer(a: SimpleNamespace, names, earlier: dict, recipe: dict, options):
    from bench.pieces import merged
    from sparse_mm.provenance import write_json

    def write(reports: dict) -> None:
        for report in reports.values():
            report["memory_bandwidth"] = {"bytes_per_s": options.bandwidth_bytes_s}
            report["recipe"] = recipe
        reports = {
            **earlier,  # an --append run's other engines, unchanged
            **{name: merged(earlier.get(name), r) for name, r in reports.items()},
        }
        if a.json_file:
            write_json(reports[names[0]], a.json_file)
        if a.report_dir:
            from bench.peers_report import write_peers_report

            write_peers_report(reports, a.report_dir)

    return write


def _run_dataset(a: SimpleNamespace, prepared, engines: dict, model, options) -> None:
    """One dataset split on one engine."""
    from bench.collection import dataset_workload
    from bench.run import report_header, run_one
    from bench.targets import check_targets, scale_fits
    from sparse_mm.demo import demo_data_dir
    from sparse_mm.provenance import write_json

    ((name, client),) = engines.items()
    report = report_header(client, model, _argv(), settings=options.index_settings)
    collection, queries = prepared
    workload = dataset_workload(
        a.data_dir or demo_data_dir(), a.split, len(queries), model.config.heads.vocab_size
    )
    run = {"workload": workload, **run_one(client, model, collection, queries, options)}
    report["runs"].append(run)
    click.echo(summary(run))
    report["scale_fit"] = scale_fits(report["runs"])
    report["targets"] = check_targets(report["runs"])
    if a.json_file:
        write_json(report, a.json_file)
    if a.report_dir:
        from bench.peers_report import write_peers_report

        write_peers_report({name: report}, a.report_dir)


def _argv() -> list[str]:
    """The arguments after `bench` (the root command's argv holds the subcommand too)."""
    args = sys.argv[1:]
    return args[1:] if args[:1] == ["bench"] else args


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

"""The whole benchmark of one command: every workload at every size on every engine.

For each (workload, N) the collection and its queries are made once, the exact in-memory
reference is measured once, and each engine runs on the same documents and queries
(bench.run.run_size). After each size every engine's JSON is rewritten (and the Markdown
report and plots, when a report folder is given), so a crash at 1M keeps 10k and 100k.

Workloads:
- `model`: the model (the committed demo model by default) encoding the first N images of a
  synthetic world (bench.collection.synthetic_collection), queries its test captions;
- `lsr-30k`: bench.workloads' learned-sparse statistics over a 30,522-term vocabulary (64 terms
  per document, 16 per query by default), the model's serving weights w1, w2 for hybrid, dense
  dimension from the generator; with `lsr_grid`, at `lsr_grid_size` also (32, 128) doc terms x
  (8, 32) query terms, each its own workload (`label` "lsr-30k d32 q8", ...); the two query
  term counts of one doc term count search the same documents, ingested once.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from bench.phases import totals
from bench.run import RunOptions, report_header, run_size
from bench.targets import check_targets, scale_fits
from bench.workloads import LsrParams, lsr_collection, sparse_statistics
from indexing.registry import engine_names as registered_engines

WORKLOADS = ("model", "lsr-30k")
GRID_DOC_TERMS = (32, 128)
GRID_QUERY_TERMS = (8, 32)
LSR_DEFAULTS_SOURCE = (
    "64 terms per image and 16 per query over BERT's 30,522-term WordPiece vocabulary: the "
    "benchmark issue's defaults (a learned sparse image encoder at a BERT-size vocabulary); "
    "Zipf popularity and log-normal weights as in bench/workloads.py"
)

# Dense mode's ef_search on lsr-30k (the index's graph unchanged): the generator's dense
# vectors have many near-equidistant neighbours, so the default profile's 512 leaves recall@10
# under 0.95 at 1M (bench/results/choice_1m_seed7's grid: 1024 gave 0.971 on OpenSearch and
# 0.949 on Elasticsearch); 1536 is the next step up on both. The model workload keeps the
# profile's own.
LSR_DENSE_EF_SEARCH = 1536


def parse_workloads(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
    unknown = [n for n in names if n not in WORKLOADS]
    if not names or unknown:
        raise ValueError(
            f"--workload: unknown {', '.join(unknown) or 'empty'}; "
            f"choose from {', '.join(WORKLOADS)}"
        )
    return names


def engine_choices() -> tuple[str, ...]:
    """--engine's values: every registered engine (indexing.registry), or "both" for all."""
    return (*registered_engines(), "both")


def engine_names(choice: str) -> tuple[str, ...]:
    if choice not in engine_choices():
        raise ValueError(f"--engine: expected one of {', '.join(engine_choices())}, got {choice!r}")
    return registered_engines() if choice == "both" else (choice,)


@dataclass(frozen=True)
class Item:
    """One (workload, size) of the plan; `params` for lsr workloads."""

    workload: str
    n_docs: int
    label: str
    params: LsrParams | None = None
    grid: bool = False  # a point of the lsr doc/query-terms grid (no pruning grid there)
    reuse: bool = False  # the previous item's index holds the same documents: search it
    keep: bool = False  # the next item searches the same documents: keep the index


def plan(
    workloads: tuple[str, ...],
    sizes: list[int],
    *,
    n_queries: int,
    seed: int,
    lsr_grid: bool = False,
    lsr_grid_size: int = 100_000,
) -> list[Item]:
    """The (workload, N) items in run order: each workload by ascending N, the lsr grid last."""
    items = []
    for w in workloads:
        for n in sorted(sizes):
            if w == "model":
                items.append(Item(w, n, w))
            else:
                params = LsrParams(n_docs=n, n_queries=n_queries, seed=seed)
                items.append(Item(w, n, params.name, params))
    if lsr_grid and "lsr-30k" in workloads:
        base = LsrParams(n_docs=lsr_grid_size, n_queries=n_queries, seed=seed)
        for d in GRID_DOC_TERMS:  # the documents depend on d only: one ingest per d
            for i, q in enumerate(GRID_QUERY_TERMS):
                params = replace(base, doc_terms=d, query_terms=q)
                label = f"{base.name} d{d} q{q}"
                last = i == len(GRID_QUERY_TERMS) - 1
                items.append(Item("lsr-30k", lsr_grid_size, label, params, True, i > 0, not last))
    return items


def demo_model_statistics(model) -> dict | None:
    """The model's own sparsity as `sparse-mm eval` counted it on its test split (terms per
    query and per image, FLOPs), from the model folder's provenance.json, if it has one."""
    path = Path(model.path) / "provenance.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    sparsity = record.get("test", {}).get("sparsity")
    if not sparsity:
        return None
    return {
        "source": f"{path.name} of {model.path} (`sparse-mm eval`, split "
        f"{record.get('split', 'test')})",
        "vocab_size": model.config.heads.vocab_size,
        **sparsity,
    }


def make_item(item: Item, model, *, n_queries: int, seed: int, log):
    """(Collection, Queries, workload record) for one item."""
    from bench.collection import model_world, synthetic_collection, synthetic_workload

    log(f"[{item.label} {item.n_docs:,}] generating the collection and queries")
    if item.params is not None:
        collection, queries, record = lsr_collection(item.params)
        w1, w2 = model.serving_weights()
        record.update(
            label=item.label,
            grid_point=item.grid,
            weights={"w1": w1, "w2": w2, "from": f"serving weights of {model.path}"},
            defaults_source=LSR_DEFAULTS_SOURCE,
        )
    else:
        world = model_world(model.path, seed)
        log(f"[{item.label} {item.n_docs:,}] {world.source}")
        collection, queries = synthetic_collection(
            model, item.n_docs, seed=world.seed, n_queries=n_queries, query_seed=world.query_seed
        )
        record = synthetic_workload(
            world.seed, item.n_docs, len(queries), model.config.heads.vocab_size
        )
        record.update(
            query_seed=world.query_seed,
            world=world.source,
            name="model",
            label="model",
            source="synthetic",
            dense_dim=collection.dense_dim,
            statistics=sparse_statistics(collection.encoded.sparse, queries.sparse),
        )
    record["model_statistics"] = demo_model_statistics(model)
    return collection, queries, record


def run_suite(
    items: list[Item],
    engines: dict,
    model,
    opts: RunOptions,
    *,
    argv: list[str] | None,
    n_queries: int,
    seed: int,
    write: Callable[[dict[str, dict]], None],
    pruning_size: int | None = None,
) -> Iterator[tuple[Item, dict[str, dict]]]:
    """Run every item on every engine; after each, `write` gets {engine: report so far}.
    Yields (item, {engine: run}) as each finishes. Wall seconds per phase go to
    `opts.phases`; each report carries them all (`phases`), each run its own totals. The
    pruning grid and the query-body variants run at N = `pruning_size` only (every N if None)."""
    reports = {
        name: report_header(client, model, argv, settings=opts.index_settings)
        for name, client in engines.items()
    }
    phases = opts.phases
    for item in items:
        where = {"label": item.label, "n_docs": item.n_docs}
        with phases.timed("generate", **where):
            collection, queries, record = make_item(
                item, model, n_queries=n_queries, seed=seed, log=opts.log
            )
        if collection.encode_seconds:  # the model's encoding, inside the generation's time
            phases.records[-1]["seconds"] -= collection.encode_seconds
            phases.add("encode", collection.encode_seconds, **where)
        item_opts = opts
        if item.params is not None:  # lsr: dense mode searches wider on the same graph
            settings = replace(opts.index_settings, ef_search=LSR_DENSE_EF_SEARCH)
            item_opts = replace(opts, index_settings=settings)
        if opts.grid and pruning_size and item.n_docs != pruning_size:  # at one N only
            item_opts = replace(item_opts, grid=(), variants=False)
        if item.grid:  # the ingest rate of a reused index is not measured again (None)
            item_opts = replace(  # a grid point: parity and latency; qps with one client only
                item_opts,
                grid=(),
                variants=False,
                clients=opts.clients[:1],
                reuse_index=opts.reuse_index or item.reuse,
                keep_index=opts.keep_index or item.keep,
            )
        runs = run_size(engines, model, collection, queries, item_opts, item.label)
        del collection, queries
        gc.collect()
        item_phases = totals(phases.for_item(item.label, item.n_docs))
        for name, run in runs.items():
            report = reports[name]
            report["phases"] = phases.records
            report["runs"].append({"workload": record, **run, "phases": item_phases})
            report["scale_fit"] = scale_fits(report["runs"])
            report["targets"] = check_targets(report["runs"])
        write(reports)
        yield item, runs

"""The measurement tables of README.md and docs/*.md, rendered from the committed JSONs they
come from: `python -m tools.recorders.readme_tables [--check [PAGE ...]]`.

Each block below is printed as it must appear in a page (README.md or a docs/ page); `--check`
(by default README.md and every docs/*.md) exits non-zero naming every block that no page
contains verbatim, and every page that holds a block's first two lines but not the whole block
(a stale copy; tests/unit/test_readme_measurements.py runs both), so a figure in these tables
cannot drift from its JSON, wherever it is shown:

- the synthetic results table, and the time the corpus took to synthesise:
  bench/results/synthetic/{joint,d2s}.json (`python -m tools.recorders.synthetic_results`);
- the demo model's test R@1: sparse_mm/demo/model/provenance.json
  (`python -m training.demo_model --record`);
- the speed table: bench/results/train_speed.json and encode_speed.json;
- the node start times: bench/results/node_start.json (`python -m tools.recorders.node_start`);
- the example outputs: bench/results/readme_examples.json
  (`python -m tools.recorders.readme_examples`);
- the Elasticsearch examples, each command with its output as the README shows them:
  bench/results/readme_examples_elasticsearch.json (`python -m tools.recorders.es_examples`);
- the lifecycle examples (README's "A new model without downtime"), each command with its
  output: bench/results/lifecycle_examples.json (`python -m tools.recorders.lifecycle_examples`);
- the load on `sparse-mm serve` (docs/serve.md): bench/results/serve_load.json
  (`python -m tools.serve_load`);
- the demo world's words (docs/demo-corpus.md), one line per kind of concept:
  sparse_mm/synth_words.py;
- the performance table, its targets and its hybrid headline: bench/results/peers/<engine>.json
  (`sparse-mm bench ... --report bench/results/peers`; the command is in the JSONs), once that
  report is committed: until then the pages keep their stale figures, marked STALE.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from sparse_mm.provenance import REPO, RESULTS_DIR

DEMO_PROVENANCE = REPO / "sparse_mm" / "demo" / "model" / "provenance.json"
README = REPO / "README.md"
DOCS_DIR = REPO / "docs"
PEERS_DIR = "peers"  # bench/results/peers: the benchmark of every workload on every engine


def _load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _synthetic(results: Path, method: str) -> dict | None:
    path = results / "synthetic" / f"{method}.json"
    return _load(path) if path.exists() else None


def synthetic_table(results: Path = RESULTS_DIR) -> str:
    """The table from bench/results/synthetic/<method>.json; a method not recorded yet gets a
    row saying so."""
    records = {m: _synthetic(results, m) for m in ("joint", "d2s")}
    header = (
        "| method | dense R@1 | sparse R@1 | integrated R@1 | sparse R@5 | sparse R@10 "
        "| sparse MRR@10 | terms/query | terms/image | FLOPs |\n" + "|---" * 10 + "|"
    )
    rows = []
    any_record = next((r for r in records.values() if r), None)
    if any_record:
        init = any_record["data"]["recipe"]["init_dense_r1"]
        rows.append(f"| initial projection (no training) | {_pct(init)} |" + " |" * 8)
    for method, name in (
        ("d2s", "D2S baseline (`--method d2s`)"),
        ("joint", "joint (`--method joint`, the paper's)"),
    ):
        record = records[method]
        if record is None:
            rows.append(
                f"| {name} | not recorded yet: `python -m tools.recorders.synthetic_results` |"
            )
            continue
        m = record["metrics"]
        s, sp = m["sparse"], m["sparsity"]
        rows.append(
            f"| {name} | {_pct(m['dense']['R@1'])} | {_pct(s['R@1'])} | "
            f"{_pct(m['integrated']['R@1'])} | {_pct(s['R@5'])} | {_pct(s['R@10'])} | "
            f"{s['MRR@10']:.4f} | {sp['query_terms']:.1f} | {sp['doc_terms']:.1f} | "
            f"{sp['flops']:.2f} |"
        )
    return "\n".join([header, *rows])


def training_runs(results: Path = RESULTS_DIR) -> str:
    """One sentence on the training runs (epochs, best epoch, wall time)."""
    parts = []
    for method, label in (("joint", "joint"), ("d2s", "D2S")):
        record = _synthetic(results, method)
        if record is None:
            parts.append(f"{label} not recorded yet")
            continue
        t = record["train"]
        parts.append(
            f"{label} {t['epochs_run']} epochs (best {t['best_epoch']}) in "
            f"{t['wall_seconds'] / 60:.0f} min"
        )
    return "; ".join(parts)


def synthesis_time(results: Path = RESULTS_DIR) -> str:
    """How long `sparse-mm data synth` took in the recorded run of the results table."""
    record = next(r for r in (_synthetic(results, m) for m in ("joint", "d2s")) if r)
    n = record["data"]["recipe"]["n_images"]
    return (
        f"synthesising {n:,} images took {record['seconds']['data']:.1f} s (measured inside "
        "`python -m tools.recorders.synthetic_results` on "
        f"{record['machine']['cores']} cores, so without the command's start-up)"
    )


DEMO_KINDS = {"object": "objects", "scene": "places (scenes)", "attribute": "attributes",
              "action": "actions"}  # fmt: skip


def demo_world(kind: str) -> str:
    """One kind of the demo world's concepts, most frequent first, each with its synonyms."""
    from sparse_mm.synth_words import concepts

    named = [(n, s) for k, n, s in concepts() if k == kind]
    words = ", ".join(f"{n} ({', '.join(s)})" if s else n for n, s in named)
    return f"**{DEMO_KINDS[kind]}** ({len(named)}): {words}"


def demo_vocabulary() -> str:
    """The demo world's words besides its concepts', and the vocabulary's size."""
    from sparse_mm.synth_words import FILLER, WORDPIECE_LIKE, concepts

    total = sum(1 + len(s) for _, _, s in concepts()) + len(FILLER) + len(WORDPIECE_LIKE)
    return (
        f"**filler words** ({len(FILLER)}), known to the query encoder and weighing little: "
        f"{', '.join(FILLER)}; and {len(WORDPIECE_LIKE)} WordPiece-shaped tokens; "
        f"{total} entries in the corpus' `vocab.txt` in all"
    )


def demo_r1(path: Path = DEMO_PROVENANCE) -> str:
    test = _load(path)["test"]
    return "test R@1 dense {:.1f}, sparse {:.1f}, integrated {:.1f}".format(
        *(100 * test[side]["R@1"] for side in ("dense", "sparse", "integrated"))
    )


def speed_table(results: Path = RESULTS_DIR) -> str:
    train = _load(results / "train_speed.json")["run"]
    encode = _load(results / "encode_speed.json")["runs"]
    pairs = f"{train['pairs'] / 1000:.0f}k" if train["pairs"] >= 1000 else str(train["pairs"])
    hours = train["epoch_s"] / 3600
    rows = [
        "| work | measured | plain matmul bound, same run |",
        "|---|---|---|",
        f"| training step, vocab {train['vocab']:,}, batch {train['batch_size']} "
        f"({train['gflop_per_step']:.1f} GFLOP, counted by torch) | "
        f"{train['step_s_median']:.2f} s ({train['achieved_gflop_per_s']:.1f} GFLOP/s); an epoch "
        f"over {pairs} pairs (median of {train['steps_timed']} steps x "
        f"{train['steps_per_epoch']:,} steps) {hours:.1f} h | "
        f"{train['matmul_gflop_per_s']:.1f} GFLOP/s (the step reaches "
        f"{train['fraction_of_matmul']:.0%} of it) |",
    ]
    for run in encode:
        n = f"{run['n'] // 1000}k" if run["n"] % 1000 == 0 else f"{run['n']:,}"
        rows.append(
            f"| encoding {n} images, vocab {run['vocab']:,} | "
            f"{run['images_per_s']:,.0f} images/s | "
            f"{run['matmul_bound_images_per_s']:,.0f} images/s |"
        )
    return "\n".join(rows)


def speed_machine(results: Path = RESULTS_DIR) -> str:
    """Where the speed table was measured, from its JSONs' machine records."""
    train, encode = (_load(results / f"{n}.json") for n in ("train_speed", "encode_speed"))
    m = train["machine"]
    return (
        f"measured on {m['cpu']}, {m['cores']} cores shared with other work (1-minute load "
        f"average {train['machine']['load_avg'][0]:.1f} and "
        f"{encode['machine']['load_avg'][0]:.1f} when the two were recorded), torch "
        f"{m['torch']}, git {train['git']}"
    )


def node_start_table(results: Path = RESULTS_DIR) -> str:
    runs = _load(results / "node_start.json")["runs"]
    rows = ["| `sparse-mm opensearch start` | seconds (each run) |", "|---|---|"]
    for kind, label in (
        ("assemble", "first start: files in Maven's cache, nothing assembled"),
        ("later", "later start (stopped, started again)"),
        ("running", "`start` while the node runs"),
    ):
        walls = [r[kind]["wall_s"] for r in runs]
        rows.append(f"| {label} | {', '.join(f'{w:.1f}' for w in walls)} |")
    return "\n".join(rows)


def node_start_median(results: Path = RESULTS_DIR, kind: str = "later") -> float:
    return statistics.median(r[kind]["wall_s"] for r in _load(results / "node_start.json")["runs"])


def example_outputs(results: Path = RESULTS_DIR) -> list[str]:
    """The output of each recorded example that prints something, as the README shows it."""
    record = _load(results / "readme_examples.json")
    return ["\n".join(e["output"]) for e in record["examples"] if e["output"]]


def elasticsearch_examples(results: Path = RESULTS_DIR) -> list[str]:
    """Each recorded Elasticsearch example as the README shows it: `$ command`, then its
    output."""
    record = _load(results / "readme_examples_elasticsearch.json")
    return ["\n".join([f"$ {e['command']}", *e["output"]]) for e in record["examples"]]


def lifecycle_examples(results: Path = RESULTS_DIR) -> list[str]:
    """Each recorded lifecycle example (README's "A new model without downtime") as the page
    shows it: `$ command`, then its output."""
    path = results / "lifecycle_examples.json"
    if not path.exists():
        return []
    return ["\n".join([f"$ {e['command']}", *e["output"]]) for e in _load(path)["examples"]]


def serve_load_table(results: Path = RESULTS_DIR) -> str | None:
    """docs/serve.md's load table: per engine and number of clients, the client's latency
    p50/p99, queries/s and errors, and the service's and the engine's own p50 beside them;
    None while bench/results/serve_load.json is not committed."""
    path = results / "serve_load.json"
    if not path.exists():
        return None
    record = _load(path)
    machine = record["machine"]
    rows = [
        f"Measured at git {record['git']} on {machine['cpu']} ({machine['cores']} cores, shared "
        "by the clients, the service and the engine), hybrid, k = 10:",
        "",
        "| engine | clients | requests | errors | q/s | p50 ms | p99 ms | service p50 | "
        "encode p50 | engine took p50 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in record["runs"]:
        for x in run["levels"]:
            rows.append(
                f"| {run['engine']} {run['version']} | {x['clients']} | {x['answered']} | "
                f"{x['errors']} | {x['qps']:.1f} | {x['latency_ms']['p50']:.1f} | "
                f"{x['latency_ms']['p99']:.1f} | {x['service_total_ms']['p50']:.1f} | "
                f"{x['encode_ms']['p50']:.1f} | {x['engine_took_ms']['p50']:.1f} |"
            )
    return "\n".join(rows)


def _peer_reports(results: Path) -> dict[str, dict]:
    from bench.targets import ENGINE_ORDER

    folder = results / PEERS_DIR
    return {e: _load(folder / f"{e}.json") for e in ENGINE_ORDER if (folder / f"{e}.json").exists()}


def _ingest_rate(ingest: dict) -> str:
    """docs/s of a run's bulk load; a dash where the run searched the previous run's index."""
    rate = ingest.get("docs_per_s")
    return "– (index reused)" if ingest.get("reused_index") or not rate else f"{rate:,.0f}"


def _largest_runs(reports: dict[str, dict]) -> list[tuple[str, int, list[tuple[str, dict]]]]:
    """(workload, N, [(engine, run)]) at the report's largest N (the lsr grid's smaller N is in
    report.md)."""
    from bench.targets import engine_groups

    groups = engine_groups(reports)
    largest = max(r["n_docs"] for entries in groups.values() for _e, r, _ in entries)
    out = []
    for key, entries in groups.items():
        n = entries[-1][1]["n_docs"]
        if n == largest:
            out.append((key, n, [(e, r) for e, r, _ in entries if r["n_docs"] == n]))
    return out


def performance_table(results: Path = RESULTS_DIR) -> str | None:
    """The headline of the committed peers report: per workload at the report's largest N, per
    system and mode, p50 and parity with exact, ingest; None while no such report is
    committed."""
    reports = _peer_reports(results)
    if not reports:
        return None
    first = next(iter(reports.values()))
    rows = [
        "| workload | N | system | mode | p50 ms | overlap@10 | top-10 identical | ingest docs/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, n, last in _largest_runs(reports):
        for engine, run in last:
            for mode, m in run["modes"].items():
                rows.append(
                    f"| {key} | {n:,} | {engine} | {mode} | {m['latency_ms']['p50']:.2f} | "
                    f"{m['overlap@10']:.4f} | {m['top10_identical']:.3f} | "
                    f"{_ingest_rate(run['ingest'])} |"
                )
        for mode, t in last[0][1]["reference"]["torch_cpu"].items():
            rows.append(
                f"| {key} | {n:,} | exact PyTorch (CPU) | {mode} | "
                f"{t['latency_ms']['p50']:.2f} | 1 | 1 | – |"
            )
    return "\n".join(
        [
            f"`{first['command']}` (git {first['git']}, {first['created']}):",
            "",
            *rows,
        ]
    )


def performance_headline(results: Path = RESULTS_DIR) -> str | None:
    """The README's short form of `performance_table`: the hybrid mode only, per workload and
    system at the largest N; None while no peers report is committed."""
    reports = _peer_reports(results)
    if not reports:
        return None
    first = next(iter(reports.values()))
    rows = [
        f"| hybrid, git {first['git']} | N | p50 ms | top-10 identical to exact | ingest docs/s |",
        "|---|---|---|---|---|",
    ]
    for key, n, last in _largest_runs(reports):
        for engine, run in last:
            m = run["modes"]["hybrid"]
            rows.append(
                f"| {key} on {engine} | {n:,} | {m['latency_ms']['p50']:.2f} | "
                f"{m['top10_identical']:.3f} | {_ingest_rate(run['ingest'])} |"
            )
        exact = last[0][1]["reference"]["torch_cpu"]["hybrid"]
        rows.append(
            f"| {key}, exact PyTorch (CPU) | {n:,} | {exact['latency_ms']['p50']:.2f} | 1 | – |"
        )
    return "\n".join(rows)


def breakdown_table(results: Path = RESULTS_DIR) -> str | None:
    """Where a query's time goes at the report's largest N, per workload, engine and mode: the
    client's p50, the engine's own `took`, the rest, and the profile API's parts
    (bench.peers_report.profile_parts); None while no peers report is committed."""
    from bench.peers_report import profile_parts

    reports = _peer_reports(results)
    if not reports:
        return None
    rows = [
        "| workload | engine | mode | client p50 ms | took p50 | outside the engine | "
        "profile: rewrite (k-NN) | query | collect | fetch | request 2 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, _n, last in _largest_runs(reports):
        for engine, run in last:
            for mode, p in run["profile"].items():
                parts = profile_parts((run.get("engine_profile") or {}).get(mode, {}))
                cells = " | ".join(f"{v:.2f}" for v in parts.values())
                rows.append(
                    f"| {key} | {engine} | {mode} | {p['client_p50_ms']:.2f} | "
                    f"{p['engine_took_p50_ms']:.1f} | {p['outside_engine_p50_ms']:.2f} | {cells} |"
                )
    return "\n".join(rows)


def _knn_of(run: dict, point: dict) -> int | str:
    """A grid point's k-NN neighbours: runs before `capabilities` were recorded asked for the
    whole window when none was given, later ones for the default (query_terms.DEFAULT_KNN_K)."""
    from indexing.query_terms import DEFAULT_KNN_K

    if point.get("knn_k"):
        return point["knn_k"]
    return DEFAULT_KNN_K if "capabilities" in run else point["window"]


def window_choice_table(results: Path = RESULTS_DIR) -> str | None:
    """The hybrid's candidates at 1M, chosen on seeds 7 and 11 (bench/results/choice_1m_seed7,
    choice_1m_seed11) and confirmed on the peers report's seed with its held-out queries: per
    workload, engine, window and k-NN neighbours, the top-10 overlap with exact search and the
    p50; None until all are committed."""
    peers = _peer_reports(results)
    seeds = {  # a model workload's held-out queries have their own seed in its training world
        r["workload"].get("query_seed") or r["workload"].get("recipe", {}).get("seed")
        for p in peers.values()
        for r in p["runs"]
    }
    confirmation = f"seed {'/'.join(str(s) for s in sorted(seeds - {None}))} (confirmation)"
    sources = {
        "seed 7 (choice)": results / "choice_1m_seed7",
        "seed 11 (choice)": results / "choice_1m_seed11",
        confirmation: None,
    }
    out = {}
    for label, folder in sources.items():
        found = peers if folder is None else {
            e: _load(folder / f"{e}.json") for e in ("opensearch", "elasticsearch")
            if (folder / f"{e}.json").exists()
        }  # fmt: skip
        for engine, report in found.items():
            for run in report["runs"]:
                if run["n_docs"] < 1_000_000 or not run.get("pruning"):
                    continue
                key = run.get("workload", {}).get("label") or run["workload"].get("name")
                for g in run["pruning"]:
                    if g["mode"] != "hybrid" or g.get("query_top_k"):
                        continue
                    point = (key, g["window"], _knn_of(run, g))
                    out.setdefault(point, {})[(label, engine)] = g
    if not any(label == confirmation for cells in out.values() for label, _ in cells):
        return None
    columns = [(label, e) for label in sources for e in ("opensearch", "elasticsearch")]
    rows = [
        "| workload | window | k-NN neighbours | "
        + " | ".join(f"{e}, {label}: overlap@10 / p50 ms" for label, e in columns)
        + " |",
        "|---|---|---|" + "---|" * len(columns),
    ]
    for (key, window, knn), cells in sorted(out.items(), key=lambda x: (x[0][0], x[0][1], x[0][2])):
        shown = [
            f"{cells[c]['overlap@10']:.4f} / {cells[c]['latency_ms']['p50']:.1f}"
            if c in cells
            else "–"
            for c in columns
        ]
        rows.append(f"| {key} | {window} | {knn} | " + " | ".join(shown) + " |")
    return "\n".join(rows)


def targets_table(results: Path = RESULTS_DIR) -> str | None:
    """The benchmark's targets, met or not, per engine and workload at the report's largest N
    (the lsr grid's smaller N is in report.md), from the committed peers report; None while no
    such report is committed."""
    reports = _peer_reports(results)
    if not reports:
        return None
    rows = ["| engine | workload | N | target | status |", "|---|---|---|---|---|"]
    for engine, report in reports.items():
        targets = report.get("targets", [])
        largest = max((t["n_docs"] for t in targets), default=0)
        for t in (t for t in targets if t["n_docs"] == largest):  # the lsr grid is smaller
            rows.append(
                f"| {engine} | {t['workload']} | {t['n_docs']:,} | {t['target']} | "
                f"{'**' + t['status'] + '**' if t['status'] != 'met' else 'met'} |"
            )
    return "\n".join(rows)


def blocks(results: Path = RESULTS_DIR, demo: Path = DEMO_PROVENANCE) -> dict[str, str]:
    out = {
        "synthetic results table": synthetic_table(results),
        "synthetic training runs": training_runs(results),
        "synthetic corpus time": synthesis_time(results),
        "demo model test R@1": demo_r1(demo),
        "speed table": speed_table(results),
        "speed machine": speed_machine(results),
        "node start table": node_start_table(results),
    }
    for kind in DEMO_KINDS:
        out[f"demo world {kind}s"] = demo_world(kind)
    out["demo world vocabulary"] = demo_vocabulary()
    performance = performance_table(results)
    if performance is not None:  # absent until the peers report is committed
        out["performance table"] = performance
        out["performance targets"] = targets_table(results)
        out["performance headline"] = performance_headline(results)
        out["performance breakdown"] = breakdown_table(results)
    choice = window_choice_table(results)
    if choice is not None:
        out["hybrid candidates choice"] = choice
    for i, text in enumerate(example_outputs(results)):
        out[f"example output {i + 1}"] = text
    for i, text in enumerate(elasticsearch_examples(results)):
        out[f"elasticsearch example {i + 1}"] = text
    load = serve_load_table(results)
    if load is not None:
        out["serve load table"] = load
    for i, text in enumerate(lifecycle_examples(results)):
        out[f"lifecycle example {i + 1}"] = text
    return out


def pages() -> dict[str, str]:
    """README.md and every docs/*.md, by path relative to the repository, with their text."""
    paths = [README, *sorted(DOCS_DIR.glob("*.md"))]
    return {str(p.relative_to(REPO)): p.read_text(encoding="utf-8") for p in paths}


def _as_pages(text: str | dict[str, str]) -> dict[str, str]:
    return {"README.md": text} if isinstance(text, str) else text


def missing(
    text: str | dict[str, str], results: Path = RESULTS_DIR, demo: Path = DEMO_PROVENANCE
) -> list[str]:
    """Names of the blocks that no page (a text, or {name: text}) contains verbatim."""
    texts = _as_pages(text).values()
    return [n for n, block in blocks(results, demo).items() if not any(block in t for t in texts)]


def stale_copies(
    text: str | dict[str, str], results: Path = RESULTS_DIR, demo: Path = DEMO_PROVENANCE
) -> list[str]:
    """'page: block' for every page that shows a block's first lines (three, or all but the
    last of a shorter block) but not the whole block, outside the other blocks it holds: a copy
    that drifted from its JSON while the right one is shown elsewhere."""
    known = blocks(results, demo)
    out = []
    for page, page_text in _as_pages(text).items():
        for name, block in known.items():
            lines = block.splitlines()
            head = "\n".join(lines[: min(3, len(lines) - 1)])
            if not head or block in page_text:
                continue
            rest = page_text
            for other in (b for n, b in known.items() if n != name and head in b):
                rest = rest.replace(other, "")  # a block that quotes this one's lines
            if head in rest:
                out.append(f"{page}: {name}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", type=Path, nargs="*", default=None,
        help="pages to check (default: README.md and docs/*.md)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.check is not None:
        texts = (
            {str(p): p.read_text(encoding="utf-8") for p in args.check} if args.check else pages()
        )
        absent, stale = missing(texts), stale_copies(texts)
        if absent or stale:
            sys.exit(
                "; ".join(
                    ([f"no page holds, verbatim: {', '.join(absent)}"] if absent else [])
                    + ([f"stale copies: {', '.join(stale)}"] if stale else [])
                )
            )
        print(f"{', '.join(texts)}: every measurement block matches its JSON")
        return
    for name, text in blocks().items():
        print(f"<!-- {name} -->\n{text}\n")


if __name__ == "__main__":
    main()

"""The report of one `sparse-mm bench` command over every engine: one JSON per engine
(`<engine>.json`, each the schema of bench/README.md with top-level `engine.name` and `git`),
one Markdown report comparing them (`report.md`) and PNG plots, all in one folder.

    python -m bench.peers_report FOLDER   # re-render report.md and the plots from the JSONs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.peers_plots import plot_peers
from bench.phases import phase_table
from bench.tables import _f, _table, parity_cells
from bench.targets import ENGINE_ORDER, cost_rows, engine_groups
from sparse_mm.atomic import write_text_atomic
from sparse_mm.provenance import write_json
from sparse_mm.retriever import MODES


def write_peers_report(reports: dict[str, dict], folder: Path, *, with_json: bool = True):
    """`<engine>.json` per engine (unless `with_json` is false), report.md, plots; the files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if with_json:
        for name, report in reports.items():
            write_json(report, folder / f"{name}.json")
            written.append(folder / f"{name}.json")
    plots = plot_peers(reports, folder)
    write_text_atomic(folder / "report.md", markdown(reports, [p.name for p in plots]))
    return [*written, *plots, folder / "report.md"]


def _first(reports: dict) -> dict:
    return next(iter(reports.values()))


def markdown(reports: dict[str, dict], plots: list[str]) -> str:
    first = _first(reports)
    m = first["machine"]
    ram = f"{m['ram_bytes'] / 2**30:.0f} GiB" if m.get("ram_bytes") else "?"
    engines = "; ".join(
        f"{r['engine'].get('name', n)} {r['engine'].get('version')} (Lucene "
        f"{r['engine'].get('lucene')}, JDK {r['engine'].get('jdk')}, heap "
        f"{(r['engine'].get('heap_max_bytes') or 0) / 2**30:.1f} GiB)"
        for n, r in reports.items()
    )
    bw = (first.get("memory_bandwidth") or {}).get("bytes_per_s")
    model = first["model"]
    out = [
        "# sparse-mm benchmark: " + ", ".join(reports) + " vs exact in-memory PyTorch",
        "",
        *_produced_by(first),
        f"git {first.get('git')}; {first['created']}. Machine: {m['cpu']}, {m['cores']} cores, "
        f"{ram} RAM, torch {m['torch']}, GPU: {m.get('gpu') or 'none'}. Engines: {engines}.",
        f"Model: {model['path']} (serving weights w1 = {model.get('w1')}, w2 = "
        f"{model.get('w2')}, also the lsr workloads' hybrid weights). Memory bandwidth "
        f"(torch copy, read + write): {_f(bw / 1e9 if bw else None)} GB/s.",
        "",
        "Every engine ran on the same documents and queries; the exact reference (ExactRetriever, "
        "stored weights quantised as both engines store them) was measured once per size and is "
        "shared by the engines' JSONs.",
        "",
    ]
    out += _capabilities(reports)
    out += _targets(reports)
    out += _workloads(reports)
    out += _parity(reports)
    out += _filtered(reports)
    out += _breakdown(reports)
    out += _latency(reports)
    out += _ingest(reports)
    out += _cost(reports)
    out += _work(reports)
    out += phase_table(first.get("phases") or [])
    out += [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(out)


def _capabilities(reports: dict) -> list[str]:
    """How each engine answers the hybrid (Engine.capabilities, detected on the run's index),
    and what one request would change where it takes two."""
    lines = []
    for name, report in reports.items():
        found = [r["capabilities"] for r in report["runs"] if r.get("capabilities")]
        if not found:
            continue
        one = found[-1]["one_request_hybrid"]
        if one["available"]:
            lines.append(f"- {name}: the hybrid in one request ({one['why']}).")
        else:
            lines.append(
                f"- {name}: the hybrid in two requests: {one['why']}. A node with the exact "
                "`dense_vector` query (Elasticsearch 9.6+; the adapter detects it on the index "
                "and checks its scores against knn) answers in one, rescoring the window "
                "exactly as OpenSearch does: the second request (the breakdown's request 2) "
                "and its round trip would go."
            )
    return ["## How each engine answers the hybrid", "", *lines, ""] if lines else []


def _produced_by(report: dict) -> list[str]:
    """The command that made the report, or, for a report made in pieces (`--append`), each
    piece's command (same commit, same options)."""
    pieces = report.get("pieces") or []
    if len(pieces) < 2:
        return ["Produced by:", "", "```", report["command"], "```", ""]
    return [
        f"Produced in {len(pieces)} pieces (`--append`: same commit, same options), by:",
        "",
        "```",
        *(p["command"] for p in pieces),
        "```",
        "",
    ]


def _targets(reports: dict) -> list[str]:
    out = [
        "## Targets (at each workload's largest N; issue 26 asks for them at 1M on both "
        "workloads and engines)",
        "",
    ]
    rows = []
    for name, report in reports.items():
        for t in report.get("targets", []):
            detail = ", ".join(
                f"{k} {_f(v, 4)}"
                for k, v in t.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and k not in ("n_docs",)
            )
            scale = "" if t.get("at_issue_scale") else " (below the issue's scale)"
            rows.append(
                [name, t["workload"], f"{t['n_docs']:,}", t["target"], t["status"] + scale, detail]
            )
    return [*out, *_table(["engine", "workload", "N", "target", "status", "numbers"], rows)]


def _workloads(reports: dict) -> list[str]:
    rows, model_stats, sources = [], None, set()
    for key, entries in engine_groups(reports).items():
        seen = set()
        for _engine, run, _ in entries:
            if run["n_docs"] in seen:
                continue
            seen.add(run["n_docs"])
            w, s = run["workload"], run["workload"].get("statistics") or {}
            model_stats = model_stats or w.get("model_statistics")
            if w.get("defaults_source"):
                sources.add(w["defaults_source"])
            rows.append(
                [
                    key,
                    f"{run['n_docs']:,}",
                    w.get("vocab_size"),
                    s.get("doc_terms_mean", run.get("terms_per_doc")),
                    s.get("query_terms_mean", run.get("terms_per_query")),
                    s.get("posting_share_mean_over_query_terms"),
                    s.get("postings_per_query_mean"),
                    s.get("flops"),
                ]
            )
    if model_stats:
        rows.append(
            [
                "the model's own (`sparse-mm eval`)",
                "test split",
                model_stats.get("vocab_size"),
                model_stats.get("doc_terms"),
                model_stats.get("query_terms"),
                None,
                None,
                model_stats.get("flops"),
            ]
        )
    out = ["## Workloads", ""]
    out += _table(
        [
            "workload",
            "N",
            "vocabulary",
            "terms/image",
            "terms/query",
            "posting share (query terms)",
            "postings/query",
            "FLOPs",
        ],
        rows,
    )
    if model_stats:
        out += [f"The model's own statistics come from {model_stats['source']}.", ""]
    out += [f"lsr defaults: {s}." for s in sorted(sources)] + ([""] if sources else [])
    return out


def _parity(reports: dict) -> list[str]:
    rows = [
        [
            key,
            f"{run['n_docs']:,}",
            engine,
            mode,
            *parity_cells(x),
            x["R@k"]["engine"]["R@10"],
            x["R@k"]["exact"]["R@10"],
        ]
        for key, entries in engine_groups(reports).items()
        for engine, run, _ in entries
        for mode in MODES
        if (x := run["modes"][mode])
    ]
    header = [
        "workload",
        "N",
        "engine",
        "mode",
        "overlap@10",
        "overlap@10 (ties)",
        "recall@10 vs exact",
        "top-10 identical",
        "max rel. err",
        "R@10",
        "exact R@10",
    ]
    return ["## Parity with exact search", "", *_table(header, rows)]


def _filtered(reports: dict) -> list[str]:
    """The filtered hybrid (bench.filtered): latency and parity with exact search over the
    documents each filter keeps."""
    rows = [
        [
            key,
            f"{run['n_docs']:,}",
            engine,
            f"{label} ({x['filter']})",
            f"{x['kept_docs']:,}",
            x["latency_ms"]["p50"],
            x["took_ms"]["p50"],
            x["overlap@10"],
            x["top10_identical"],
            x["score_rel_err_max"],
        ]
        for key, entries in engine_groups(reports).items()
        for engine, run, _ in entries
        for label, x in (run.get("filtered") or {}).items()
    ]
    if not rows:
        return []
    header = [
        "workload",
        "N",
        "engine",
        "kept",
        "documents kept",
        "hybrid p50 ms",
        "took p50",
        "overlap@10",
        "top-10 identical",
        "max rel. err",
    ]
    intro = (
        "The hybrid under a filter (`bucket < n` on a metadata field, every phase filtered), "
        "against exact in-memory search over the same kept documents."
    )
    return ["## Filtered hybrid", "", intro, "", *_table(header, rows)]


def profile_parts(profile: dict) -> dict[str, float]:
    """A mode's engine profile (bench.profile.profile_mode: median ms per component) in five
    parts: rewrite (where a k-NN clause runs its HNSW search), query (the top-level query
    nodes: matching and scoring, a rescore included), collect, fetch, and the second request
    (Elasticsearch's exact hybrid step), whole."""
    parts = {"rewrite": 0.0, "query": 0.0, "collect": 0.0, "fetch": 0.0, "request 2": 0.0}
    for name, ms in profile.items():
        if name.startswith("took") or name.startswith(" "):
            continue
        if name.startswith("request 2: "):
            if not name.removeprefix("request 2: ").startswith(" "):
                parts["request 2"] += ms
            continue
        if name.startswith("request "):
            continue
        key = {"rewrite": "rewrite", "fetch": "fetch"}.get(name)
        key = key or ("collect" if name.startswith("collector ") else "query")
        parts[key] += ms
    return parts


def _breakdown(reports: dict) -> list[str]:
    """Where a query's time goes, per engine, N and mode: the client's p50 against the
    engine's own `took`, and the profile API's parts."""
    rows = []
    for key, entries in engine_groups(reports).items():
        for engine, run, _ in entries:
            profiles = run.get("engine_profile") or {}
            for mode in MODES:
                p = run["profile"][mode]
                parts = profile_parts(profiles.get(mode, {}))
                rows.append(
                    [
                        key,
                        f"{run['n_docs']:,}",
                        engine,
                        mode,
                        p["client_p50_ms"],
                        p["engine_took_p50_ms"],
                        p["outside_engine_p50_ms"],
                        *(parts[k] if profiles else None for k in parts),
                    ]
                )
    header = [
        "workload", "N", "engine", "mode", "client p50 ms", "engine took p50",
        "outside the engine", "profile: rewrite (k-NN)", "query", "collect", "fetch",
        "request 2",
    ]  # fmt: skip
    intro = (
        "The client's latency against the engine's own `took` (the rest is the client: body, "
        "JSON both ways, HTTP on the loopback), and the engine's profile API on the first "
        "queries, median ms per part (profiling adds its own overhead; the parts are medians, "
        "so they need not add up): rewrite is where a k-NN clause runs its HNSW search, query "
        "the matching and scoring (OpenSearch's exact rescore included), request 2 "
        "Elasticsearch's exact hybrid step, whole."
    )
    return ["## Where the time goes", "", intro, "", *_table(header, rows)]


def _qps(q: dict) -> str:
    return " / ".join(_f(q[c]) for c in sorted(q, key=int))


def _latency(reports: dict) -> list[str]:
    rows = []
    for key, entries in engine_groups(reports).items():
        done = set()
        for engine, run, _ in entries:
            n = run["n_docs"]
            systems = [(engine, run["modes"])]
            if n not in done:
                done.add(n)
                systems += [(d, ref) for d, ref in run["reference"].items()]
            for system, per_mode in systems:
                for mode in MODES:
                    x = per_mode[mode]
                    lat = x["latency_ms"]
                    batched = x.get("batched", {}).get("qps")
                    rows.append(
                        [
                            key,
                            f"{n:,}",
                            system,
                            mode,
                            lat["p50"],
                            lat["p95"],
                            lat["p99"],
                            _qps(x["qps_by_clients"]),
                            batched,
                        ]
                    )
    header = [
        "workload",
        "N",
        "system",
        "mode",
        "p50 ms",
        "p95",
        "p99",
        "qps 1/2/4 clients",
        "batched qps",
    ]
    return ["## Latency (single client) and throughput", "", *_table(header, rows)]


def _mib(x) -> float | None:
    return x / 2**20 if x else None


def _ingest(reports: dict) -> list[str]:
    rows = []
    for key, entries in engine_groups(reports).items():
        for engine, run, _ in entries:
            i, mem = run["ingest"], run.get("engine_memory") or {}
            rows.append(
                [
                    key,
                    f"{run['n_docs']:,}",
                    engine,
                    i["docs_per_s"],
                    i.get("docs_per_s_merges_settled"),
                    i["time_until_searchable_s"],
                    i.get("time_until_merges_settled_s"),
                    _mib(i["index_bytes"]),
                    _mib(mem.get("heap_used_bytes")),
                    _mib(mem.get("rss_bytes")),
                ]
            )
    header = [
        "workload",
        "N",
        "engine",
        "docs/s to searchable",
        "docs/s merges settled",
        "searchable after s",
        "merges settled after s",
        "index MiB (store)",
        "heap used MiB",
        "RSS MiB",
    ]
    return ["## Ingest, index size and engine memory", "", *_table(header, rows)]


def _cost(reports: dict) -> list[str]:
    rows = [
        [
            r["workload"],
            r["system"],
            r["mode"],
            r["a_ms"],
            r["b_ms_per_million"],
            r["r2"],
            r["points"],
        ]
        for r in cost_rows({n: rep.get("scale_fit", {}) for n, rep in reports.items()})
    ]
    header = ["workload", "system", "mode", "a (ms)", "b (ms per 1M docs)", "R²", "sizes"]
    return ["## Cost model: p50 = a + b * N", "", *_table(header, rows)]


def _work(reports: dict) -> list[str]:
    rows = []
    for key, entries in engine_groups(reports).items():
        n = entries[-1][1]["n_docs"]
        done = False
        for engine, run, _ in (e for e in entries if e[1]["n_docs"] == n):
            w = run.get("work")
            if not w:
                continue
            systems = [(engine, "engine", w["engine"])]
            if not done:
                systems.append(("torch_cpu", "exact", w["torch_cpu"]))
                done = True
            for system, side, per_mode in systems:
                for mode in MODES:
                    unit = w["per_query"][side][mode]
                    x = per_mode[mode]
                    est = " (est.)" if unit["estimate"] else ""
                    rows.append(
                        [
                            key,
                            f"{n:,}",
                            system,
                            mode,
                            unit["postings"],
                            f"{_f(unit['vectors'])}{est}",
                            x["ns_per_unit"],
                            x["bandwidth_limit_ms"],
                            x["p50_ms"],
                            x["x_limit"],
                        ]
                    )
    header = [
        "workload",
        "N",
        "system",
        "mode",
        "postings/query",
        "vectors/query",
        "ns per unit",
        "bandwidth limit ms",
        "p50 ms",
        "x limit",
    ]
    text = (
        "Postings touched = sum of the document frequencies of the query's terms; vectors "
        "compared = N for exact search, an HNSW estimate (ef x 2m + m log N / log m) for the "
        "engines; the limit streams 8 bytes per posting and 4 x D bytes per vector once at the "
        "measured bandwidth (bench/work.py)."
    )
    return [
        "## Work per query at the largest N, against the memory-bandwidth limit",
        "",
        text,
        "",
        *_table(header, rows),
    ]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m bench.peers_report FOLDER")
    folder = Path(args[0])
    reports = {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for name in ENGINE_ORDER
        if (p := folder / f"{name}.json").exists()
    }
    if not reports:
        raise SystemExit(f"error: {folder} holds no opensearch.json or elasticsearch.json")
    for f in write_peers_report(reports, folder, with_json=False):
        print(f)


if __name__ == "__main__":
    main()

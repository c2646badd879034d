"""The benchmark across workloads and engines, pure logic: the lsr workload wired into the
runner's shapes, the plan of one command, work per query and the bandwidth limit, the cost
model and targets per workload, and the peers report on a small made-up run."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict

import pytest
import torch

from bench.peers_report import markdown, write_peers_report
from bench.suite import demo_model_statistics, engine_names, parse_workloads, plan
from bench.tables import _f, parity_cells
from bench.targets import by_workload, check_targets, cost_rows, scale_fits
from bench.work import against_limit, hnsw_visits, postings_per_query, work_per_query
from bench.workloads import LsrParams, lsr_collection, lsr_tokens
from tests.unit.test_bench_logic import _run


def test_lsr_collection_is_what_the_runner_needs():
    params = LsrParams(n_docs=600, n_queries=30, vocab_size=3000, doc_terms=20, query_terms=6)
    collection, queries, record = lsr_collection(params)
    assert len(collection) == 600 and collection.dense_dim == params.dense_dim
    assert collection.tokens == lsr_tokens(3000)
    assert len(queries) == 30 and queries.sparse.shape == (30, 3000)
    for row, q in enumerate(queries.vectors):
        # the engine gets the same terms and weights as the exact reference, by name
        ids = [collection.tokens.index(t) for t in q.terms]
        assert sorted(ids) == queries.sparse[row].nonzero().flatten().tolist()
        assert [queries.sparse[row, i].item() for i in ids] == pytest.approx(list(q.terms.values()))
        assert q.dense == pytest.approx(queries.dense[row].tolist())
        assert 0 <= int(queries.relevant[row]) < 600
    assert record["name"] == "lsr-3k" and record["vocab_size"] == 3000
    assert record["recipe"] == asdict(params)
    assert record["statistics"]["doc_terms_mean"] == 20
    assert record["statistics"]["query_terms_mean"] == 6
    assert LsrParams(n_docs=10).name == "lsr-30k"


def test_plan_orders_workloads_sizes_and_the_lsr_grid():
    items = plan(
        ("model", "lsr-30k"), [5000, 2000], n_queries=50, seed=3, lsr_grid=True, lsr_grid_size=4000
    )
    assert [(i.label, i.n_docs) for i in items[:4]] == [
        ("model", 2000),
        ("model", 5000),
        ("lsr-30k", 2000),
        ("lsr-30k", 5000),
    ]
    assert items[2].params == LsrParams(n_docs=2000, n_queries=50, seed=3)
    grid = items[4:]
    assert [(i.params.doc_terms, i.params.query_terms) for i in grid] == [
        (32, 8),
        (32, 32),
        (128, 8),
        (128, 32),
    ]
    assert all(i.grid and i.n_docs == 4000 for i in grid)
    assert len({i.label for i in grid}) == 4
    # one ingest per doc-term count: its second query-term count searches the kept index
    assert [(i.reuse, i.keep) for i in grid] == [(False, True), (True, False)] * 2
    assert not any(i.reuse or i.keep for i in items[:4])
    assert not any(i.grid for i in plan(("model",), [2000], n_queries=5, seed=0, lsr_grid=True))


def test_workload_and_engine_choices():
    assert parse_workloads("model, lsr-30k,model") == ("model", "lsr-30k")
    with pytest.raises(ValueError, match="lsr-31k"):
        parse_workloads("lsr-31k")
    assert engine_names("both") == ("opensearch", "elasticsearch")
    with pytest.raises(ValueError):
        engine_names("solr")


def test_work_per_query_counts_postings_and_vectors():
    docs = torch.tensor([[1.0, 0, 2.0], [0, 0, 3.0], [1.0, 1.0, 0]]).to_sparse_csr()
    queries = torch.tensor([[0.5, 0, 0.5], [0, 1.0, 0]])
    # document frequencies (2, 1, 2): the first query touches 2 + 2 postings, the second 1
    assert postings_per_query(docs, queries).tolist() == [4.0, 1.0]
    assert hnsw_visits(100, 64, 16) == 100  # never more than N
    assert 64 * 32 < hnsw_visits(10**6, 64, 16) < 64 * 32 + 16 * 6
    w = work_per_query(10**6, 256, 500.0, ef_dense=64, ef_hybrid=200, m=16)
    assert w["exact"]["dense"]["vectors"] == 10**6 and not w["exact"]["dense"]["estimate"]
    assert w["engine"]["hybrid"]["vectors"] > w["engine"]["dense"]["vectors"]
    assert w["engine"]["sparse"] == {"vectors": 0.0, "postings": 500.0, "estimate": False}
    # 1e6 vectors x 1 KiB at 1 GB/s: 1024 ms to stream; measured 512 ms is 0.5 x that limit
    x = against_limit(512.0, w["exact"]["dense"], 256, 1e9)
    assert x["bandwidth_limit_ms"] == pytest.approx(1024.0)
    assert x["x_limit"] == pytest.approx(0.5) and x["ns_per_unit"] == pytest.approx(512.0)
    assert math.isnan(against_limit(1.0, w["exact"]["dense"], 256, math.nan)["x_limit"])


def _workload_run(name: str, n: int, engine_ms: float, torch_ms: float) -> dict:
    run = copy.deepcopy(_run(n, engine_ms, torch_ms))
    run["workload"] = {
        "name": name,
        "label": name,
        "vocab_size": 30522,
        "statistics": {
            "doc_terms_mean": 64.0,
            "query_terms_mean": 16.0,
            "flops": 0.13,
            "posting_share_mean_over_query_terms": 0.008,
            "postings_per_query_mean": 80.0,
        },
    }
    dim_work = work_per_query(n, 256, 80.0, ef_dense=64, ef_hybrid=200, m=16)
    run["work"] = {"per_query": dim_work, "bandwidth_bytes_s": 1e10, "engine": {}, "torch_cpu": {}}
    for mode in ("dense", "sparse", "hybrid"):
        run["work"]["engine"][mode] = against_limit(engine_ms, dim_work["engine"][mode], 256, 1e10)
        run["work"]["torch_cpu"][mode] = against_limit(torch_ms, dim_work["exact"][mode], 256, 1e10)
    run["ingest"]["docs_per_s_merges_settled"] = 2000.0
    run["ingest"]["time_until_merges_settled_s"] = 0.7
    run["engine_memory"] = {"heap_used_bytes": 2**29, "rss_bytes": 2**31}
    return run


def test_targets_and_cost_model_per_workload():
    runs = [
        _workload_run("model", 10_000, 2.0, 1.0),
        _workload_run("lsr-30k", 10_000, 2.0, 1.0),
        _workload_run("lsr-30k", 1_000_000, 5.0, 50.0),
        _workload_run("model", 100_000, 2.0, 1.0),
    ]
    runs[2]["modes"]["hybrid"] = dict(runs[2]["modes"]["hybrid"], top10_identical=0.98)
    assert [r["n_docs"] for r in by_workload(runs)["model"]] == [10_000, 100_000]
    targets = check_targets(runs)
    lsr = {t["target"]: t for t in targets if t["workload"] == "lsr-30k"}
    assert all(t["n_docs"] == 1_000_000 and t["at_issue_scale"] for t in lsr.values())
    hybrid = next(t for name, t in lsr.items() if name.startswith("hybrid top-10"))
    assert hybrid["status"] == "not met" and hybrid["top10_identical"] == 0.98
    faster = next(t for name, t in lsr.items() if name.startswith("engine sparse p50"))
    assert faster["status"] == "met" and faster["engine_p50_ms"] < faster["torch_cpu_p50_ms"]
    model = [t for t in targets if t["workload"] == "model"]
    assert {t["n_docs"] for t in model} == {100_000} and not any(t["at_issue_scale"] for t in model)
    fits = scale_fits(runs)
    assert fits["lsr-30k"]["torch_cpu"]["sparse"]["b"] == pytest.approx(49.0 / 990_000)
    rows = cost_rows({"opensearch": fits, "elasticsearch": fits})
    systems = {(r["workload"], r["system"]) for r in rows}
    assert ("lsr-30k", "elasticsearch") in systems and ("model", "torch_cpu") in systems
    assert len(rows) == 2 * 3 * 3  # two workloads x (two engines + torch once) x three modes


def _reports() -> dict:
    reports = {}
    for engine, ms in (("opensearch", 3.0), ("elasticsearch", 4.0)):
        runs = [_workload_run("lsr-30k", n, ms, 1.0) for n in (2000, 5000)]
        reports[engine] = {
            "command": "sparse-mm bench --sizes 2000,5000 --workload lsr-30k --engine both",
            "git": "abc1234",
            "created": "now",
            "machine": {"cpu": "cpu", "cores": 2, "ram_bytes": 2**34, "torch": "2", "gpu": None},
            "engine": {
                "name": engine,
                "version": "1.0",
                "lucene": "10",
                "jdk": "25",
                "heap_max_bytes": 2**30,
            },
            "model": {"path": "m", "w1": 0.1, "w2": 0.2},
            "memory_bandwidth": {"bytes_per_s": 1e10},
            "runs": runs,
            "scale_fit": scale_fits(runs),
            "targets": check_targets(runs),
        }
    reports["opensearch"]["runs"][0]["workload"]["model_statistics"] = {
        "source": "provenance.json of m",
        "vocab_size": 362,
        "query_terms": 6.1,
        "doc_terms": 11.5,
        "flops": 0.6,
    }
    return reports


def test_peers_report_files_and_tables(tmp_path):
    reports = _reports()
    reports["elasticsearch"]["runs"][0]["modes"]["dense"]["score_rel_err_max"] = float("nan")
    # figures of their own per engine, so that a row showing the other engine's would fail
    for engine, key, value in (("opensearch", "top10_identical", 0.917),
                               ("elasticsearch", "overlap@10", 0.983)):  # fmt: skip
        modes = reports[engine]["runs"][1]["modes"]
        modes["hybrid"] = {**modes["hybrid"], key: value}
    files = write_peers_report(reports, tmp_path)
    names = {f.name for f in files}
    assert {"opensearch.json", "elasticsearch.json", "report.md"} <= names
    assert {"latency_vs_n_lsr-30k.png", "throughput_lsr-30k.png", "pruning_lsr-30k.png"} <= names
    for plot in (f for f in files if f.suffix == ".png"):
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # a picture, not just bytes
    loaded = json.loads((tmp_path / "elasticsearch.json").read_text())
    assert loaded["engine"]["name"] == "elasticsearch" and loaded["git"] == "abc1234"
    assert loaded["runs"][0]["modes"]["dense"]["score_rel_err_max"] is None  # strict JSON
    text = (tmp_path / "report.md").read_text()
    assert "sparse-mm bench --sizes 2000,5000" in text
    for section in (
        "## Targets",
        "## Workloads",
        "## Parity",
        "## Latency",
        "## Ingest",
        "## Cost model",
        "## Work per query",
    ):
        assert section in text
    # both engines' rows, the shared reference once per N, and the model's own statistics
    assert "| lsr-30k | 5,000 | elasticsearch | hybrid | 4 |" in text
    assert text.count("| lsr-30k | 5,000 | torch_cpu | sparse |") == 2  # latency + work
    assert "| the model's own (`sparse-mm eval`) | test split | 362 |" in text
    assert "below the issue's scale" in text and "10 GB/s" in text
    # every engine's every run: its parity row holds the JSON's own figures (hybrid
    # top10_identical and overlap included), its latency row the JSON's percentiles
    for engine, report in reports.items():
        for run in report["runs"]:
            n = f"{run['n_docs']:,}"
            for mode in ("dense", "sparse", "hybrid"):
                m = run["modes"][mode]
                cells = [*parity_cells(m), m["R@k"]["engine"]["R@10"], m["R@k"]["exact"]["R@10"]]
                row = f"| lsr-30k | {n} | {engine} | {mode} | " + " | ".join(map(_f, cells))
                assert row + " |" in text, row
                lat = m["latency_ms"]
                row = f"| lsr-30k | {n} | {engine} | {mode} | {_f(lat['p50'])} | {_f(lat['p95'])}"
                assert row in text, row


def test_peers_report_renders_again_from_its_jsons(tmp_path):
    from bench.peers_report import main

    write_peers_report(_reports(), tmp_path)
    (tmp_path / "report.md").unlink()
    main([str(tmp_path)])
    assert markdown(_reports(), []) in (tmp_path / "report.md").read_text()
    with pytest.raises(SystemExit, match=r"no opensearch\.json"):
        main([str(tmp_path / "empty")])


def test_the_demo_model_statistics_come_from_its_eval_record():
    from sparse_mm.checkpoint import load_model
    from sparse_mm.demo import demo_model_dir

    stats = demo_model_statistics(load_model(demo_model_dir()))
    assert stats["vocab_size"] == 362 and "sparse-mm eval" in stats["source"]
    assert stats["doc_terms"] > stats["query_terms"] > 0 and stats["flops"] > 0


def test_readme_performance_table_comes_from_the_committed_peers_report(tmp_path):
    from tools.recorders.readme_tables import PEERS_DIR, performance_table

    assert performance_table(tmp_path) is None  # nothing committed: the README stays as is
    write_peers_report(_reports(), tmp_path / PEERS_DIR)
    table = performance_table(tmp_path)
    assert table.startswith("`sparse-mm bench --sizes 2000,5000 --workload lsr-30k")
    assert "| lsr-30k | 5,000 | elasticsearch | hybrid | 4.00 | 1.0000 | 1.000 | 2,500 |" in table
    assert "| lsr-30k | 5,000 | exact PyTorch (CPU) | sparse | 1.00 |" in table
    assert "| 2,000 |" not in table  # the largest N only
    reports = _reports()
    reports["opensearch"]["runs"][-1]["ingest"].update(docs_per_s=None, reused_index=True)
    write_peers_report(reports, tmp_path / PEERS_DIR)
    assert (
        "| lsr-30k | 5,000 | opensearch | hybrid | 3.00 | 1.0000 | 1.000 | – (index reused) |"
        in (performance_table(tmp_path))
    )


def test_readme_targets_table_says_met_or_not_per_engine(tmp_path):
    from tools.recorders.readme_tables import PEERS_DIR, targets_table

    assert targets_table(tmp_path) is None
    reports = _reports()
    reports["opensearch"]["targets"] = [
        {"target": "ingest >= 2,000 docs/s (bulk to searchable)", "workload": "lsr-30k",
         "n_docs": 5000, "status": "not met"},
        {"target": "sparse overlap@10 >= 0.999 (exact ties aside)", "workload": "lsr-30k",
         "n_docs": 5000, "status": "met"},
    ]  # fmt: skip
    write_peers_report(reports, tmp_path / PEERS_DIR)
    table = targets_table(tmp_path).splitlines()
    ingest = "ingest >= 2,000 docs/s (bulk to searchable)"
    assert f"| opensearch | lsr-30k | 5,000 | {ingest} | **not met** |" in table
    sparse = "sparse overlap@10 >= 0.999 (exact ties aside)"
    assert f"| opensearch | lsr-30k | 5,000 | {sparse} | met |" in table
    assert any(row.startswith("| elasticsearch | lsr-30k | 5,000 |") for row in table)
    assert not any("| 2,000 |" in row for row in table)  # the report's largest N only


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_pair_scores_are_the_exact_scores_of_those_documents(mode):
    from bench.reference import build_reference, exact_scores, pair_scores

    params = LsrParams(n_docs=700, n_queries=6, vocab_size=400, doc_terms=12, query_terms=5)
    collection, queries, _ = lsr_collection(params)
    retriever, _ = build_reference(collection, 0.3, 0.7)
    full = exact_scores(retriever, queries, list(range(6)), mode)
    docs = torch.tensor([5, 699, 0, 123, 42, 300])
    for row in range(6):
        got = pair_scores(retriever, queries, row, docs, mode)
        assert got.tolist() == pytest.approx(full[row, docs].tolist(), rel=1e-6, abs=1e-7)
    assert (
        pair_scores(retriever, queries, 0, torch.tensor([], dtype=torch.int64), mode).numel() == 0
    )


def test_bench_misuse_of_the_new_options_is_one_line(tmp_path):
    from tests.cli_run import one_line_error, run

    one_line_error(run("bench", "--sizes", "2000", "--workload", "lsr-31k"), "lsr-31k", code=2)
    one_line_error(run("bench", "--workload", "lsr-30k"), "needs --sizes", code=2)
    one_line_error(
        run("bench", "--sizes", "2000", "--engine", "both", "--json", tmp_path / "x.json"),
        "--report",
        code=2,
    )
    one_line_error(run("bench", "--synth", "2000", "--sizes", "2000"), "not both", code=2)


def test_lsr_documents_depend_on_doc_terms_not_query_terms():
    """What lets the lsr grid ingest once per doc-term count (bench.suite.plan)."""
    from bench.workloads import LsrParams, lsr_collection

    def docs(d, q):
        collection, _, _ = lsr_collection(
            LsrParams(n_docs=300, n_queries=5, doc_terms=d, query_terms=q)
        )
        return collection

    a, b, c = docs(32, 8), docs(32, 32), docs(128, 8)
    assert a.description == b.description != c.description
    assert torch.equal(a.encoded.dense, b.encoded.dense)
    assert torch.equal(a.encoded.sparse.to_dense(), b.encoded.sparse.to_dense())


def test_a_profile_splits_into_rewrite_query_collect_fetch_and_the_second_request():
    from bench.peers_report import profile_parts

    profile = {
        "took (whole query)": 9.0,
        "rewrite": 1.5,
        "BooleanQuery": 2.0,
        "  BoostQuery": 0.5,  # a child: inside its parent's time, not added again
        "collector QueryPhaseCollector": 0.6,
        "fetch": 0.4,
        "request 2: rewrite": 1.0,
        "request 2: BooleanQuery": 0.7,
        "request 2:   BoostQuery": 0.2,
        "request 2: fetch": 0.3,
    }
    assert profile_parts(profile) == pytest.approx(
        {"rewrite": 1.5, "query": 2.0, "collect": 0.6, "fetch": 0.4, "request 2": 2.0}
    )

"""A CI-sized benchmark run (10k synthetic images, a few dozen queries) against a real engine:
parity thresholds only, never timings."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest

from bench.collection import synthetic_collection, synthetic_workload
from bench.peers_report import write_peers_report
from bench.run import RunOptions, report_header, run_one
from bench.tables import _f
from bench.targets import check_targets, scale_fits
from sparse_mm.provenance import _finite

N_IMAGES, N_QUERIES = 10_000, 40


@pytest.fixture(scope="module")
def bench_run(engine, trained_model):
    # seed 5: the world the session's model was trained on (tests/engine/conftest.py)
    collection, queries = synthetic_collection(trained_model, N_IMAGES, seed=5, n_queries=N_QUERIES)
    options = RunOptions(
        index=f"test-bench-{uuid.uuid4().hex[:8]}",
        clients=(1, 2),
        batch=64,
        threads=(1,),
        qps_seconds=0.3,
    )
    options.grid = options.grid[:2]
    return run_one(engine.client, trained_model, collection, queries, options)


def test_bench_run_meets_the_parity_thresholds(bench_run):
    run = bench_run
    assert (run["n_docs"], run["n_queries"]) == (N_IMAGES, N_QUERIES)
    hybrid, sparse, dense = (run["modes"][m] for m in ("hybrid", "sparse", "dense"))
    assert hybrid["overlap@10"] >= 0.99
    assert hybrid["score_rel_err_max"] <= 1e-4
    assert sparse["overlap@10_ties"] >= 0.999
    assert sparse["score_rel_err_max"] <= 1e-5
    assert dense["recall@10_vs_exact"] >= 0.95
    # the filtered hybrid (bench.filtered): exact over the kept documents at every selectivity
    for label, share in (("50%", 0.5), ("5%", 0.05), ("0.1%", 0.001)):
        f = run["filtered"][label]
        assert f["kept_share"] == pytest.approx(share, abs=max(share / 3, 0.001)), label
        assert f["top10_identical"] >= 0.95 and f["score_rel_err_max"] <= 1e-4, (label, f)
        assert f["latency_ms"]["p50"] > 0
    # the engine's R@k can only differ from the exact one through those few disagreements
    for mode in ("hybrid", "sparse"):
        r = run["modes"][mode]["R@k"]
        assert r["engine"]["R@10"] == pytest.approx(r["exact"]["R@10"], abs=0.05)


def test_bench_run_measures_everything_the_report_needs(bench_run, engine, trained_model, tmp_path):
    run = bench_run
    assert run["ingest"]["docs_per_s"] > 0 and run["ingest"]["index_bytes"] > 0
    for mode in ("dense", "sparse", "hybrid"):
        ref = run["reference"]["torch_cpu"][mode]
        assert ref["latency_ms"]["p50"] > 0 and ref["batched"]["qps"] > 0
        assert set(run["modes"][mode]["qps_by_clients"]) == {"1", "2"}
    assert len(run["pruning"]) == 2
    report = report_header(engine.client, trained_model, "--synth 10k")
    assert report["command"] == "sparse-mm bench --synth 10k" and report["git"]
    assert report["engine"]["name"] == "opensearch" and report["engine"]["version"]
    assert report["engine"]["index"]["mappings"]["properties"]["dense"]["type"] == "knn_vector"
    assert len(report["model"]["sha256"]["model.safetensors"]) == 64
    vocab = trained_model.config.heads.vocab_size
    run = {"workload": synthetic_workload(5, N_IMAGES, N_QUERIES, vocab), **run}
    report["runs"] = [run]
    report["scale_fit"], report["targets"] = scale_fits([run]), check_targets([run])
    write_peers_report({engine.name: report}, tmp_path)
    # the report says what the JSON holds: its command, and each mode's parity and latency
    written = json.loads((tmp_path / f"{engine.name}.json").read_text())
    assert written["runs"][0] == json.loads(json.dumps(_finite(run)))
    text = (tmp_path / "report.md").read_text()
    assert "sparse-mm bench --synth 10k" in text
    for mode in ("dense", "sparse", "hybrid"):
        m = run["modes"][mode]
        assert f"| synthetic | 10,000 | {engine.name} | {mode} | {_f(m['overlap@10'])} |" in text
    f = run["filtered"]["5%"]
    assert f"| {engine.name} | 5% (bucket<50) | {f['kept_docs']:,} |" in text
    assert not engine.client.indices.exists(index=run["index"])  # cleaned up


def test_load_run_checks_every_answer(engine, trained_model):
    from bench.engine import ingest_collection
    from bench.reference import build_reference
    from indexing.client import ConnectionOptions
    from tools.answers import check_answers
    from tools.load import run_load, summarize

    collection, queries = synthetic_collection(trained_model, 2_000, seed=5, n_queries=20)
    name = f"test-load-{uuid.uuid4().hex[:8]}"
    ingest_collection(engine.client, name, trained_model, collection)
    w = {"w1": trained_model.config.w1, "w2": trained_model.config.w2}
    connection = ConnectionOptions(url=engine.url)
    try:
        samples = run_load(connection, name, queries.vectors, clients=2, duration=3.0,
                           check=12, **w)  # fmt: skip
        summary = summarize(samples, 3.0, window=1.0)
        assert summary["overall"]["errors"] == 0, summary["error_messages"]
        assert set(summary["modes"]) == {"hybrid", "sparse", "dense"}
        # every client sent from the start; the counts within 3 s depend on the machine's speed
        assert len(summary["per_client_requests"]) == 2
        assert all(n >= 1 for n in summary["per_client_requests"])
        windows = summary["windows"]
        assert [(w["from_s"], w["to_s"]) for w in windows] == [(0, 1), (1, 2), (2, 3)]
        assert sum(w["requests"] for w in windows) == summary["overall"]["requests"]
        # Each client ran until it had its 6 answers, however slow the machine is today; they
        # are the engine's real ones and agree with exact search.
        answers = [s.answer for s in samples if s.answer]
        assert len(answers) == 12 and {a.mode for a in answers} == {"hybrid", "sparse", "dense"}
        retriever, _ = build_reference(collection, **w)
        checked = check_answers(answers, retriever, queries)
        assert (checked["checked"], checked["mismatches"]) == (12, 0), checked["examples"]
        assert checked["modes"]["sparse"]["recall@10_vs_exact"] == 1.0
        # An answer from another query is caught.
        sparse = next(a for a in answers if a.mode == "sparse")
        other = replace(sparse, query=(sparse.query + 1) % len(queries))
        assert check_answers([other], retriever, queries)["mismatches"] == 1
        # A client that gets errors reports them and goes on until the deadline.
        missing = run_load(connection, name + "-x", queries.vectors[:3], clients=1,
                           duration=1.0, modes=["sparse"], **w)  # fmt: skip
        failed = summarize(missing, 1.0)
        assert failed["overall"]["errors"] == failed["overall"]["requests"] > 1
        assert "does not exist" in next(iter(failed["error_messages"]))
    finally:
        engine.client.indices.delete(index=name, ignore_unavailable=True)


def test_load_command_reports_the_answers_it_checked(engine, tmp_path):
    """`python -m tools.load` end to end (demo model, a small synthetic index): the JSON and the
    markdown report the answers compared with exact search."""
    import json

    from tools.load import main

    out = tmp_path / "load.json"
    main(["--url", engine.url, "--images", "500", "--queries", "20", "--clients", "1",
          "--duration", "2", "--check", "6", "--index", f"test-load-{uuid.uuid4().hex[:8]}",
          "--json", str(out), "--markdown", str(tmp_path / "load.md")])  # fmt: skip
    answers = json.loads(out.read_text())["answers"]
    assert (answers["checked"], answers["mismatches"]) == (6, 0)
    assert set(answers["modes"]) == {"hybrid", "sparse", "dense"}
    assert "6 answers checked against exact in-memory search, 0 mismatches" in (
        (tmp_path / "load.md").read_text()
    )


def test_bench_builds_its_indices_with_the_chosen_graph(engine, trained_model):
    """`sparse-mm bench --index-profile legacy`: the index is built with that graph (mapping
    and `_meta.hnsw`), dense mode searches the profile's ef_search, and the report's header and
    work model say so."""
    from bench.engine import prepare_index
    from indexing.engine import as_engine
    from indexing.index import index_meta
    from indexing.layout import IndexSettings
    from indexing.query_terms import DEFAULT_KNN_K

    settings = IndexSettings(profile="legacy")
    assert (settings.m, settings.ef_construction) != (
        IndexSettings().m,
        IndexSettings().ef_construction,
    )
    collection, queries = synthetic_collection(trained_model, 1_000, seed=5, n_queries=8)
    options = RunOptions(
        index=f"test-bench-graph-{uuid.uuid4().hex[:8]}",
        clients=(1,),
        batch=8,
        threads=(1,),
        timing_queries=4,
        qps_seconds=0.1,
        keep_index=True,
        index_settings=settings,
    )
    options.grid = ()
    run = run_one(engine.client, trained_model, collection, queries, options)
    client = engine.client
    try:
        meta = index_meta(client, run["index"])
        assert meta["hnsw"] == settings.graph
        assert as_engine(client).hnsw_parameters(meta["_properties"]) == (16, 128)
        # the hybrid's k-NN clause searches as wide as its neighbours, on both engines
        assert run["work"]["per_query"]["hnsw"] == {
            "m": 16,
            "ef_dense": settings.ef_search,
            "ef_hybrid": DEFAULT_KNN_K,
        }
        header = report_header(client, trained_model, "x", settings=settings)
        assert json.dumps(settings.graph["m"]) in json.dumps(header["engine"]["index"])
        # a reused index of another graph is rebuilt, not measured as this one
        assert not prepare_index(client, run["index"], trained_model, collection, reuse=True)
        assert index_meta(client, run["index"])["hnsw"] == IndexSettings().graph
    finally:
        client.indices.delete(index=run["index"], ignore_unavailable=True)

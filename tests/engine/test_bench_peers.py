"""`sparse-mm bench` end to end on both engines in one run, at a tiny N: both workloads, one
JSON per engine (schema kept, `engine.name`, `git`, `runs[*].workload`), the shared exact
reference, the Markdown report comparing them; parity thresholds only, never timings."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.cli_run import run


@pytest.fixture(scope="module")
def peers_report(opensearch_engine, elasticsearch_engine, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-peers")
    prefix = f"test-peers-{uuid.uuid4().hex[:6]}"
    result = run(
        "bench", "--sizes", "400,800", "--workload", "model,lsr-30k", "--engine", "both",
        "--url", opensearch_engine.url, "--elasticsearch-url", elasticsearch_engine.url,
        "--queries", "12", "--clients", "1,2", "--batch", "16", "--no-grid",
        "--index", prefix, "--report", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    reports = {
        e: json.loads((out / f"{e}.json").read_text()) for e in ("opensearch", "elasticsearch")
    }
    return out, reports, prefix, result


def test_one_json_per_engine_with_the_schema_other_tools_read(peers_report):
    _, reports, _, _ = peers_report
    for name, report in reports.items():
        assert report["engine"]["name"] == name and report["engine"]["version"]
        assert report["git"] and report["memory_bandwidth"]["bytes_per_s"] > 0
        assert [(r["workload"]["name"], r["n_docs"]) for r in report["runs"]] == [
            ("model", 400), ("model", 800), ("lsr-30k", 400), ("lsr-30k", 800)
        ]  # fmt: skip
        for r in report["runs"]:
            assert set(r["modes"]) == {"dense", "sparse", "hybrid"}
            assert r["ingest"]["docs_per_s"] > 0 and r["ingest"]["index_bytes"] > 0
            assert r["ingest"]["time_until_merges_settled_s"] is not None
            assert r["engine_memory"]["heap_used_bytes"] > 0
            assert r["reference"]["torch_cpu"]["sparse"]["latency_ms"]["p50"] > 0
            assert r["work"]["engine"]["sparse"]["units"] > 0
        lsr = report["runs"][-1]["workload"]
        assert lsr["vocab_size"] == 30522 and lsr["recipe"]["doc_terms"] == 64
        assert lsr["statistics"]["query_terms_mean"] == 16
        assert lsr["weights"]["w1"] == report["model"]["w1"]
        assert report["runs"][0]["workload"]["vocab_size"] == report["model"]["vocab_size"]
        assert {t["workload"] for t in report["targets"]} == {"model", "lsr-30k"}
        assert set(report["scale_fit"]) == {"model", "lsr-30k"}


def test_engines_share_documents_queries_and_the_exact_reference(peers_report):
    _, reports, _, _ = peers_report
    os_runs, es_runs = reports["opensearch"]["runs"], reports["elasticsearch"]["runs"]
    for a, b in zip(os_runs, es_runs, strict=True):
        assert a["reference"] == b["reference"]  # measured once, shared
        assert a["workload"] == b["workload"] and a["terms_per_doc"] == b["terms_per_doc"]
        for run_ in (a, b):
            sparse, hybrid = run_["modes"]["sparse"], run_["modes"]["hybrid"]
            # recall against the exact hits with a positive score: at a few hundred documents
            # an lsr query can match fewer than ten
            assert sparse["recall@10_vs_exact"] >= 0.999
            assert sparse["score_rel_err_max"] <= 1e-5 and hybrid["score_rel_err_max"] <= 1e-4
            assert run_["modes"]["dense"]["recall@10_vs_exact"] >= 0.9


def test_the_report_compares_the_engines_and_cleans_up(
    peers_report, opensearch_engine, elasticsearch_engine
):
    out, _, prefix, result = peers_report
    text = (out / "report.md").read_text()
    for engine in ("opensearch", "elasticsearch"):
        assert f"| lsr-30k | 800 | {engine} | hybrid |" in text
        assert f"{engine} lsr-30k N = 800" in result.stdout
    assert (out / "latency_vs_n_lsr-30k.png").stat().st_size > 0
    assert "[lsr-30k 800] generating" in result.stderr  # progress lines
    for engine in (opensearch_engine, elasticsearch_engine):
        assert not engine.client.indices.exists(index=f"{prefix}-{engine.name}-800")

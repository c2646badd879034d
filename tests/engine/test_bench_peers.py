"""`sparse-mm bench` end to end on both engines in one run, at a tiny N: both workloads, one
JSON per engine (schema kept, `engine.name`, `git`, `runs[*].workload`), the shared exact
reference, the Markdown report comparing them; parity thresholds only, never timings."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest

from bench.tables import _f, parity_cells
from tests.cli_run import one_line_error, run

GIT = "abc1234"  # pieces merge only at a clean commit: the run's describe, pinned for the test


RECIPE = (
    "--queries",
    "12",
    "--clients",
    "1,2",
    "--batch",
    "16",
    "--no-grid",
    "--qps-seconds",
    "0.3",
)


@pytest.fixture(scope="module")
def peers_report(opensearch_engine, elasticsearch_engine, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-peers")
    prefix = f"test-peers-{uuid.uuid4().hex[:6]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sparse_mm.provenance.git_describe", lambda *_a, **_k: GIT)
        result = run(
            "bench", "--sizes", "400,800", "--workload", "model,lsr-30k", "--engine", "both",
            "--url", opensearch_engine.url, "--elasticsearch-url", elasticsearch_engine.url,
            *RECIPE, "--index", prefix, "--report", out,
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
            # the hybrid's window (600) covers most of a few hundred documents: exact lists
            assert hybrid["top10_identical"] == 1.0, (run_["index"], hybrid["top10_identical"])
            assert hybrid["overlap@10"] == 1.0, (run_["index"], hybrid["overlap@10"])


def test_the_report_compares_the_engines_and_cleans_up(
    peers_report, opensearch_engine, elasticsearch_engine
):
    out, reports, prefix, result = peers_report
    text = (out / "report.md").read_text()
    for engine in ("opensearch", "elasticsearch"):
        run_ = next(r for r in reports[engine]["runs"] if r["index"].endswith("-800")
                    and r["workload"]["name"] == "lsr-30k")  # fmt: skip
        m = run_["modes"]["hybrid"]
        cells = [*parity_cells(m), m["R@k"]["engine"]["R@10"], m["R@k"]["exact"]["R@10"]]
        assert f"| lsr-30k | 800 | {engine} | hybrid | {' | '.join(map(_f, cells))} |" in text
        assert f"{engine} lsr-30k N = 800" in result.stdout
    assert (out / "latency_vs_n_lsr-30k.png").read_bytes()[:4] == b"\x89PNG"
    assert "[lsr-30k 800] generating" in result.stderr  # progress lines
    for engine in (opensearch_engine, elasticsearch_engine):
        assert not engine.client.indices.exists(index=f"{prefix}-{engine.name}-800")


def test_phases_are_recorded_per_item_and_engine(peers_report):
    out, reports, _, result = peers_report
    phases = reports["opensearch"]["phases"]
    assert phases == reports["elasticsearch"]["phases"]  # one command's phases
    seen = {(p["phase"], p["label"], p["n_docs"], p["engine"]) for p in phases}
    for label in ("model", "lsr-30k"):
        assert ("reference", label, 800, None) in seen and ("generate", label, 800, None) in seen
        for engine in ("opensearch", "elasticsearch"):
            assert ("ingest", label, 800, engine) in seen and (
                "queries",
                label,
                800,
                engine,
            ) in seen
    assert ("encode", "model", 400, None) in seen
    assert all(p["seconds"] >= 0 for p in phases)
    run_ = reports["opensearch"]["runs"][0]
    assert run_["phases"]["total"] > 0 and "ingest opensearch" in run_["phases"]
    assert "## Where the time went" in (out / "report.md").read_text()
    assert "phases: generate" in result.stderr


def test_a_piece_appends_to_the_report_and_other_pieces_are_refused(
    peers_report, opensearch_engine, tmp_path, monkeypatch
):
    out, reports, prefix, _ = peers_report
    folder = tmp_path / "pieces"
    shutil.copytree(out, folder)
    monkeypatch.setattr("sparse_mm.provenance.git_describe", lambda *_a, **_k: GIT)
    url = opensearch_engine.url
    piece = ("bench", "--workload", "lsr-30k", "--engine", "opensearch", "--url", url,
             "--index", prefix, "--report", folder, "--append")  # fmt: skip
    result = run(*piece, "--sizes", "1200", *RECIPE)
    assert result.exit_code == 0, result.output
    merged = json.loads((folder / "opensearch.json").read_text())
    assert [(r["workload"]["name"], r["n_docs"]) for r in merged["runs"]] == [
        *((r["workload"]["name"], r["n_docs"]) for r in reports["opensearch"]["runs"]),
        ("lsr-30k", 1200),
    ]
    assert [p["runs"] for p in merged["pieces"]] == [
        [[r["workload"]["label"], r["n_docs"]] for r in reports["opensearch"]["runs"]],
        [["lsr-30k", 1200]],
    ]
    assert set(merged["scale_fit"]) == {"model", "lsr-30k"}
    assert json.loads((folder / "elasticsearch.json").read_text()) == reports["elasticsearch"]
    text = (folder / "report.md").read_text()
    assert "Produced in 2 pieces" in text and "| lsr-30k | 800 | elasticsearch | hybrid |" in text
    # refused before anything is measured: another recipe, a size already there, another commit
    other = run(*piece, "--sizes", "1600", *RECIPE[:-1], "0.4")
    one_line_error(other, "--append:", "qps_seconds differ")
    again = run(*piece, "--sizes", "1200", *RECIPE)
    one_line_error(again, "already holds lsr-30k at N = 1,200")
    monkeypatch.setattr("sparse_mm.provenance.git_describe", lambda *_a, **_k: "def5678")
    one_line_error(run(*piece, "--sizes", "1600", *RECIPE), "same commit")
    assert "generating" not in other.stderr + again.stderr

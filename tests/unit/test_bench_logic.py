"""The benchmark's pure logic: percentiles, the a + b * N fit, parity, targets, the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.cli import parse_ints, parse_sizes
from bench.metrics import aggregate_parity, fit_linear, percentiles, query_parity, recall_at
from bench.targets import check_targets, scale_fit
from sparse_mm.errors import ConfigError
from sparse_mm.provenance import write_json
from sparse_mm.synth import SynthParams, World, generate_chunk


def test_percentiles_interpolate_between_ranks():
    p = percentiles(list(range(1, 101)))
    assert p["p50"] == pytest.approx(50.5)
    assert p["p95"] == pytest.approx(95.05)
    assert p["p99"] == pytest.approx(99.01)
    assert p["mean"] == pytest.approx(50.5)
    assert math.isnan(percentiles([])["p50"])


def test_fit_recovers_a_line_and_degenerates_gracefully():
    n = [1e4, 1e5, 1e6]
    fit = fit_linear(n, [2 + 3e-6 * x for x in n])
    assert fit["a"] == pytest.approx(2) and fit["b"] == pytest.approx(3e-6)
    assert fit["r2"] == pytest.approx(1.0)
    single = fit_linear([1e4], [5.0])
    assert (single["a"], single["b"], single["points"]) == (5.0, 0.0, 1)
    assert fit_linear([1, 2], [float("nan"), 1.0])["points"] == 1


def test_query_parity_counts_overlap_ties_and_errors():
    exact_ids = [str(i) for i in range(10)]
    exact_scores = [10.0 - i for i in range(9)] + [1.0]
    # the engine swaps doc 9 for doc 42, which ties doc 9's score exactly
    engine_ids = [*exact_ids[:9], "42"]
    engine_scores = [s * (1 + 1e-7) for s in exact_scores]
    lookup = dict(zip(exact_ids, exact_scores, strict=True)) | {"42": 1.0}
    q = query_parity(engine_ids, engine_scores, exact_ids, exact_scores, lookup)
    assert q["overlap"] == pytest.approx(0.9)
    assert q["overlap_ties"] == pytest.approx(1.0)
    assert q["recall"] == pytest.approx(0.9)
    assert q["identical"] == 0.0
    assert max(q["errors"]) == pytest.approx(1e-7, rel=1e-3)
    agg = aggregate_parity(
        [q, query_parity(exact_ids, exact_scores, exact_ids, exact_scores, lookup)]
    )
    assert agg["overlap@10"] == pytest.approx(0.95)
    assert agg["top10_identical"] == 0.5
    assert agg["score_rel_err_max"] == pytest.approx(1e-7, rel=1e-3)


def test_recall_only_counts_exact_hits_an_engine_can_return():
    exact_ids = [str(i) for i in range(10)]
    exact_scores = [3.0, 2.0, 1.0] + [0.0] * 7  # only three documents share a term
    lookup = dict.fromkeys(exact_ids, 0.0) | {"0": 3.0, "1": 2.0, "2": 1.0}
    q = query_parity(["0", "1", "2"], [3.0, 2.0, 1.0], exact_ids, exact_scores, lookup)
    assert q["recall"] == 1.0
    assert q["overlap"] == pytest.approx(0.3)


def test_recall_at_k():
    ranked = [["a", "b", "c"], ["x", "y", "z"]]
    assert recall_at(ranked, ["a", "z"], ks=(1, 3)) == {"R@1": 0.5, "R@3": 1.0}


def test_sizes_and_ints_parse_or_fail_in_one_line():
    assert parse_sizes("100k, 10000,1M,10k") == [10_000, 100_000, 1_000_000]
    assert parse_ints("1,2,4", "--clients") == (1, 2, 4)
    for bad in ("ten", "5"):
        with pytest.raises(ConfigError):
            parse_sizes(bad)
    with pytest.raises(ConfigError):
        parse_ints("0", "--clients")


def test_images_without_captions_are_the_same_images():
    world = World(SynthParams(seed=3, n_images=2000))
    full = generate_chunk(world, 0, 2000)
    bare = generate_chunk(world, 0, 2000, captions=False)
    assert np.array_equal(full.image_emb, bare.image_emb)
    assert bare.captions == [] and bare.text_emb.shape == (0, 768)


def test_nested_hybrid_candidates_keep_every_clause_and_weight():
    from bench.profile import VARIANTS
    from indexing.opensearch.queries import hybrid_query

    body = hybrid_query([0.6, 0.8], {"dog": 2.0, "beach": 0.5}, w1=0.1, w2=0.3, k=10)
    nested = VARIANTS["hybrid"]["nested candidate clauses (before)"](body)
    knn, sparse = nested["query"]["bool"]["should"]
    assert knn["knn"]["dense"]["boost"] == pytest.approx(0.2)  # 2 * w1
    assert sparse["bool"]["boost"] == 0.3
    assert sparse["bool"]["should"] == body["query"]["bool"]["should"][1:]
    assert nested["rescore"] == body["rescore"] and "rescore" in body


def test_synthetic_queries_do_not_depend_on_the_collection_size(tmp_path):
    from bench.collection import synthetic_queries
    from sparse_mm.checkpoint import ModelConfig, save_model
    from sparse_mm.model import HeadsConfig, SparseDenseHeads
    from sparse_mm.vocab import Vocabulary

    world = World(SynthParams(seed=3))
    heads = SparseDenseHeads(HeadsConfig(vocab_size=len(world.words)))
    save_model(tmp_path, heads, Vocabulary(world.words), ModelConfig(heads.config, 0.1, 0.1))
    from sparse_mm.checkpoint import load_model

    model = load_model(tmp_path)
    a = synthetic_queries(model, seed=3, n_queries=20, n_images=10_000)
    b = synthetic_queries(model, seed=3, n_queries=20, n_images=1_000_000)
    assert a.texts == b.texts and a.relevant == b.relevant
    assert all(int(r) < 1000 for r in a.relevant)  # test images only
    assert bool((a.dense == b.dense).all())


def test_held_out_captions_leave_out_the_default_sample():
    from bench.collection import caption_sample

    default = caption_sample(5000, 200, 0)
    assert default == sorted(__import__("random").Random(0).sample(range(5000), 200))
    held_out = caption_sample(5000, 200, 13)
    assert len(held_out) == 200 and not set(held_out) & set(default)
    assert held_out != caption_sample(5000, 200, 11)
    few = caption_sample(300, 200, 13)  # too few captions to hold 200 out: any 200 of them
    assert few == sorted(set(few)) and len(few) == 200


def test_a_model_workload_stays_in_the_models_training_world(tmp_path):
    from bench.collection import model_world

    trained = tmp_path / "trained"
    trained.mkdir()
    recipe = {"seed": 7, "n_images": 10_000, "captions_per_image": 5}
    (trained / "provenance.json").write_text(json.dumps({"data": {"recipe": recipe}}))
    own = model_world(trained, 7)
    assert (own.seed, own.query_seed) == (7, 0)
    other = model_world(trained, 13)
    assert (other.seed, other.query_seed) == (7, 13) and "held out" in other.source
    bare = tmp_path / "bare"
    bare.mkdir()
    assert (model_world(bare, 13).seed, model_world(bare, 13).query_seed) == (13, 0)
    assert "says nothing of it" in model_world(bare, 13).source
    (bare / "provenance.json").write_text("{not json")
    assert model_world(bare, 5).seed == 5


def _run(n: int, engine_ms: float, torch_ms: float) -> dict:
    lat = {"p50": engine_ms, "p95": engine_ms * 2, "p99": engine_ms * 3, "mean": engine_ms}
    mode = {
        "overlap@10": 1.0,
        "overlap@10_ties": 1.0,
        "recall@10_vs_exact": 1.0,
        "top10_identical": 1.0,
        "score_rel_err_max": 1e-7,
        "score_rel_err_median": 0.0,
        "latency_ms": lat,
        "took_ms": lat,
        "qps": 1000 / engine_ms,
        "qps_by_clients": {"1": 100.0, "2": 150.0, "4": 160.0},
        "R@k": {
            "engine": {"R@1": 0.5, "R@5": 0.8, "R@10": 0.9},
            "exact": {"R@1": 0.5, "R@5": 0.8, "R@10": 0.9},
        },
    }
    ref_lat = {"p50": torch_ms, "p95": torch_ms, "p99": torch_ms, "mean": torch_ms}
    ref = {
        "latency_ms": ref_lat,
        "qps": 1.0,
        "qps_by_clients": {"1": 1.0, "2": 1.5, "4": 1.6},
        "batched": {"batch": 256, "seconds": 1.0, "qps": 256.0},
    }
    return {
        "n_docs": n,
        "n_queries": 20,
        "collection": "test",
        "index": "x",
        "terms_per_doc": 30.0,
        "terms_per_query": 10.0,
        "ingest": {
            "docs": n,
            "reused_index": False,
            "clients": 2,
            "docs_per_s": 2500.0,
            "bulk_seconds": 1.0,
            "time_until_searchable_s": 0.5,
            "client_build_json_s_estimate": 0.2,
            "encode_seconds": 0.1,
            "encode_docs_per_s": 1e5,
            "end_to_end_docs_per_s": 2000.0,
            "index_bytes": 2**20,
            "segments": 3,
            "engine_time_ms": {"indexing": 1500, "refresh": 10, "flush": 5, "merge": 0},
        },
        "modes": {m: mode for m in ("dense", "sparse", "hybrid")},
        "reference": {"torch_cpu": {m: ref for m in ("dense", "sparse", "hybrid")}},
        "pruning": [
            {
                "mode": "hybrid",
                "query_top_k": 8,
                "window": 100,
                "ef_search": None,
                "latency_ms": lat,
                "took_ms": lat,
                "overlap@10": 0.9,
                "overlap@10_ties": 0.9,
                "R@10": 0.9,
            }
        ],
        "engine_profile": {"hybrid": {"took (whole request)": 5.0, "rewrite": 0.1}},
        "variants": [
            {
                "mode": "sparse",
                "variant": "track_total_hits=false",
                "production_latency_ms": lat,
                "variant_latency_ms": lat,
                "production_took_ms": lat,
                "variant_took_ms": lat,
            }
        ],
        "profile": {
            m: {
                "client_p50_ms": engine_ms,
                "engine_took_p50_ms": engine_ms,
                "outside_engine_p50_ms": 0.0,
                "torch_cpu_p50_ms": torch_ms,
            }
            for m in ("dense", "sparse", "hybrid")
        },
    }


def test_targets_and_fit_over_runs():
    runs = [_run(10_000, 2.0, 1.0), _run(100_000, 3.0, 10.0), _run(1_000_000, 12.0, 100.0)]
    targets = {t["target"]: t for t in check_targets(runs)}
    ten_ms = targets.pop("engine hybrid p50 <= 10 ms")
    assert ten_ms["status"] == "not met" and ten_ms["engine_p50_ms"] > 10  # 12 ms at 1M
    assert all(t["status"] == "met" for t in targets.values())
    fit = scale_fit(runs)
    assert fit["engine"]["dense"]["b"] > 0 and fit["torch_cpu"]["sparse"]["points"] == 3
    # each target is judged at the largest N, which says whether it is the scale
    assert {t["n_docs"] for t in targets.values()} == {1_000_000}
    only_small = check_targets(runs[:1])
    assert {t["n_docs"] for t in only_small} == {10_000}
    assert not any(t["at_issue_scale"] for t in only_small)
    # a run that searched a reused index measured no ingest: neither met nor not met
    runs[-1]["ingest"]["docs_per_s"] = None
    ingest = {t["target"]: t for t in check_targets(runs)}[
        "ingest >= 2,000 docs/s (bulk to searchable)"
    ]
    assert ingest["status"] == "not measured"


def test_report_json_is_strict_and_has_the_schema(tmp_path):
    runs = [_run(10_000, 2.0, 1.0), _run(100_000, 3.0, 10.0)]
    report = {
        "schema_version": 1,
        "command": "sparse-mm bench --synth 10k,100k",
        "created": "now",
        "machine": {
            "cpu": "cpu",
            "cores": 2,
            "ram_bytes": 2**34,
            "torch": "2",
            "torch_threads": 2,
            "gpu": None,
            "git_commit": "abc",
        },
        "engine": {"opensearch": "3.4.0", "lucene": "10", "jdk": "25", "heap_max_bytes": 2**32},
        "model": {"path": "m", "w1": 0.1, "w2": 0.1, "vocab_size": 362, "dense_dim": 256},
        "runs": runs,
        "scale_fit": scale_fit(runs),
        "targets": check_targets(runs),
    }
    report["runs"][0]["modes"]["dense"]["score_rel_err_max"] = float("nan")
    write_json(report, tmp_path / "opensearch.json")
    assert [f.name for f in tmp_path.iterdir()] == ["opensearch.json"]  # no temporary left
    loaded = json.loads((tmp_path / "opensearch.json").read_text())  # strict JSON: NaN -> null
    assert loaded["runs"][0]["modes"]["dense"]["score_rel_err_max"] is None
    for run in loaded["runs"]:
        assert {"n_docs", "n_queries", "modes", "reference", "ingest"} <= set(run)
        for mode in ("dense", "sparse", "hybrid"):
            m = run["modes"][mode]
            assert {"overlap@10", "recall@10_vs_exact", "score_rel_err_max", "qps"} <= set(m)
            assert {"p50", "p95", "p99"} <= set(m["latency_ms"])
            assert {"p50", "p95", "p99"} <= set(run["reference"]["torch_cpu"][mode]["latency_ms"])
        assert {"docs_per_s", "index_bytes"} <= set(run["ingest"])


def test_bench_command_errors_are_one_line(tmp_path):
    from click.testing import CliRunner

    from sparse_mm.cli import main

    runner = CliRunner()
    missing = runner.invoke(main, ["bench", "--model", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and missing.output.count("\n") == 1
    assert missing.output.startswith("error: ")
    both = runner.invoke(main, ["bench", "--data", str(tmp_path), "--synth", "10k"])
    assert both.exit_code == 2 and "either --data or --synth" in both.output


def _sample(client, at_s, mode, ms, error=None):
    from tools.load import Sample

    return Sample(client, at_s, mode, ms, None if error else ms / 2, error)


def test_load_summary_counts_errors_windows_and_clients():
    from tools.load import markdown, summarize

    samples = [_sample(c, t / 10, m, 10.0 + t, None) for t in range(100) for c in (0, 1)
               for m in ("hybrid",)]  # fmt: skip
    samples += [_sample(1, 9.5, "sparse", 5.0, "EngineError: gone"), _sample(0, 1.0, "sparse", 4.0)]
    summary = summarize(samples, duration=10.0, window=4.0)
    overall = summary["overall"]
    assert (overall["requests"], overall["errors"]) == (202, 1)
    assert overall["qps"] == pytest.approx(201 / 10.0)
    assert summary["modes"]["sparse"]["errors"] == 1 and summary["modes"]["hybrid"]["errors"] == 0
    assert summary["modes"]["hybrid"]["client_ms"]["max"] == 109.0
    # 0-4, 4-8 and the partial 8-10 window; each sample in exactly one
    assert [(w["from_s"], w["to_s"]) for w in summary["windows"]] == [(0, 4), (4, 8), (8, 10)]
    assert sum(w["requests"] for w in summary["windows"]) == 202
    assert summary["windows"][2]["qps"] == pytest.approx(40 / 2)  # 40 good requests in 2 s
    assert summary["per_client_requests"] == [101, 101]
    assert summary["error_messages"] == {"EngineError: gone": 1}
    report = {
        "summary": summary,
        "command": "python -m tools.load",
        "created": "now",
        "machine": {"cpu": "x", "cores": 2, "ram_bytes": 2**30, "git_commit": "abc"},
        "engine": {"opensearch": "3.4.0", "jdk": "jdk", "heap_max_bytes": 2**30},
        "setup": {"clients": 2, "duration_s": 10.0, "n_docs": 1000, "modes": ["hybrid"]},
    }
    text = markdown(report)
    assert "| all | 202 | 1 | 20.1 |" in text and "- 1 x EngineError: gone" in text


def test_help_texts_say_what_the_commands_write():
    """The bench's index names and report files, and the root's summary, as they are."""
    from click.testing import CliRunner

    from sparse_mm.cli import main

    runner = CliRunner()
    bench_help = " ".join(runner.invoke(main, ["bench", "--help"]).output.split())
    assert "<prefix>-<engine>-<N>" in bench_help  # bench/run.py names them so
    assert "Write <engine>.json per engine, report.md" in bench_help
    root = " ".join(runner.invoke(main, ["--help"]).output.split())
    assert "served by OpenSearch or Elasticsearch" in root

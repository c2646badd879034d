"""The HNSW profile (mapping, `_meta`, checks), the bulk-load settings' restoration, progress
only after a checkpoint, and the orjson bulk serializer; pure logic, with a fake engine where an
engine is needed (tests/engine/test_bulk_settings.py runs the same on real nodes)."""

from __future__ import annotations

import contextlib
import itertools
import json

import numpy as np
import pytest

from indexing.bulk import BulkOptions, bulk_index
from indexing.elasticsearch.mapping import index_body as es_body
from indexing.index import built_settings, bulk_loading
from indexing.layout import DEFAULT_PROFILE, PROFILES, IndexSettings
from indexing.opensearch.client import orjson_serializer
from indexing.opensearch.mapping import index_body as os_body
from sparse_mm.errors import ConfigError, DataError, EngineError
from tests.cli_run import one_line_error, run


def test_settings_take_the_profile_and_overrides():
    default = IndexSettings()
    chosen = PROFILES[DEFAULT_PROFILE]
    assert (default.m, default.ef_construction, default.ef_search) == (
        chosen.m,
        chosen.ef_construction,
        chosen.ef_search,
    )
    legacy = IndexSettings(profile="legacy")
    assert (legacy.m, legacy.ef_construction) == (16, 128)
    assert legacy.graph["profile"] == "legacy"
    custom = IndexSettings(profile="legacy", m=12)
    assert custom.graph == {"profile": "custom", "m": 12, "ef_construction": 128, "ef_search": 64}


def test_the_shipped_default_is_the_balanced_graph_with_ef_search_512():
    """Issue 14's choice (commit b907f1c, confirmed by bench/results/peers): m 16,
    ef_construction 64, dense-mode ef_search 512 on both engines, the vectors' space unchanged
    (cosine)."""
    from indexing.elasticsearch.queries import dense_query as es_dense
    from indexing.opensearch.queries import dense_query as os_dense
    from indexing.query_terms import DENSE_EF_SEARCH

    default = IndexSettings()
    assert DEFAULT_PROFILE == "balanced"
    assert (default.m, default.ef_construction, default.ef_search) == (16, 64, 512)
    os_index = os_body(4, default, None)
    assert os_index["settings"]["index"]["knn.algo_param.ef_search"] == 512
    assert os_index["mappings"]["properties"]["dense"]["method"]["space_type"] == "cosinesimil"
    es_dense_field = es_body(4, default, None)["mappings"]["properties"]["dense"]
    assert es_dense_field["similarity"] == "cosine"
    assert DENSE_EF_SEARCH == 512
    knn = os_dense([0.6, 0.8], k=10, ef_search=DENSE_EF_SEARCH)["query"]["knn"]["dense"]
    assert knn["method_parameters"] == {"ef_search": 512}
    assert es_dense([0.6, 0.8], k=10)["query"]["knn"]["num_candidates"] == 512


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"m": 1}, "--hnsw-m must be 2 to 512, got 1"),
        ({"m": 600}, "--hnsw-m must be 2 to 512, got 600"),
        ({"m": 32, "ef_construction": 16}, "--ef-construction must be at least --hnsw-m (32)"),
        ({"ef_construction": 5000}, "at most 3200, got 5000"),
        ({"profile": "turbo"}, "unknown index profile 'turbo'; expected one of fast,"),
    ],
)
def test_bad_graph_values_are_one_line_errors(kwargs, fragment):
    with pytest.raises(ConfigError) as caught:
        IndexSettings(**kwargs)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("profile", list(PROFILES))
def test_both_mappings_build_the_profiles_graph_and_record_it(profile):
    settings = IndexSettings(profile=profile)
    graph = {"m": settings.m, "ef_construction": settings.ef_construction}
    os_mapping = os_body(4, settings, {"w1": 0.1})["mappings"]
    es_mapping = es_body(4, settings, {"w1": 0.1})["mappings"]
    assert os_mapping["properties"]["dense"]["method"]["parameters"] == graph
    assert es_mapping["properties"]["dense"]["index_options"] == {"type": "hnsw", **graph}
    for mapping in (os_mapping, es_mapping):
        assert mapping["_meta"]["hnsw"] == {
            "profile": profile,
            **graph,
            "ef_search": settings.ef_search,
        }
        assert mapping["_meta"]["w1"] == 0.1


def test_ingest_refuses_bad_graph_values_before_anything_else(tmp_path):
    result = run(
        "ingest", "--hnsw-m", "1", "--data", tmp_path / "none", "--url", "http://127.0.0.1:9"
    )
    one_line_error(result, "--hnsw-m must be 2 to 512, got 1")
    result = run(
        "ingest", "--hnsw-m", "16", "--ef-construction", "8", "--url", "http://127.0.0.1:9"
    )
    one_line_error(result, "--ef-construction must be at least --hnsw-m (16)")
    result = run("ingest", "--index-profile", "turbo")
    one_line_error(result, "turbo")


class FakeEngine:
    """An engine's index settings, flushes and bulk acknowledgements, in memory."""

    label = "FakeEngine"
    connection_errors = (ConnectionError,)

    def __init__(self, interval="1s", durability=None, flush_failures=0, hnsw=(16, 128)):
        self.interval, self.durability = interval, durability
        self.flush_failures, self.flushes, self.hnsw = flush_failures, [], hnsw
        self.log: list[str] = []
        self.acknowledged = 0

    def address(self):
        return "fake:1"

    def without_retries(self):
        return self

    def refresh_interval(self, _name):
        return self.interval

    def set_refresh_interval(self, _name, value):
        self.interval = value
        self.log.append(f"refresh_interval {value}")

    def translog_durability(self, _name):
        return self.durability

    def set_translog_durability(self, _name, value):
        self.durability = value
        self.log.append(f"durability {value}")

    def refresh(self, _name):
        self.log.append("refreshed")

    def flush(self, _name):
        if self.flush_failures:
            self.flush_failures -= 1
            raise ConnectionError("connection refused")
        self.flushes.append(self.acknowledged)

    def bulk(self, actions, **_kwargs):
        for a in actions:
            self.acknowledged += 1
            if a["_id"].startswith("bad"):
                error = {"type": "mapper_parsing_exception", "reason": "bad vector"}
                yield False, {"index": {"_id": a["_id"], "status": 400, "error": error}}
            else:
                yield True, {"index": {"_id": a["_id"], "result": "created", "status": 201}}

    def hnsw_parameters(self, _properties):
        return self.hnsw


@pytest.fixture
def as_is(monkeypatch):
    """as_engine(x) is x for the fakes."""
    import indexing.bulk
    import indexing.index

    monkeypatch.setattr(indexing.index, "as_engine", lambda e: e)
    monkeypatch.setattr(indexing.bulk, "as_engine", lambda e: e)


@pytest.mark.parametrize("failure", [None, RuntimeError("engine gone"), KeyboardInterrupt()])
def test_bulk_loading_restores_the_serving_settings_however_the_load_ends(as_is, failure):
    engine = FakeEngine()
    expected = pytest.raises(type(failure)) if failure else contextlib.nullcontext()
    with expected, bulk_loading(engine, "i", "1s"):
        assert (engine.interval, engine.durability) == ("-1", "async")
        if failure:
            raise failure
    assert (engine.interval, engine.durability) == ("1s", "request")
    assert engine.log[-1] == "refreshed"


def test_bulk_loading_keeps_request_durability_when_asked(as_is):
    engine = FakeEngine()
    with bulk_loading(engine, "i", "1s", "request"):
        assert (engine.interval, engine.durability) == ("-1", "request")
    with pytest.raises(ConfigError), bulk_loading(engine, "i", "1s", "sometimes"):
        pass


def test_a_crashed_loads_leftovers_are_not_restored(as_is):
    engine = FakeEngine(interval="-1", durability="async")
    with bulk_loading(engine, "i", "30s"):
        pass
    assert (engine.interval, engine.durability) == ("30s", "request")


@pytest.mark.parametrize("concurrency", [1, 2, 3])
def test_progress_counts_documents_only_after_a_flush(as_is, concurrency):
    engine = FakeEngine(flush_failures=1)
    done: list[tuple[int, int]] = []
    docs = ({"id": str(i)} for i in range(25))
    options = BulkOptions(
        chunk_size=5, checkpoint_docs=10, initial_backoff=0.0, concurrency=concurrency
    )
    report = bulk_index(
        engine, "i", docs, options, on_done=lambda n: done.append((n, engine.acknowledged))
    )
    # Every report follows a flush that covered exactly what was reported so far, all of it
    # acknowledged (the first flush was retried after a connection error); nothing is
    # reported before its flush.
    reported = list(itertools.accumulate(n for n, _ in done))
    assert reported == [acked for _, acked in done] == engine.flushes
    assert reported[-1] == report.indexed == 25
    assert all(n >= 10 for n, _ in done[:-1])


def test_rejects_of_concurrent_chunks_all_reach_the_file(as_is, tmp_path):
    docs = [{"id": f"bad-{i}" if i % 7 == 0 else str(i)} for i in range(40)]
    options = BulkOptions(chunk_size=5, concurrency=3, rejects_path=tmp_path / "r.jsonl")
    report = bulk_index(FakeEngine(), "i", docs, options)
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [f"bad-{i}" for i in range(0, 40, 7)]
    assert (report.indexed, report.failed, report.errors) == (
        34,
        6,
        {"mapper_parsing_exception": 6},
    )


def test_a_flush_that_never_succeeds_ends_the_load_with_one_line(as_is):
    engine = FakeEngine(flush_failures=100)
    options = BulkOptions(chunk_size=5, checkpoint_docs=5, max_retries=2, initial_backoff=0.0)
    with pytest.raises(EngineError) as caught:
        bulk_index(engine, "i", ({"id": str(i)} for i in range(10)), options)
    assert "FakeEngine at fake:1 stayed unreachable" in str(caught.value)
    assert "after 2 retries; documents reported written are kept" in str(caught.value)


def test_an_existing_index_keeps_its_graph_or_refuses_another():
    engine = FakeEngine(hnsw=(16, 128))
    meta = {"_properties": {}}  # an index made before the graph was recorded in _meta
    own = built_settings(engine, "i", meta, IndexSettings(check_graph=False))
    assert (own.m, own.ef_construction, own.graph["profile"]) == (16, 128, "legacy")
    with pytest.raises(DataError) as caught:
        built_settings(engine, "i", meta, IndexSettings(m=12))
    assert "was built with m 16, ef_construction 128 (profile legacy)" in str(caught.value)
    same = built_settings(engine, "i", meta, IndexSettings(profile="legacy"))
    assert (same.m, same.ef_construction) == (16, 128)


def test_the_orjson_serializer_writes_what_the_standard_one_does():
    serializer = orjson_serializer()
    doc = {"id": "img-1", "dense": [0.1, -2.5e-8, 1.0], "sparse": {"dög": 0.30000001192092896}}
    assert json.loads(serializer.dumps(doc)) == doc
    # The same numbers as the standard library's text (which may spell them differently).
    standard = json.loads(json.dumps(doc, ensure_ascii=False))
    assert json.loads(serializer.dumps(doc)) == standard
    vector = np.random.default_rng(0).standard_normal(256).astype(np.float32)
    assert np.array_equal(np.float32(json.loads(serializer.dumps({"v": vector}))["v"]), vector)
    assert serializer.dumps("already text") == "already text"
    assert json.loads(serializer.dumps({1: "a"})) == {"1": "a"}  # orjson refuses: the fallback
    assert serializer.loads('{"a": [1, 2.5]}') == {"a": [1, 2.5]}

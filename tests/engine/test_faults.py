"""Faults, each on a managed node of the test's own, of each engine: a SIGKILL in the middle of
an ingest, a write queue so small that the engine answers 429, and an engine that is gone."""

from __future__ import annotations

import pytest

from indexing.bulk import BulkOptions
from indexing.client import ConnectionOptions
from indexing.engine import connect_client as connect
from indexing.engine import engine_class
from indexing.ingest import IngestOptions, ingest
from indexing.layout import IndexSettings
from sparse_mm.checkpoint import load_model
from sparse_mm.demo import demo_model_dir
from sparse_mm.errors import EngineError
from tests.engine.local_nodes import local_nodes
from tests.engines import ENGINE_NAMES
from tools.crash import crash_scenario, synthetic_source

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.usefixtures("java")]


@pytest.fixture(scope="module")
def model():
    return load_model(demo_model_dir())


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_ingest_survives_a_sigkill_of_the_node(tmp_path, model, engine):
    source = synthetic_source(tmp_path / "corpus", 20_000)
    with local_nodes(1, engine=engine) as (node,):
        report = crash_scenario(node, model, source, engine=engine, kill_at=0.3)
    print(report)
    # The interrupted ingest ended with one engine-down error, not a traceback or a hang.
    assert "unreachable" in report.error and "Connection refused" in report.error
    assert "\n" not in report.error
    # Killed mid-ingest: some documents were durable, not all had been sent.
    assert 0 < report.survived_crash < 20_000
    # The load ran with async translog durability, but whatever the ingest had reported as
    # written (after a flush) survived the SIGKILL.
    assert report.reported_written > 0
    assert report.reported_lost == 0
    assert report.survived_crash >= report.reported_written
    # The re-run replaced what survived and added the rest; nothing lost, nothing twice.
    assert report.rerun_updated == report.survived_crash
    assert report.rerun_indexed == 20_000 - report.survived_crash
    v = report.verification
    assert (v.count, v.lost, v.duplicated, v.unexpected) == (20_000, 0, 0, 0)
    assert v.ids_checksum_match
    assert v.sampled == 200 and v.sample_mismatches == 0
    # The crash left refresh off on the index; the re-run restored the index's own interval.
    assert report.refresh_interval == "1s"


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_ingest_completes_through_429s_and_reports_the_retries(tmp_path, model, engine):
    source = synthetic_source(tmp_path / "corpus", 3_000)
    # One write thread with a queue of one (the same settings on both engines): a bulk request
    # fans out into one write task per shard, so a single client's requests to a 4-shard index
    # already overflow the queue.
    tiny_queue = {"thread_pool.write.size": 1, "thread_pool.write.queue_size": 1}
    with local_nodes(1, settings=tiny_queue, engine=engine) as (node,):
        node.start()
        options = ConnectionOptions(url=node.url, timeout=10.0, max_retries=0)
        client = connect(options, engine=engine)
        options = IngestOptions(
            index="pressure",
            settings=IndexSettings(shards=4),
            bulk=BulkOptions(chunk_size=250, max_retries=10, initial_backoff=0.05),
        )
        report = ingest(client, model, source, options, progress=False)
        client.indices.refresh(index="pressure")
        count = client.count(index="pressure")["count"]
        print(report.describe())
        assert report.bulk.retries > 0
        assert set(report.bulk.retry_reasons) == {"429"}
        assert f"retries {report.bulk.retries}" in report.describe()
        assert (report.bulk.indexed, report.bulk.failed, count) == (3_000, 0, 3_000)

        # The same engine, stopped: the next ingest fails at once with one line.
        node.stop()
        with pytest.raises(EngineError) as caught:
            ingest(client, model, source, options, progress=False)
    message = str(caught.value)
    assert f"{engine_class(engine).label} at 127.0.0.1:{node.port} is unreachable" in message
    assert "Connection refused" in message and "\n" not in message

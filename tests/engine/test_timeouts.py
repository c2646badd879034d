"""Client timeouts and the retry limit of `sparse-mm ingest`, against the real engine behind a
proxy that stalls bulk requests (an engine that accepts connections but does not answer)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from click.testing import CliRunner

from sparse_mm.cli import main
from tests.engine.proxy import forwarding_proxy
from tests.engines import each_engine  # noqa: F401  (every test here runs on both engines)

STALL_S = 3.0  # longer than the --timeout the tests pass


class StallBulk:
    """Stall the first `n` bulk requests (all of them when n is None); count every one."""

    def __init__(self, n: int | None = None) -> None:
        self.n, self.seen = n, 0
        self._lock = threading.Lock()

    def __call__(self, request):
        if "_bulk" not in request.path:
            return None
        with self._lock:
            self.seen += 1
            intercept = self.n is None or self.seen <= self.n
        return self.answer() if intercept else None

    def answer(self):
        time.sleep(STALL_S)
        return 503, b'{"error":"stalled by the test proxy"}'  # long after the client left


def ingest(engine, url, corpus, model, name, *extra):
    rejects = corpus.parent / f"{name}.jsonl"
    args = ["ingest", "--model", model.path, "--data", corpus, "--split", "test",
            "--index", name, "--engine", engine.name, "--url", url, "--rejects", rejects,
            *extra]  # fmt: skip
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def name(engine):
    index = f"test-timeouts-{uuid.uuid4().hex[:8]}"
    yield index
    engine.client.indices.delete(index=index, ignore_unavailable=True)


def test_a_hung_engine_ends_the_ingest_after_the_retry_limit(engine, corpus, trained_model, name):
    stall = StallBulk()
    with forwarding_proxy(engine.url, stall) as url:
        result = ingest(
            engine, url, corpus, trained_model, name, "--timeout", "1", "--retries", "2"
        )
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "timed out" in lines[0] and "after 2 retries" in lines[0], lines[0]
    assert "re-run the same ingest" in lines[0]
    # One first attempt and two retries of the first chunk, and no retries hidden underneath
    # (the client's own retries would have multiplied them).
    assert stall.seen == 3
    # Re-running against the engine itself completes the index.
    again = ingest(engine, engine.url, corpus, trained_model, name)
    assert again.exit_code == 0, again.output
    engine.client.indices.refresh(index=name)
    ids = engine.client.count(index=name)["count"]
    assert ids > 0 and f"indexed {ids}," in again.output


def test_timeouts_within_the_limit_are_retried_and_reported(engine, corpus, trained_model, name):
    stall = StallBulk(n=2)
    with forwarding_proxy(engine.url, stall) as url:
        result = ingest(
            engine, url, corpus, trained_model, name, "--timeout", "1", "--retries", "3"
        )
    assert result.exit_code == 0, result.output
    engine.client.indices.refresh(index=name)
    count = engine.client.count(index=name)["count"]
    # The first chunk was sent three times, so its documents were retried twice.
    chunk = min(count, 500)
    assert f"indexed {count}, updated 0, failed 0, retries {2 * chunk}," in result.output
    assert f"retried {2 * chunk} after timeout" in result.output


class Refuse429(StallBulk):
    """Answer the first `n` bulk requests at once with 429 (the engine's write queue is full)."""

    def answer(self):
        error = b'{"type":"es_rejected_execution_exception","reason":"queue full"}'
        return 429, b'{"error":' + error + b',"status":429}'


def test_429s_are_retried_with_backoff_and_reported(engine, corpus, trained_model, name):
    refuse = Refuse429(n=2)
    with forwarding_proxy(engine.url, refuse) as url:
        result = ingest(engine, url, corpus, trained_model, name, "--retries", "3")
    assert result.exit_code == 0, result.output
    engine.client.indices.refresh(index=name)
    count = engine.client.count(index=name)["count"]
    chunk = min(count, 500)
    assert f"indexed {count}, updated 0, failed 0, retries {2 * chunk}," in result.output
    assert f"retried {2 * chunk} after 429" in result.output
    assert refuse.seen >= 3

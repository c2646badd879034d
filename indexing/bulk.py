"""Bulk indexing with the official client's bulk helper, retrying only what failed.

Documents carry deterministic ids, so re-sending one is harmless (the engine reports it as
"updated"): that is what makes both the retries and re-running a whole ingest idempotent.
Documents go in chunks, `concurrency` chunks in flight at a time (two: one bulk request keeps
one of the engine's cores busy). Items of a chunk rejected with 429 (the write queue is full)
or a 5xx, and whole chunks lost to a connection error or a timeout, are re-sent with
exponential backoff before the chunk settles and the next is read, up to a retry limit; after it
the engine is declared down with one error. Retrying in place bounds memory by one chunk and
slows the producer down to the engine's pace (that is the backpressure), and an engine that
died mid-ingest stops the ingest within the retry budget instead of after the whole source has
been encoded. Items rejected for their content (4xx: a bad vector, a bad feature value) are not
retried but written with their reasons to a JSONL file.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from indexing.engine import as_engine
from sparse_mm.errors import ConfigError, EngineError

_RETRYABLE = {429, 500, 502, 503, 504}
KEPT = "documents reported written are kept, re-run the same ingest to complete it"


@dataclass(frozen=True)
class BulkOptions:
    chunk_size: int = 500
    max_chunk_bytes: int = 20 * 1024 * 1024
    # Re-sends of one chunk's failed items. With the backoff below the engine must stay down
    # for about 25 s before an ingest gives up.
    max_retries: int = 6
    initial_backoff: float = 0.5  # seconds, doubled per retry, capped at max_backoff
    max_backoff: float = 10.0
    request_timeout: float | None = None  # seconds per bulk request; None: the client's
    rejects_path: Path | None = None
    # Documents between flushes. The index loads with async translog durability
    # (indexing.index.bulk_loading), so an acknowledged document is durable only after the
    # next flush: progress (`on_done`) counts documents only once one has covered them. Each
    # flush also ends the segment being built, so its HNSW graph stays small: at 1M documents
    # every 20,000 gave 1,977 docs/s and every 100,000 1,603 (engine indexing time 828 s vs
    # 1,074 s; bench/results/lsr30k_1m and lsr30k_1m_checkpoint100k). A crash re-sends at most
    # this many documents.
    checkpoint_docs: int = 20_000
    # Bulk requests in flight at once. One request to a shard is indexed by one write thread,
    # so one at a time leaves a 2-core engine half idle (the HNSW graph build is CPU-bound).
    concurrency: int = 2

    def __post_init__(self) -> None:
        for name in ("checkpoint_docs", "concurrency"):
            if getattr(self, name) < 1:
                raise ConfigError(f"bulk {name} must be >= 1, got {getattr(self, name)}")


@dataclass
class BulkReport:
    indexed: int = 0  # created
    updated: int = 0  # already present, replaced by the same document
    failed: int = 0  # rejected for good (see rejects_path)
    retries: int = 0  # item re-submissions after a 429/5xx/connection error
    seconds: float = 0.0
    rejects_path: str | None = None
    errors: dict[str, int] = field(default_factory=dict)  # reason type -> count
    retry_reasons: dict[str, int] = field(default_factory=dict)  # status -> retried items

    def merge(self, part: BulkReport) -> None:
        """Add the counts of `part` (one chunk's report) to this one."""
        self.indexed += part.indexed
        self.updated += part.updated
        self.failed += part.failed
        self.retries += part.retries
        for mine, theirs in ((self.errors, part.errors), (self.retry_reasons, part.retry_reasons)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n

    @property
    def docs_per_s(self) -> float:
        return (self.indexed + self.updated) / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        text = (
            f"indexed {self.indexed}, updated {self.updated}, failed {self.failed}, "
            f"retries {self.retries}, {self.seconds:.1f}s ({self.docs_per_s:,.0f} docs/s)"
        )
        if self.retry_reasons:
            parts = ", ".join(f"{n} after {s}" for s, n in sorted(self.retry_reasons.items()))
            text += f"; retried {parts}"
        if self.failed:
            text += f"; rejected documents and reasons in {self.rejects_path}"
        return text


def bulk_index(
    client,
    index: str,
    documents: Iterable[dict],
    options: BulkOptions | None = None,
    *,
    on_done: Callable[[int], None] = lambda _n: None,
) -> BulkReport:
    """Index `documents` (each a dict with an "id" key) into `index`; never raises for item
    rejections (they are counted and written out) but raises EngineError when the engine stays
    unreachable or keeps refusing after the retry limit.

    `on_done(n)` reports documents settled for good: rejected, or written and then flushed
    (every `options.checkpoint_docs` documents and at the end), so that what it reported
    survives a crash of the engine even under async translog durability. Every chunk before
    the failing one has been acknowledged; re-running the same ingest completes the index."""
    options = options or BulkOptions()
    report = BulkReport(rejects_path=str(options.rejects_path) if options.rejects_path else None)
    began = time.monotonic()
    rejects = options.rejects_path.open("w") if options.rejects_path else None
    pending = 0
    in_flight: deque[Future] = deque()

    def settle(future: Future) -> None:
        """Merge one chunk's outcome (its own report and rejects) into the whole's."""
        nonlocal pending
        part, lines = future.result()
        pending += part.indexed + part.updated + part.failed
        report.merge(part)
        if rejects:
            rejects.writelines(lines.lines)

    def send(actions: list[dict]) -> tuple[BulkReport, _Lines]:
        part, lines = BulkReport(), _Lines()
        _send_with_retries(engine, actions, options, part, lines, lambda _n: None)
        return part, lines

    pool = ThreadPoolExecutor(options.concurrency, thread_name_prefix="sparse-mm-bulk")
    try:
        engine = as_engine(client).without_retries()
        docs = iter(documents)

        def written_so_far() -> None:
            """The source failed (bad input) or the user pressed Ctrl-C: settle and flush what
            was sent, so the caller's count of written documents is what the index holds. An
            engine error meanwhile leaves the count short (never over) and the source's error
            (or the interrupt) is the one raised."""
            nonlocal pending
            with contextlib.suppress(EngineError):
                _checkpoint(engine, index, options, in_flight, settle)
                if pending:
                    on_done(pending)
                    pending = 0

        try:
            while chunk := _next_chunk(docs, options.chunk_size, written_so_far):
                actions = [d if "_index" in d else _action(index, d) for d in chunk]
                in_flight.append(pool.submit(send, actions))
                if len(in_flight) >= options.concurrency:
                    settle(in_flight.popleft())  # the oldest: chunks settle in source order
                if pending >= options.checkpoint_docs:
                    _checkpoint(engine, index, options, in_flight, settle)
                    on_done(pending)
                    pending = 0
        except KeyboardInterrupt:  # Ctrl-C: the caller's count is then what the index holds
            written_so_far()
            raise
        _checkpoint(engine, index, options, in_flight, settle)
        if pending:
            on_done(pending)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if rejects:
            rejects.close()
        report.seconds = time.monotonic() - began
    return report


def _next_chunk(docs: Iterator[dict], size: int, on_source_error: Callable[[], None]) -> list:
    try:
        return list(islice(docs, size))
    except Exception:
        on_source_error()
        raise


class _Lines:
    """A chunk's rejects lines, written to the rejects file when the chunk settles."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, line: str) -> None:
        self.lines.append(line)


def _checkpoint(engine, index: str, options: BulkOptions, in_flight: deque, settle) -> None:
    """Every chunk sent so far acknowledged, then a flush: what they wrote is durable."""
    while in_flight:
        settle(in_flight.popleft())
    _flush_with_retries(engine, index, options)


def _flush_with_retries(engine, index: str, options: BulkOptions) -> None:
    """A flush of `index` (indexing.engine.Engine.flush), retried like a bulk request when the
    engine does not answer; the same one-line error when it stays unreachable."""
    backoff = options.initial_backoff
    for attempt in range(options.max_retries + 1):
        if attempt:
            time.sleep(backoff)
            backoff = min(backoff * 2, options.max_backoff)
        try:
            engine.flush(index)
            return
        except engine.connection_errors as exc:
            last = exc
    raise EngineError(
        f"{engine.label} at {engine.address()} stayed unreachable ({connection_failure(last)}) "
        f"after {options.max_retries} retries; {KEPT}"
    )


def _without_client_retries(client):
    """`client` with its own retries off, for bulk requests: they would multiply with this
    module's (a hung engine would cost (client retries + 1) x timeout per attempt), and they
    re-send without backoff. The caller's client, maybe in use by other threads, is left alone
    (the adapter's `without_retries`)."""
    return as_engine(client).without_retries().client


def _send_with_retries(engine, actions, options, report, rejects, on_done) -> None:
    backoff = options.initial_backoff
    for attempt in range(options.max_retries + 1):
        if attempt:
            time.sleep(backoff)
            backoff = min(backoff * 2, options.max_backoff)
            report.retries += len(actions)
        failed = list(_send(engine, actions, options, report, rejects, on_done))
        if not failed:
            return
        for outcome in failed:
            key = _retry_reason(outcome)
            report.retry_reasons[key] = report.retry_reasons.get(key, 0) + 1
        by_id = {a["_id"]: a for a in actions}
        actions = [by_id[o["_id"]] for o in failed]
    status = failed[0].get("status")
    what = (
        f"kept refusing documents (status {status}: {_reason(failed[0])})"
        if isinstance(status, int)
        else f"at {engine.address()} stayed unreachable ({_reason(failed[0])})"
    )
    raise EngineError(f"{engine.label} {what} after {options.max_retries} retries; {KEPT}")


def _send(engine, actions, options, report, rejects, on_done) -> Iterator[dict]:
    """One bulk round for `actions`; counts and writes out what is settled, yields the
    outcomes of the items worth retrying."""
    results = engine.bulk(
        actions, max_chunk_bytes=options.max_chunk_bytes, request_timeout=options.request_timeout
    )
    for ok, item in results:
        outcome = next(iter(item.values()))
        if ok:
            if outcome.get("result") == "updated":
                report.updated += 1
            else:
                report.indexed += 1
            on_done(1)
            continue
        status = outcome.get("status")
        if status in _RETRYABLE or not isinstance(status, int):  # N/A: no connection
            yield outcome
            continue
        report.failed += 1
        kind = (outcome.get("error") or {}).get("type", str(status))
        report.errors[kind] = report.errors.get(kind, 0) + 1
        if rejects:
            rejects.write(
                json.dumps({"id": outcome["_id"], "status": status, "reason": _reason(outcome)})
                + "\n"
            )
        on_done(1)


def client_address(client) -> str:
    return as_engine(client).address()


def _retry_reason(outcome: dict) -> str:
    """Why an item is re-sent, for the report: its status, or what became of the request."""
    status = outcome.get("status")
    if isinstance(status, int):
        return str(status)
    return "timeout" if "timed out" in _reason(outcome) else "connection error"


def _action(index: str, doc: dict) -> dict:
    return {"_op_type": "index", "_index": index, "_id": doc["id"], "_source": doc}


def _reason(outcome: dict) -> str:
    error = outcome.get("error")
    if isinstance(error, dict):
        caused = error.get("caused_by", {}).get("reason")
        return f"{error.get('type')}: {error.get('reason')}" + (f" ({caused})" if caused else "")
    exception = outcome.get("exception")
    if exception is not None:
        return connection_failure(exception)
    return str(error or "unknown")


def connection_failure(exc: BaseException) -> str:
    """A request that failed as a whole, in a few words (not urllib3's whole chain)."""
    # elastic_transport's errors say only "Connection error"; the reason is in their cause
    parts, cause = [], exc
    while cause is not None and len(parts) < 8:
        parts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    text = " ".join(parts)
    errno = re.search(r"\[Errno -?\d+\] [\w ,.-]+", text)
    detail = errno.group(0) if errno else ("timed out" if "timed out" in text else text[:120])
    return f"{type(exc).__name__}: {detail.strip()}"

"""Bulk indexing with the official client's streaming bulk, retrying only what failed.

Documents carry deterministic ids, so re-sending one is harmless (the engine reports it as
"updated"): that is what makes both the retries and re-running a whole ingest idempotent.
Items rejected with 429 (the write queue is full) or a 5xx, and whole chunks lost to a
connection error or a timeout, are retried with exponential backoff, up to a limit; items
rejected for their content (4xx: a bad vector, a bad feature value) are not retried but written
with their reasons to a JSONL file. Memory stays bounded: at most one chunk is in flight, plus
the failed items waiting for their retry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sparse_mm.errors import EngineError

_RETRYABLE = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class BulkOptions:
    chunk_size: int = 500
    max_chunk_bytes: int = 20 * 1024 * 1024
    max_retries: int = 8  # per document
    initial_backoff: float = 0.5  # seconds, doubled per round, capped at max_backoff
    max_backoff: float = 30.0
    rejects_path: Path | None = None


@dataclass
class BulkReport:
    indexed: int = 0  # created
    updated: int = 0  # already present, replaced by the same document
    failed: int = 0  # rejected for good (see rejects_path)
    retries: int = 0  # item re-submissions after a 429/5xx/connection error
    seconds: float = 0.0
    rejects_path: str | None = None
    errors: dict[str, int] = field(default_factory=dict)  # reason type -> count

    @property
    def docs_per_s(self) -> float:
        return (self.indexed + self.updated) / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        text = (
            f"indexed {self.indexed}, updated {self.updated}, failed {self.failed}, "
            f"retries {self.retries}, {self.seconds:.1f}s ({self.docs_per_s:,.0f} docs/s)"
        )
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
    unreachable or keeps refusing after the retry limit."""
    options = options or BulkOptions()
    report = BulkReport(rejects_path=str(options.rejects_path) if options.rejects_path else None)
    began = time.monotonic()
    rejects = options.rejects_path.open("w") if options.rejects_path else None
    try:
        retry: list[tuple[dict, int]] = []  # (action, attempts so far)
        for failed in _stream(
            client, index, ((d, 0) for d in documents), options, report, rejects, on_done
        ):
            retry.append(failed)
        backoff = options.initial_backoff
        while retry:
            time.sleep(backoff)
            backoff = min(backoff * 2, options.max_backoff)
            report.retries += len(retry)
            batch, retry = retry, []
            retry.extend(_stream(client, index, iter(batch), options, report, rejects, on_done))
    finally:
        if rejects:
            rejects.close()
        report.seconds = time.monotonic() - began
    return report


def _stream(
    client,
    index,
    items: Iterator[tuple[dict, int]],
    options: BulkOptions,
    report: BulkReport,
    rejects,
    on_done,
) -> Iterator[tuple[dict, int]]:
    """One pass of streaming bulk; yields the (action, attempts) pairs to retry."""
    from opensearchpy.helpers import streaming_bulk

    in_flight: dict[str, tuple[dict, int]] = {}

    def actions() -> Iterator[dict]:
        for doc, attempts in items:
            action = doc if "_index" in doc else _action(index, doc)
            in_flight[action["_id"]] = (action, attempts)
            yield action

    results = streaming_bulk(
        client,
        actions(),
        chunk_size=options.chunk_size,
        max_chunk_bytes=options.max_chunk_bytes,
        max_retries=0,
        raise_on_error=False,
        raise_on_exception=False,
        yield_ok=True,
    )
    for ok, item in results:
        outcome = next(iter(item.values()))
        action, attempts = in_flight.pop(outcome["_id"])
        if ok:
            if outcome.get("result") == "updated":
                report.updated += 1
            else:
                report.indexed += 1
            on_done(1)
            continue
        status = outcome.get("status")
        retryable = status in _RETRYABLE or not isinstance(status, int)  # N/A: no connection
        if retryable and attempts < options.max_retries:
            yield action, attempts + 1
            continue
        if retryable:
            what = (
                f"kept refusing documents (status {status}: {_reason(outcome)})"
                if isinstance(status, int)
                else f"stayed unreachable ({_reason(outcome)[:200]})"
            )
            raise EngineError(
                f"OpenSearch {what} after {options.max_retries} retries; "
                "acknowledged documents are kept, re-run the same ingest to complete it"
            )
        report.failed += 1
        kind = (outcome.get("error") or {}).get("type", str(status))
        report.errors[kind] = report.errors.get(kind, 0) + 1
        if rejects:
            rejects.write(
                json.dumps({"id": action["_id"], "status": status, "reason": _reason(outcome)})
                + "\n"
            )
        on_done(1)


def _action(index: str, doc: dict) -> dict:
    return {"_op_type": "index", "_index": index, "_id": doc["id"], "_source": doc}


def _reason(outcome: dict) -> str:
    error = outcome.get("error")
    if isinstance(error, dict):
        caused = error.get("caused_by", {}).get("reason")
        return f"{error.get('type')}: {error.get('reason')}" + (f" ({caused})" if caused else "")
    return str(error or outcome.get("exception") or "unknown")

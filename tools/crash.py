"""Ingest survives a node crash: `python -m tools.crash --images 200000 [--port 9240]`.

The scenario, on a managed node of its own: ingest a synthetic corpus; once the node has
indexed `--kill-at` of it, SIGKILL the node (no flush, no clean shutdown); the ingest must stop
with one EngineError within its retry budget; restart the node, run the same ingest again, and
check that the index holds exactly the source's documents: the count, no id twice, no id that
is not in the source, a SHA-256 over the sorted ids, and a sample of stored dense vectors and
term weights compared bit for bit with what the model produces for those images. Prints (and
with `--json` writes) the figures: documents lost, duplicated, retries, times.
tests/engine/test_faults.py runs the same scenario at 20k images.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from indexing.bulk import BulkOptions
from indexing.client import ConnectionOptions
from indexing.documents import DocumentBuilder
from indexing.engine import as_engine, connect_client
from indexing.ingest import IngestOptions, IngestSource, ingest
from indexing.local_node import LocalNode
from indexing.registry import DEFAULT_ENGINE
from sparse_mm.errors import EngineError


@dataclass
class Verification:
    expected: int
    count: int
    lost: int  # source ids missing from the index
    duplicated: int  # index hits beyond one per id
    unexpected: int  # ids in the index that the source does not have
    ids_checksum_match: bool
    sampled: int
    sample_mismatches: int  # sampled documents whose stored vectors/weights differ

    @property
    def exact(self) -> bool:
        return (
            self.count == self.expected
            and self.lost == self.duplicated == self.unexpected == self.sample_mismatches == 0
            and self.ids_checksum_match
        )


@dataclass
class CrashReport:
    images: int
    indexed_when_killed: int  # index operations the node had done (its own stats)
    reported_written: int  # documents the interrupted ingest reported written (after a flush)
    reported_lost: int  # of those, missing after the restart: must be 0
    error: str  # what the interrupted ingest raised
    seconds_to_error: float  # from the SIGKILL to that error
    restart_seconds: float
    survived_crash: int  # documents in the index after the restart, before the re-run
    rerun_indexed: int
    rerun_updated: int
    rerun_retries: int
    rerun_seconds: float
    refresh_interval: str | None  # after the re-run: the index's own, not -1
    verification: Verification


def _client(url: str, engine: str, *, timeout: float):
    """No transport-level retries: bulk_index owns the retry policy, and must bound it."""
    options = ConnectionOptions(url=url, timeout=timeout, max_retries=0)
    return connect_client(options, engine=engine)


def crash_scenario(
    node: LocalNode,
    model,
    source: IngestSource,
    *,
    engine: str = DEFAULT_ENGINE,
    index: str = "crash",
    kill_at: float = 0.3,
    sample: int = 200,
    log: Callable[[str], None] = lambda _m: None,
) -> CrashReport:
    """Run the scenario on `node`, a managed node of `engine` (started here if needed; left
    running)."""
    node.start(progress=log)
    client = _client(node.url, engine, timeout=10.0)
    client.indices.delete(index=index, ignore_unavailable=True)
    # Checkpoints (flushes) often enough that some come before the kill: the ingest loads
    # with async translog durability and reports documents written only after one.
    bulk = BulkOptions(
        max_retries=4,
        initial_backoff=0.2,
        max_backoff=2.0,
        request_timeout=10,
        checkpoint_docs=max(1_000, len(source.ids) // 20),
    )
    options = IngestOptions(index=index, bulk=bulk)
    reported: list[int] = []
    threshold = max(1, int(kill_at * len(source.ids)))
    killer = _Killer(node, threshold)
    killer.start()
    log(f"ingesting {len(source.ids):,} images; SIGKILL once the node has indexed {threshold:,}")
    try:
        ingest(client, model, source, options, progress=False, on_written=reported.append)
    except EngineError as exc:
        error, failed_at = str(exc), time.monotonic()
    else:
        killer.cancel()
        raise RuntimeError("the ingest finished before the node was killed; lower --kill-at")
    finally:
        killer.join()
    if killer.killed_at is None:
        raise RuntimeError(f"the ingest failed without a crash: {error}")
    log(f"node killed at {killer.indexed:,} indexed; ingest stopped: {error}")

    began = time.monotonic()
    node.start(progress=log)
    as_engine(client).wait_for_health(index, "green", seconds=60.0)
    restart = time.monotonic() - began
    client.indices.refresh(index=index)
    survived = client.count(index=index)["count"]
    written = sum(reported)  # documents are written in the source's order
    reported_lost = len(set(source.ids[:written]) - set(_all_ids(client, index)))
    log(
        f"restarted in {restart:.1f}s; {survived:,} documents survived the crash; "
        f"{reported_lost} of the {written:,} reported written are missing"
    )

    rerun = ingest(client, model, source, options, progress=False)
    log(f"re-run: {rerun.bulk.describe()}")
    settings = client.indices.get_settings(index=index, name="index.refresh_interval")
    refresh = next(iter(settings.values()))["settings"].get("index", {}).get("refresh_interval")
    verification = verify_index(client, index, model, source, options.batch_size, sample)
    return CrashReport(
        images=len(source.ids),
        indexed_when_killed=killer.indexed,
        reported_written=written,
        reported_lost=reported_lost,
        error=error,
        seconds_to_error=failed_at - killer.killed_at,
        restart_seconds=restart,
        survived_crash=survived,
        rerun_indexed=rerun.bulk.indexed,
        rerun_updated=rerun.bulk.updated,
        rerun_retries=rerun.bulk.retries,
        rerun_seconds=rerun.bulk.seconds,
        refresh_interval=refresh,
        verification=verification,
    )


class _Killer(threading.Thread):
    """Watches the node's own indexing counter and SIGKILLs it past `threshold`."""

    def __init__(self, node: LocalNode, threshold: int) -> None:
        super().__init__(daemon=True)
        self.node, self.threshold = node, threshold
        self.indexed = 0
        self.killed_at: float | None = None
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def run(self) -> None:
        url = f"{self.node.url}/_nodes/_local/stats/indices/indexing"
        while not self._cancelled.wait(0.05):
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    stats = json.loads(response.read())
            except OSError:
                continue
            node = next(iter(stats["nodes"].values()))
            self.indexed = node["indices"]["indexing"]["index_total"]
            if self.indexed >= self.threshold:
                self.node.kill()
                self.killed_at = time.monotonic()
                return


def verify_index(
    client, index: str, model, source: IngestSource, batch_size: int, sample: int, seed: int = 0
) -> Verification:
    """Compare the index with the source: ids exactly once each, and a sample of documents
    bit for bit. The sample is drawn from two encode batches aligned as ingest aligns them, so
    that the expected vectors come from the same matrix shapes as the stored ones."""
    client.indices.refresh(index=index)
    count = client.count(index=index)["count"]
    hits = _all_ids(client, index)
    found, wanted = set(hits), set(source.ids)
    digest = lambda ids: hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()  # noqa: E731

    rng = np.random.default_rng(seed)
    n_batches = (len(source.ids) + batch_size - 1) // batch_size
    builder = DocumentBuilder(model.vocab.tokens)
    mismatches = sampled = 0
    for b in rng.choice(n_batches, size=min(2, n_batches), replace=False):
        start = int(b) * batch_size
        stop = min(start + batch_size, len(source.ids))
        encoded = model.heads.encode(source.emb[start:stop], "image")
        docs = list(builder.build(source.ids[start:stop], encoded.dense, encoded.sparse))
        picks = rng.choice(len(docs), size=min(sample // 2, len(docs)), replace=False)
        expected = {docs[i]["id"]: docs[i] for i in picks}
        # A search, not _mget: _mget of these documents fails inside the k-NN plugin's
        # derived source ("already_closed_exception" on the vectors file, OpenSearch 3.4.0).
        body = {"query": {"ids": {"values": list(expected)}}, "size": len(expected)}
        for doc in client.search(index=index, body=body)["hits"]["hits"]:
            want = expected[doc["_id"]]
            got = doc["_source"]
            sampled += 1
            mismatches += not _same_document(got, want)
    return Verification(
        expected=len(source.ids),
        count=count,
        lost=len(wanted - found),
        duplicated=len(hits) - len(found),
        unexpected=len(found - wanted),
        ids_checksum_match=digest(found) == digest(wanted) and len(hits) == len(found),
        sampled=sampled,
        sample_mismatches=mismatches,
    )


def _all_ids(client, index: str, page: int = 5000) -> list[str]:
    """Every hit's _id, paged with search_after. Not a scroll: on OpenSearch 3.4.0 clearing a
    scroll over this index leaves every later search of the shard failing (503, all shards
    failed); seen with the k-NN plugin's derived source. `_doc` breaks ties, so that two hits
    with the same id (a duplicate) cannot hide each other at a page boundary."""
    ids: list[str] = []
    body: dict = {"query": {"match_all": {}}, "sort": [{"id": "asc"}, {"_doc": "asc"}]}
    body.update(size=page, _source=False)
    while hits := client.search(index=index, body=body)["hits"]["hits"]:
        ids.extend(h["_id"] for h in hits)
        body["search_after"] = hits[-1]["sort"]
    return ids


def _same_document(stored: dict, expected: dict) -> bool:
    """Term weights come back as sent; the k-NN plugin rebuilds `dense` from its float32
    vector values (derived source), so it is compared as float32, still exactly."""
    dense = stored.get("dense")
    return (
        dense is not None
        and np.array_equal(np.float32(dense), np.float32(expected["dense"]))
        and stored.get("sparse") == expected["sparse"]
    )


def synthetic_source(out: Path, images: int, seed: int = 5) -> IngestSource:
    """All images of a synthetic corpus (one caption each: captions are not indexed)."""
    from sparse_mm.data import image_file, load_embeddings
    from sparse_mm.synth import BACKBONE, SynthParams, synthesize

    if not image_file(out, BACKBONE).exists():
        synthesize(out, SynthParams(seed=seed, n_images=images, captions_per_image=1))
    table = load_embeddings(image_file(out, BACKBONE))
    if len(table) != images:
        raise SystemExit(f"{out} holds {len(table)} images, not {images}; use another --data")
    return IngestSource(table.ids, table.emb, None, f"{out} ({images} images)")


def main(argv: list[str] | None = None) -> None:
    from indexing.registry import engine_spec
    from sparse_mm.checkpoint import load_model
    from sparse_mm.demo import demo_model_dir
    from sparse_mm.provenance import data_record, engine_record, provenance, write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200_000)
    parser.add_argument("--data", type=Path, help="corpus folder (made here if absent)")
    parser.add_argument("--port", type=int, default=9240)
    parser.add_argument("--heap", default="1g")
    parser.add_argument("--kill-at", type=float, default=0.3, help="fraction indexed at the kill")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    data = args.data or Path(tempfile.mkdtemp(prefix="sparse-mm-crash-"))
    began = time.monotonic()
    source = synthetic_source(data, args.images)
    print(f"corpus of {args.images:,} images in {data} ({time.monotonic() - began:.0f}s)")
    node = engine_spec(DEFAULT_ENGINE).node_class()(port=args.port, heap=args.heap)
    try:
        report = crash_scenario(
            node, load_model(demo_model_dir()), source, kill_at=args.kill_at, log=print
        )
    finally:
        print(node.stop())
    figures = asdict(report)
    print(json.dumps(figures, indent=2))
    if args.json:
        engine = {"name": DEFAULT_ENGINE, "version": node.version, "heap": args.heap}
        record = provenance(
            argv,
            prog="python -m tools.crash",
            model=demo_model_dir(),
            data=data_record(data),
            engine=engine_record(engine),
        )
        write_json({**record, **figures}, args.json)
    v = report.verification
    print(
        f"documents lost {v.lost}, duplicated {v.duplicated}, unexpected {v.unexpected}, "
        f"sample mismatches {v.sample_mismatches}/{v.sampled}: "
        + ("EXACT" if v.exact else "NOT EXACT")
    )
    print(f"reported written {report.reported_written:,}, of them lost {report.reported_lost}")
    if not v.exact or report.reported_lost:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

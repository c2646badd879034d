"""Managed nodes that a fault test starts, owns and always stops (ports 9240-9259)."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

from indexing.local_node import LocalNode
from indexing.opensearch.node import MIN_JAVA
from sparse_mm.errors import EngineError
from tests.engines import managed_node

PORTS = range(9240, 9260)  # kept apart from the shared nodes on 9200 and 9230
HEAP = "512m"


def _free(port: int) -> bool:
    for p in (port, port + 100):  # HTTP and transport
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", p))
            except OSError:
                return False
    return True


def require_java() -> None:
    """Fail the calling test with one line, not a trace, when no Java runtime recent enough for
    OpenSearch is found: tests that start their own nodes need Java 21+ whatever engine the
    session uses."""
    from indexing.jdk import find_jdk

    try:
        find_jdk(MIN_JAVA)
        return
    except EngineError as exc:
        reason = str(exc)
    # outside the except block, so that pytest shows no chained exception: one line only
    pytest.fail(
        f"this test starts its own OpenSearch node, which needs Java {MIN_JAVA}+: {reason}",
        pytrace=False,
    )


def free_ports(n: int, among: range = PORTS) -> list[int]:
    """`n` consecutive free ports of `among` (transport ports too)."""
    for first in among:
        ports = list(range(first, first + n))
        if ports[-1] in among and all(_free(p) for p in ports):
            return ports
    raise RuntimeError(f"no {n} free ports in {among}")


@contextmanager
def local_nodes(
    count: int = 1,
    *,
    settings: dict | None = None,
    cluster: bool = False,
    engine: str = "opensearch",
) -> Iterator[Sequence[LocalNode]]:
    """`count` nodes of `engine` (not started), one cluster when `cluster` (OpenSearch only);
    stopped and their folders removed afterwards, whatever happened."""
    if engine != "opensearch" and (cluster or count != 1):
        raise ValueError(f"local {engine} test nodes are single-node")
    ports = free_ports(count)
    options = {"heap": HEAP, "settings": settings, "cluster_name": f"sparse-mm-test-{ports[0]}"}
    if engine == "opensearch":
        options["seed_ports"] = ports if cluster else ()
    nodes = [managed_node(engine, p, **options) for p in ports]
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()
            shutil.rmtree(node.node_dir, ignore_errors=True)

"""Finding an OpenSearch for the test session: the first that works of
`OPENSEARCH_URL`, testcontainers (only when a Docker engine answers), the managed local node."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from indexing.client import ConnectionOptions, connect
from sparse_mm.errors import EngineError

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


@dataclass
class Engine:
    url: str
    source: str  # "OPENSEARCH_URL", "testcontainers" or "managed node"
    client: object


def compose_image(path: Path = COMPOSE_FILE) -> str:
    return yaml.safe_load(path.read_text())["services"]["opensearch"]["image"]


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # no SDK, no socket, no daemon: all mean "no Docker engine here"
        return False


@contextlib.contextmanager
def _from_url(url: str) -> Iterator[Engine]:
    yield Engine(url, "OPENSEARCH_URL", connect(ConnectionOptions(url=url)))


@contextlib.contextmanager
def _from_testcontainers() -> Iterator[Engine]:
    from testcontainers.opensearch import OpenSearchContainer

    with OpenSearchContainer(compose_image(), security_enabled=False) as container:
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(9200)}"
        yield Engine(url, "testcontainers", connect(ConnectionOptions(url=url)))


@contextlib.contextmanager
def _from_managed_node() -> Iterator[Engine]:
    from indexing.node import ManagedNode

    node = ManagedNode(port=int(os.environ.get("SPARSE_MM_TEST_PORT", "9200")))
    status = node.start()
    try:
        yield Engine(status.url, "managed node", connect(ConnectionOptions(url=status.url)))
    finally:
        if not status.reused:  # leave a node we did not start alone
            node.stop()


@contextlib.contextmanager
def find_engine() -> Iterator[Engine]:
    """Yield the first engine that works; raise EngineError naming every attempt otherwise."""
    attempts = []
    if os.environ.get("OPENSEARCH_URL"):
        candidates = [("OPENSEARCH_URL", lambda: _from_url(os.environ["OPENSEARCH_URL"]))]
    else:
        candidates = []
        if _docker_answers():
            candidates.append(("testcontainers", _from_testcontainers))
        candidates.append(("managed node", _from_managed_node))
    for name, make in candidates:
        try:
            manager = make()
            engine = manager.__enter__()
        except Exception as exc:
            attempts.append(f"{name}: {exc}")
            continue
        try:
            yield engine
        finally:
            manager.__exit__(None, None, None)
        return
    raise EngineError("no OpenSearch for the tests (" + "; ".join(attempts) + ")")

"""The OpenSearch a test session runs against, as `indexing.engine_choice` decides it.

An explicit choice (`SPARSE_MM_ENGINE=url|docker|managed`, or `OPENSEARCH_URL`) is honoured or
the session fails with one line; nothing falls back silently to another engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from indexing.client import ConnectionOptions, connect
from indexing.engine_choice import EngineChoice, choose_from_environment, port_from

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


@dataclass
class Engine:
    url: str
    kind: str  # "url", "docker" or "managed"
    reason: str  # why this engine (from the choice)
    version: str
    client: object

    def describe(self) -> str:
        return f"OpenSearch {self.version}, {self.kind} at {self.url} ({self.reason})"


def compose_image(path: Path = COMPOSE_FILE) -> str:
    return yaml.safe_load(path.read_text())["services"]["opensearch"]["image"]


def _engine(choice: EngineChoice, url: str) -> Engine:
    client = connect(ConnectionOptions(url=url))
    version = client.info()["version"]["number"]
    return Engine(url, choice.kind, choice.reason, version, client)


@contextlib.contextmanager
def _from_testcontainers(choice: EngineChoice) -> Iterator[Engine]:
    from testcontainers.community.opensearch import OpenSearchContainer

    with OpenSearchContainer(compose_image(), security_enabled=False) as container:
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(9200)}"
        yield _engine(choice, url)


@contextlib.contextmanager
def _from_managed_node(choice: EngineChoice) -> Iterator[Engine]:
    import os

    from indexing.node import ManagedNode

    node = ManagedNode(port=port_from(os.environ))
    status = node.start()
    try:
        yield _engine(choice, status.url)
    finally:
        if not status.reused:  # leave a node we did not start alone
            node.stop()


@contextlib.contextmanager
def start_engine(choice: EngineChoice | None = None) -> Iterator[Engine]:
    """Yield the chosen engine, started if it has to be; raise (EngineError and others) when
    the choice cannot be honoured."""
    choice = choice or choose_from_environment()
    if choice.kind == "url":
        yield _engine(choice, choice.url)
    elif choice.kind == "docker":
        with _from_testcontainers(choice) as engine:
            yield engine
    else:
        with _from_managed_node(choice) as engine:
            yield engine

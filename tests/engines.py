"""The engines a test session runs against (OpenSearch, and Elasticsearch for the tests shared
by both), as `indexing.engine_choice` decides them.

An explicit choice (`SPARSE_MM_ENGINE=url|docker|managed`, or `OPENSEARCH_URL` /
`ELASTICSEARCH_URL`) is honoured or the session fails with one line; nothing falls back
silently to another engine.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from indexing.client import ConnectionOptions
from indexing.engine import connect
from indexing.engine_choice import EngineChoice, choose_from_environment
from indexing.registry import DEFAULT_ENGINE, engine_names, engine_spec, port_from
from tests.containers import container_for

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yml"
ENGINE_NAMES = engine_names()  # the registry's (indexing/registry.py)


@dataclass
class Engine:
    url: str
    kind: str  # "url", "docker" or "managed"
    reason: str  # why this engine (from the choice)
    version: str
    client: object  # the engine's official client
    name: str = DEFAULT_ENGINE  # as on the command line (--engine)
    image: str | None = None  # the container's image (kind "docker")

    @property
    def label(self) -> str:
        return engine_spec(self.name).label

    def describe(self) -> str:
        image = f" image {self.image}" if self.image else ""
        return f"{self.label} {self.version}, {self.kind} at {self.url}{image} ({self.reason})"


def compose_image(path: Path = COMPOSE_FILE, service: str = DEFAULT_ENGINE) -> str:
    """The image a service names, its variable's default when it names one
    (`${SPARSE_MM_OPENSEARCH_IMAGE:-opensearchproject/opensearch:3.4.0}`)."""
    image = yaml.safe_load(path.read_text())["services"][service]["image"]
    match = re.fullmatch(r"\$\{(\w+):-([^}]+)\}", image)
    return match.group(2) if match else image


def _engine(choice: EngineChoice, url: str, name: str) -> Engine:
    adapter = connect(ConnectionOptions(url=url), engine=name)
    return Engine(
        url, choice.kind, choice.reason, adapter.version(), adapter.client, name, choice.image
    )


@contextlib.contextmanager
def _from_testcontainers(choice: EngineChoice, name: str) -> Iterator[Engine]:
    with container_for(name) as container:
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(9200)}"
        yield _engine(choice, url, name)


def managed_node(name: str, port: int, **options):
    """The managed local node of engine `name` on `port` (`options`: the node class's own,
    e.g. heap, settings)."""
    return engine_spec(name).node_class()(port=port, **options)


@contextlib.contextmanager
def _from_managed_node(choice: EngineChoice, name: str) -> Iterator[Engine]:
    node = managed_node(name, port_from(os.environ, name))
    status = node.start()
    try:
        yield _engine(choice, status.url, name)
    finally:
        if not status.reused:  # leave a node we did not start alone
            node.stop()


@contextlib.contextmanager
def start_engine(
    choice: EngineChoice | None = None, name: str = DEFAULT_ENGINE
) -> Iterator[Engine]:
    """Yield the chosen engine `name`, started if it has to be; raise (EngineError and others)
    when the choice cannot be honoured."""
    choice = choice or choose_from_environment(name)
    if choice.kind == "url":
        yield _engine(choice, choice.url, name)
    elif choice.kind == "docker":
        with _from_testcontainers(choice, name) as engine:
            yield engine
    else:
        with _from_managed_node(choice, name) as engine:
            yield engine


@pytest.fixture(scope="module", params=ENGINE_NAMES, name="engine")
def each_engine(request) -> Engine:
    """Each engine in turn. `from tests.engines import each_engine  # noqa: F401` in a test
    module overrides its `engine` fixture, so that its tests (and the fixtures that use
    `engine`, `client`, `index_name`) run on OpenSearch and on Elasticsearch, against the
    session's nodes (tests/conftest.py)."""
    return request.getfixturevalue(f"{request.param}_engine")


def send_template_request(engine: Engine, index: str, request: dict) -> list[dict]:
    """What a client without sparse-mm gets from `--template-request`'s output: OpenSearch's
    stored template; Elasticsearch's two requests, the first's ids put into the second."""
    if engine_spec(engine.name).stored_template:
        features = [t["feature"] for t in request["params"]["terms"]]
        assert features and all("." not in f for f in features)
        return engine.client.search_template(index=index, body=request)["hits"]["hits"]
    first, second = (r["body"] for r in request["requests"])
    found = engine.client.search(index=index, body=first)["hits"]["hits"]
    ids = [h["fields"]["id"][0] for h in found]
    text = json.dumps(second).replace('["<fields.id of each hit of request 1>"]', json.dumps(ids))
    assert text.count(json.dumps(ids)) == 2  # the filter's and the knn clause's
    return engine.client.search(index=index, body=json.loads(text))["hits"]["hits"]


def remove_prefixed(engine: Engine, prefix: str) -> None:
    """Delete every index whose name starts with `prefix`, with the engine assets sparse-mm made
    for each and for `prefix` itself (an alias's stored template): a test's cleanup."""
    from indexing.engine import as_engine

    adapter = as_engine(engine.client)
    for row in adapter.index_rows(f"{prefix}*"):
        adapter.delete_index(row.name)
        adapter.delete_assets(row.name)
    adapter.delete_assets(prefix)

"""Shared fixtures. Engine tests get a real OpenSearch (`engine`, `client`); the tests shared
by both engines get each of OpenSearch and Elasticsearch in turn (`tests.engines.each_engine`,
imported into a test module). See tests/engines.py and indexing/engine_choice.py for
how an engine is chosen; one session shares one node of each engine.

An explicit engine choice that cannot be honoured fails the run. With SPARSE_MM_REQUIRE_ENGINE=1
(CI sets it) any missing engine fails the run; otherwise the engine tests are skipped with the
reason. The header names the choice; the summary names the engine and version that ran.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from indexing.engine_choice import choose_from_environment
from indexing.registry import DEFAULT_ENGINE, engine_spec
from sparse_mm.errors import EngineError
from tests.containers import APPLIED, apply_offline_settings
from tests.engines import ENGINE_NAMES, Engine, start_engine


def _engine_required() -> bool:
    return os.environ.get("SPARSE_MM_REQUIRE_ENGINE", "") not in ("", "0", "false")


_RAN: list[Engine] = []  # the session's engines, once started, for the summary


def _explicit_choice(name: str) -> bool:
    variable = engine_spec(name).url_variable
    return bool(os.environ.get("SPARSE_MM_ENGINE") or os.environ.get(variable))


def pytest_report_header(config) -> list[str]:
    lines, docker = [], False
    for name in ENGINE_NAMES:
        try:
            choice = choose_from_environment(name)
        except EngineError as exc:
            lines.append(f"{name} choice: none ({exc})")
            continue
        lines.append(f"{name} choice: {choice.describe()}")
        docker = docker or choice.kind == "docker"
    if docker:
        apply_offline_settings()
        lines.append(f"testcontainers settings: {' '.join(APPLIED)}")
    return lines


def pytest_terminal_summary(terminalreporter) -> None:
    for found in _RAN:
        terminalreporter.write_line(f"engine that ran: {found.describe()}")


def _session_engine(name: str) -> Iterator[Engine]:
    manager = start_engine(name=name)
    try:
        found = manager.__enter__()
    except Exception as exc:
        if _explicit_choice(name):
            pytest.fail(f"the chosen {name} engine is not available: {exc}", pytrace=False)
        if _engine_required():
            pytest.fail(f"SPARSE_MM_REQUIRE_ENGINE is set and {exc}", pytrace=False)
        pytest.skip(f"no {name} available: {exc}")
    _RAN.append(found)
    try:
        yield found
    finally:
        manager.__exit__(None, None, None)


def _session_fixture(name: str):
    def fixture() -> Iterator[Engine]:
        yield from _session_engine(name)

    fixture.__doc__ = f"The session's {name} engine, started if it has to be."
    return pytest.fixture(scope="session", name=f"{name}_engine")(fixture)


# `<engine>_engine` for every registered engine (opensearch_engine, elasticsearch_engine, ...)
for _name in ENGINE_NAMES:
    globals()[f"_{_name}_engine"] = _session_fixture(_name)


@pytest.fixture(scope="session")
def engine(request) -> Engine:
    """The default engine (OpenSearch), for the tests of what only it has (a test module shared
    by every engine imports tests.engines.each_engine instead)."""
    return request.getfixturevalue(f"{DEFAULT_ENGINE}_engine")


@pytest.fixture
def client(engine: Engine):
    return engine.client


@pytest.fixture
def index_name(client) -> Iterator[str]:
    """A fresh index name for one test; the index (if created) is deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)

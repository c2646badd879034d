"""Shared fixtures. Engine tests get a real OpenSearch (see tests/engines.py and
indexing/engine_choice.py for how it is chosen).

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
from sparse_mm.errors import EngineError
from tests.engines import Engine, start_engine


def _engine_required() -> bool:
    return os.environ.get("SPARSE_MM_REQUIRE_ENGINE", "") not in ("", "0", "false")


_RAN: list[Engine] = []  # the session's engine, once started, for the summary


def _explicit_choice() -> bool:
    return bool(os.environ.get("SPARSE_MM_ENGINE") or os.environ.get("OPENSEARCH_URL"))


def pytest_report_header(config) -> str:
    try:
        return f"engine choice: {choose_from_environment().describe()}"
    except EngineError as exc:
        return f"engine choice: none ({exc})"


def pytest_terminal_summary(terminalreporter) -> None:
    if _RAN:
        terminalreporter.write_line(f"engine that ran: {_RAN[0].describe()}")


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    manager = start_engine()
    try:
        found = manager.__enter__()
    except Exception as exc:
        if _explicit_choice():
            pytest.fail(f"the chosen engine is not available: {exc}", pytrace=False)
        if _engine_required():
            pytest.fail(f"SPARSE_MM_REQUIRE_ENGINE is set and {exc}", pytrace=False)
        pytest.skip(f"no OpenSearch available: {exc}")
    _RAN.append(found)
    try:
        yield found
    finally:
        manager.__exit__(None, None, None)


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

"""Shared fixtures. Engine tests get a real OpenSearch (see tests/engines.py).

With SPARSE_MM_REQUIRE_ENGINE=1 (CI sets it) a missing engine fails the run; otherwise the
engine tests are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.engines import Engine, find_engine


def _engine_required() -> bool:
    return os.environ.get("SPARSE_MM_REQUIRE_ENGINE", "") not in ("", "0", "false")


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    manager = find_engine()
    try:
        found = manager.__enter__()
    except Exception as exc:
        if _engine_required():
            pytest.fail(f"SPARSE_MM_REQUIRE_ENGINE is set and {exc}", pytrace=False)
        pytest.skip(f"no OpenSearch available: {exc}")
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

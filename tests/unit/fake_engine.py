"""A third engine, for tests/unit/test_engine_registry.py: one adapter (OpenSearch's methods
under another spec), one managed node class and one client module, registered by adding one
line to `indexing.registry.ENGINES` and nothing else."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from indexing.local_node import LocalNode
from indexing.opensearch.adapter import SPEC as OPENSEARCH_SPEC
from indexing.opensearch.adapter import OpenSearchEngine
from sparse_mm.errors import EngineError

NAME = "fakesearch"
TARGET = "tests.unit.fake_engine:FakeEngine"
SPEC = replace(
    OPENSEARCH_SPEC,
    name=NAME,
    label="FakeSearch",
    libraries=("fakesearchpy",),
    client_module="tests.unit.fake_engine",
    default_port=9207,
    port_variable="SPARSE_MM_FAKE_PORT",
    url_variable="FAKESEARCH_URL",
    user_variable="FAKESEARCH_USER",
    password_variable="FAKESEARCH_PASSWORD",
    ca_variable="FAKESEARCH_CA_CERTS",
    home_variable="SPARSE_MM_FAKESEARCH_HOME",
    node="tests.unit.fake_engine:FakeNode",
    node_summary="Run a FakeSearch node.",
    node_flags=(),
)
CONNECTED: list = []  # the ConnectionOptions each connect() was given


def connect(options, *, check: bool = True):
    """The engine's client module: records the options, and answers nowhere."""
    CONNECTED.append(options)
    raise EngineError(f"cannot reach FakeSearch at {options.safe_url}")


class FakeEngine(OpenSearchEngine):
    spec = SPEC


class FakeNode(LocalNode):
    label = "FakeSearch"
    launcher = "fakesearch"
    config_file = "fakesearch.yml"
    java_home_variable = "FAKESEARCH_JAVA_HOME"
    conf_variable = "FAKESEARCH_PATH_CONF"
    java_opts_variable = "FAKESEARCH_JAVA_OPTS"
    process_markers = (b"org.fakesearch.Main",)

    def __init__(self, home: Path | None = None, port: int = 9207, heap: str = "1g") -> None:
        from indexing.local_node import cache_home

        super().__init__(home or cache_home(NAME), port, heap, version="0.1")

    def ensure_distribution(self, jdk, progress) -> Path:
        raise EngineError("FakeSearch has no distribution")

    def engine_settings(self) -> dict[str, object]:
        return {}

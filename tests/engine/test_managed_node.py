"""Lifecycle of the managed node beyond the session's own, for each engine: a node that dies
during start reports its log, and `sparse-mm opensearch|elasticsearch start|status|stop` start,
see and stop a second node. Also: OpenSearch has the modules sparse-mm needs loaded (on the
managed node, some are built from their own jars)."""

from __future__ import annotations

import re
import shutil
import socket

import pytest

from indexing.engine import engine_class
from indexing.opensearch.node import REQUIRED_MODULES
from sparse_mm.errors import EngineError
from tests.cli_run import run
from tests.engine.local_nodes import free_ports
from tests.engines import ENGINE_NAMES, managed_node

HEAP = {"opensearch": "256m", "elasticsearch": "512m"}  # the least each starts with


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_node_exiting_during_start_shows_its_log(engine, java, name):
    node = managed_node(name, _free_port(), heap=HEAP[name], settings={"no.such.setting": 1})
    try:
        with pytest.raises(EngineError, match=r"exited during start.*no\.such\.setting"):
            node.start(timeout=120)
        assert not node.status().running
    finally:
        shutil.rmtree(node.node_dir, ignore_errors=True)


CLI_PORTS = range(9260, 9280)  # apart from local_nodes' (9240-9259) and the secured node's


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_second_node_start_status_stop_through_the_cli(engine, java, name):
    """`sparse-mm <engine> start|status|stop` on a port of the test's own, beside the
    session's engine: what each prints and its exit status."""
    (port,) = free_ports(1, CLI_PORTS)
    node = managed_node(name, port)
    label = engine_class(name).label
    url = f"http://127.0.0.1:{port}"
    started = run(name, "start", "--port", port, "--heap", HEAP[name], "--timeout", 120)
    assert started.exit_code == 0, started.output
    first = started.stdout.splitlines()[0]
    # (a node someone else started on the port meanwhile is left alone: no `stop` below)
    assert re.fullmatch(rf"{label} \S+ running at {url} \(ready in [\d.]+s\)", first), first
    try:
        pid = int(re.search(r"pid (\d+)", started.stdout).group(1))
        assert f"starting {label}" in started.stderr  # progress goes to stderr
        again = run(name, "start", "--port", port)
        assert again.exit_code == 0 and f"already running at {url}" in again.stdout
        assert f"pid {pid}," in again.stdout
        status = run(name, "status", "--port", port)
        assert status.exit_code == 0 and f"running at {url}" in status.stdout
        assert f"pid {pid}," in status.stdout and "log " in status.stdout
        assert node.status().running and node.status().pid == pid
    finally:
        stopped = run(name, "stop", "--port", port)
        shutil.rmtree(node.node_dir, ignore_errors=True)
    assert stopped.exit_code == 0
    assert stopped.stdout.strip() == f"stopped {label} on port {port} (pid {pid})"
    assert not node.status().running
    after = run(name, "status", "--port", port)
    assert after.exit_code == 1
    assert after.stdout.strip() == f"{label} (managed) is not running on port {port}"
    twice = run(name, "stop", "--port", port)
    assert twice.stdout.strip() == f"{label} (managed) was not running on port {port}"


def test_engine_loads_every_required_module(engine):
    nodes = engine.client.nodes.info(metric="plugins")["nodes"]
    for node in nodes.values():
        loaded = {module["name"] for module in node["modules"]}
        assert set(REQUIRED_MODULES) <= loaded, f"missing {set(REQUIRED_MODULES) - loaded}"

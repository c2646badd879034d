"""Lifecycle of the managed node beyond the session's own: a node that dies during start
reports its log, and status/stop see a second node. Also: the engine has the modules sparse-mm
needs loaded (on the managed node, some are built from their own jars)."""

from __future__ import annotations

import shutil
import socket

import pytest

from indexing.node import REQUIRED_MODULES, ManagedNode
from sparse_mm.errors import EngineError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_node_exiting_during_start_shows_its_log(engine, java):
    node = ManagedNode(port=_free_port(), heap="256m", settings={"no.such.setting": 1})
    try:
        with pytest.raises(EngineError, match=r"exited during start.*no\.such\.setting"):
            node.start(timeout=120)
        assert not node.status().running
    finally:
        shutil.rmtree(node.node_dir, ignore_errors=True)


def test_second_node_start_status_stop(engine, java):
    node = ManagedNode(port=_free_port(), heap="256m")
    status = node.start(timeout=120)
    try:
        assert status.running and not status.reused
        again = node.start()
        assert again.reused and again.pid == status.pid
        assert node.status().running
    finally:
        message = node.stop()
        shutil.rmtree(node.node_dir, ignore_errors=True)
    assert "stopped" in message
    assert not node.status().running


def test_engine_loads_every_required_module(engine):
    nodes = engine.client.nodes.info(metric="plugins")["nodes"]
    for node in nodes.values():
        loaded = {module["name"] for module in node["modules"]}
        assert set(REQUIRED_MODULES) <= loaded, f"missing {set(REQUIRED_MODULES) - loaded}"

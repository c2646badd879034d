"""The managed nodes' home is per user, and `stop` without --port stops only what that home's
registry says this user started (listing it); `status` without --port finds every engine's
recorded node the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from indexing import local_node
from indexing.local_node import cache_home
from tests.cli_run import run


@pytest.mark.parametrize("engine", ["opensearch", "elasticsearch"])
def test_roots_default_home_is_its_own_not_a_machine_wide_one(monkeypatch, engine):
    monkeypatch.delenv("SPARSE_MM_HOME", raising=False)
    monkeypatch.delenv("SPARSE_MM_ELASTICSEARCH_HOME", raising=False)
    monkeypatch.setattr(local_node.os, "geteuid", lambda: 0)
    home = cache_home(engine)
    assert home == local_node.SHARED_CACHE / "root" / engine
    monkeypatch.setenv("SPARSE_MM_ELASTICSEARCH_HOME", "/somewhere/es")
    monkeypatch.setenv("SPARSE_MM_HOME", "/somewhere/os")
    expected = {"opensearch": "/somewhere/os", "elasticsearch": "/somewhere/es"}[engine]
    assert cache_home(engine) == Path(expected)


@pytest.fixture
def sleeper():
    """A live process whose command line looks like a node's (is_node_process checks it)."""
    marker = "org.opensearch.bootstrap.OpenSearch org.elasticsearch.bootstrap.Elasticsearch"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    yield proc.pid
    proc.kill()
    proc.wait()


def _record(home: Path, port: int, pid: int, started_by: int | None, label: str) -> None:
    folder = home / "nodes" / str(port)
    folder.mkdir(parents=True)
    record = {"running": True, "port": port, "pid": pid, "engine": label,
              "url": f"http://127.0.0.1:{port}", "version": "x"}  # fmt: skip
    if started_by is not None:
        record["started_by"] = started_by
    (folder / "node.json").write_text(json.dumps(record))


@pytest.mark.parametrize(("engine", "label"), [("opensearch", "OpenSearch"),
                                               ("elasticsearch", "Elasticsearch")])  # fmt: skip
def test_stop_without_port_stops_only_this_users_nodes(tmp_path, sleeper, engine, label):
    me = os.geteuid()
    _record(tmp_path, 9301, sleeper, me + 1, label)  # another user's, alive
    _record(tmp_path, 9302, sleeper, None, label)  # a record that does not say whose
    _record(tmp_path, 9303, 999_999_999, me, label)  # mine, no longer running
    result = run(engine, "stop", "--home", tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines == [
        f"stopping the {label} nodes this user started under {tmp_path.resolve()}: 9303",
        f"{label} (managed) was not running on port 9303",
        "left alone, not recorded as this user's: 9301, 9302 (stop one with --port PORT)",
    ]
    assert os.path.exists(f"/proc/{sleeper}")  # the others' node was left alone


@pytest.mark.parametrize(("engine", "label"), [("opensearch", "OpenSearch"),
                                               ("elasticsearch", "Elasticsearch")])  # fmt: skip
def test_status_without_port_finds_the_recorded_node(tmp_path, sleeper, engine, label):
    _record(tmp_path, 9304, sleeper, os.geteuid(), label)
    result = run(engine, "status", "--home", tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{label} x running at http://127.0.0.1:9304")

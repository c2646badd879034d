"""The managed Elasticsearch node's failure modes that need no running engine: one clear line
each, as for OpenSearch (the lifecycle is shared: indexing/local_node.py)."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexing.elasticsearch.node import (
    ELASTICSEARCH_VERSION,
    ElasticsearchNode,
    distribution_artifact,
)
from indexing.jdk import find_jdk, java_version
from sparse_mm.cli import main
from sparse_mm.errors import EngineError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_pinned_artifact_is_the_minimal_distribution_with_its_digest():
    artifact = distribution_artifact()
    assert artifact.coordinate == (
        f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ELASTICSEARCH_VERSION}:zip"
    )
    assert artifact.sha256 and len(artifact.sha256) == 64


def test_port_taken_by_another_program(tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(EngineError, match=f"port {port} is already in use"):
            ElasticsearchNode(home=tmp_path, port=port).start(timeout=5)
    assert not (tmp_path / "dist").exists()


def test_maven_failure_names_the_elasticsearch_artifact(tmp_path: Path, monkeypatch):
    mvn = tmp_path / "mvn"
    mvn.write_text(
        '#!/bin/sh\necho "[ERROR] Could not transfer artifact: network is down"\nexit 1\n'
    )
    mvn.chmod(mvn.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("SPARSE_MM_NO_MAVEN", raising=False)
    home = tmp_path / "home"
    with pytest.raises(
        EngineError, match=r"Maven could not resolve .*elasticsearch.*network is down"
    ):
        ElasticsearchNode(home=home, port=_free_port()).start(timeout=5)
    assert not (home / "dist").exists() or not any((home / "dist").iterdir())


def test_too_old_java_names_es_java_home(monkeypatch):
    old = next(
        (h for h in sorted(Path("/usr/lib/jvm").glob("*")) if (v := java_version(h)) and v[0] < 21),
        None,
    )
    if old is None:
        pytest.fail("this test needs a JDK older than 21 installed (Debian's openjdk-17 is)")
    monkeypatch.setenv("ES_JAVA_HOME", str(old))
    with pytest.raises(
        EngineError, match=r"ES_JAVA_HOME=.* is Java 1\d.*Elasticsearch needs Java 21\+"
    ):
        find_jdk(21, "ES_JAVA_HOME", "Elasticsearch")


def test_status_and_stop_of_a_stale_record(tmp_path: Path):
    node = ElasticsearchNode(home=tmp_path, port=_free_port())
    node.node_dir.mkdir(parents=True)
    (node.node_dir / "node.json").write_text('{"pid": 999999999, "port": 1}')
    assert not node.status().running
    assert "Elasticsearch (managed) was not running" in node.stop()


def test_status_command_exits_1_when_no_node_runs(tmp_path: Path):
    port = _free_port()
    result = CliRunner().invoke(
        main, ["elasticsearch", "status", "--port", str(port), "--home", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert f"Elasticsearch (managed) is not running on port {port}" in result.output


def test_the_node_config_is_single_node_security_off_on_loopback(tmp_path: Path):
    node = ElasticsearchNode(home=tmp_path, port=9221)
    dist = tmp_path / "dist-fake"
    (dist / "config").mkdir(parents=True)
    (dist / "config" / "jvm.options").write_text("-XX:ErrorFile=hs_err_pid%p.log\n")
    config = node._write_node_config(dist)
    text = (config / "elasticsearch.yml").read_text()
    for line in (
        'discovery.type: "single-node"',
        "xpack.security.enabled: false",
        'network.host: "127.0.0.1"',
        "http.port: 9221",
        "transport.port: 9321",
    ):
        assert line in text
    assert f"ErrorFile={node.node_dir / 'logs'}/hs_err" in (config / "jvm.options").read_text()

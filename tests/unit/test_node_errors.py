"""The managed node's failure modes that need no running engine: each is one clear error,
and none leaves a half-built distribution behind."""

from __future__ import annotations

import socket
import stat
import sys
from pathlib import Path

import pytest

from indexing.artifacts import Artifact, resolve
from indexing.jdk import Jdk, find_jdk, java_version
from indexing.opensearch.node import MIN_JAVA, ManagedNode
from sparse_mm.errors import EngineError
from tests.unit.test_modules import prepare_home


def test_port_taken_by_another_program(tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(EngineError, match=f"port {port} is already in use"):
            ManagedNode(home=tmp_path, port=port).start(timeout=5)
    assert not (tmp_path / "dist").exists()


def _fake_mvn(folder: Path, script: str) -> None:
    mvn = folder / "mvn"
    mvn.write_text("#!/bin/sh\n" + script)
    mvn.chmod(mvn.stat().st_mode | stat.S_IEXEC)


def test_maven_resolution_failure_names_the_artifact(tmp_path: Path, monkeypatch):
    _fake_mvn(tmp_path, 'echo "[ERROR] Could not transfer artifact: network is down"\nexit 1\n')
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("SPARSE_MM_NO_MAVEN", raising=False)
    home = tmp_path / "home"
    with pytest.raises(EngineError, match=r"Maven could not resolve .*opensearch.*network is down"):
        ManagedNode(home=home, port=_free_port()).start(timeout=5)
    assert not (home / "dist").exists() or not any((home / "dist").iterdir())


def test_download_without_maven_refuses_unreachable_repository(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SPARSE_MM_NO_MAVEN", "1")
    monkeypatch.setenv("SPARSE_MM_MAVEN_REPO", f"http://127.0.0.1:{_free_port()}/maven2")
    artifact = Artifact("org.example", "thing", "1.0", "zip")
    with pytest.raises(EngineError, match="could not reach"):
        resolve([artifact], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_pinned_digest_mismatch_removes_the_file(tmp_path: Path, monkeypatch):
    _fake_mvn(
        tmp_path,
        'for a in "$@"; do case "$a" in -DoutputDirectory=*) '
        'echo tampered > "${a#-DoutputDirectory=}/thing-1.0.zip";; esac; done\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("SPARSE_MM_NO_MAVEN", raising=False)
    out = tmp_path / "out"
    artifact = Artifact("org.example", "thing", "1.0", "zip", sha256="0" * 64)
    with pytest.raises(EngineError, match="does not match its pinned SHA-256"):
        resolve([artifact], out)
    assert not (out / "thing-1.0.zip").exists()


def test_maven_fetches_every_missing_artifact_in_one_run(tmp_path: Path, monkeypatch):
    # The fake Maven reads the throwaway POM and "downloads" each item it lists.
    runs = tmp_path / "runs.log"
    script = f"""#!{sys.executable}
import re, sys
from pathlib import Path
args = sys.argv[1:]
pom = Path(args[args.index("-f") + 1]).read_text()
out = Path(next(a.split("=", 1)[1] for a in args if a.startswith("-DoutputDirectory=")))
with open({str(runs)!r}, "a") as log:
    log.write("run\\n")
item = r"<artifactId>([^<]+)</artifactId><version>([^<]+)</version><type>([^<]+)</type>"
for name, version, kind in re.findall(item, pom):
    (out / f"{{name}}-{{version}}.{{kind}}").write_text("fetched")
"""
    mvn = tmp_path / "mvn"
    mvn.write_text(script)
    mvn.chmod(mvn.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("SPARSE_MM_NO_MAVEN", raising=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "cached-1.0.jar").write_text("cached")
    wanted = [Artifact("org.example", n, "1.0") for n in ("one", "two", "cached")]
    paths = resolve(wanted, out)
    assert [p.name for p in paths] == ["one-1.0.jar", "two-1.0.jar", "cached-1.0.jar"]
    assert [p.read_text() for p in paths] == ["fetched", "fetched", "cached"]
    assert runs.read_text().splitlines() == ["run"]


def test_too_old_java_is_named(tmp_path: Path, monkeypatch):
    old = _jdk_older_than(21)
    monkeypatch.setenv("OPENSEARCH_JAVA_HOME", str(old))
    with pytest.raises(EngineError, match=r"is Java 1\d.*needs Java 21\+"):
        find_jdk(21)


def test_status_of_a_stale_record_is_not_running(tmp_path: Path):
    node = ManagedNode(home=tmp_path, port=_free_port())
    node.node_dir.mkdir(parents=True)
    (node.node_dir / "node.json").write_text('{"pid": 999999999, "port": 1}')
    assert not node.status().running
    assert "was not running" in node.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _jdk_older_than(major: int) -> Path:
    for home in sorted(Path("/usr/lib/jvm").glob("*")):
        version = java_version(home)
        if version and version[0] < major:
            return home
    pytest.fail("this test needs a JDK older than 21 installed (Debian's openjdk-17 is)")


def test_core_zip_lacking_a_module_without_recipe_fails_and_leaves_nothing(
    tmp_path: Path, monkeypatch
):
    # transport-netty4 always ships in the core zip, so sparse-mm has no recipe for it.
    node = prepare_home(tmp_path / "home", monkeypatch, [])
    jdk = Jdk(home=tmp_path, major=MIN_JAVA, version=str(MIN_JAVA))
    with pytest.raises(EngineError, match=r"lacks modules \['transport-netty4'\]"):
        node.ensure_distribution(jdk, lambda _m: None)
    assert list(node.dist_dir.parent.iterdir()) == []

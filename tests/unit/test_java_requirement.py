"""The tests that start their own nodes need Java 21+: without it, `require_java` fails them
with one line (pytest's Failed without a trace), saying what to install."""

from __future__ import annotations

import stat

import pytest

from indexing import jdk
from tests.engine.local_nodes import require_java


def _fake_java(home, version: str) -> None:
    """A JAVA_HOME whose `bin/java -version` reports `version`, as an old JDK would."""
    java = home / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2021-10-19' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)


def _failure(callable_) -> pytest.fail.Exception:
    with pytest.raises(pytest.fail.Exception) as caught:
        callable_()
    return caught.value


def test_an_old_java_fails_the_test_in_one_line(tmp_path, monkeypatch):
    _fake_java(tmp_path, "17.0.2")
    monkeypatch.setenv("OPENSEARCH_JAVA_HOME", str(tmp_path))
    failure = _failure(require_java)
    assert failure.pytrace is False
    message = str(failure)
    assert "\n" not in message
    assert "starts its own OpenSearch node, which needs Java 21+" in message
    assert "is Java 17.0.2" in message


def test_no_java_at_all_fails_the_test_in_one_line(monkeypatch):
    monkeypatch.delenv("OPENSEARCH_JAVA_HOME", raising=False)
    monkeypatch.setattr(jdk, "_candidates", lambda *_args: [])  # no JDK anywhere on this machine
    failure = _failure(require_java)
    assert failure.pytrace is False
    assert "\n" not in str(failure)
    assert "no Java 21+ runtime found" in str(failure) and "OPENSEARCH_JAVA_HOME" in str(failure)


def test_a_recent_java_passes(tmp_path, monkeypatch):
    _fake_java(tmp_path, "21.0.4")
    monkeypatch.setenv("OPENSEARCH_JAVA_HOME", str(tmp_path))
    require_java()  # no failure

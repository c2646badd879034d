"""Where artifacts come from without `mvn`: the environment or Maven's own settings, never a
repository written in the code."""

from __future__ import annotations

import pytest

from indexing.artifacts import maven_repository
from sparse_mm.errors import EngineError

_SETTINGS = """<?xml version="1.0"?>
<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
  <mirrors>
    <mirror><id>other</id><mirrorOf>snapshots</mirrorOf><url>https://other.invalid/m2</url></mirror>
    <mirror><id>corp</id><mirrorOf>{of}</mirrorOf><url>https://mirror.invalid/maven2</url></mirror>
  </mirrors>
</settings>
"""


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("SPARSE_MM_MAVEN_REPO", raising=False)


def test_the_environment_variable_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSE_MM_MAVEN_REPO", "https://env.invalid/repo")
    settings = tmp_path / "settings.xml"
    settings.write_text(_SETTINGS.format(of="central"))
    assert maven_repository(settings) == "https://env.invalid/repo"


@pytest.mark.parametrize("mirror_of", ["central", "*", "external:*,!snapshots", "central,other"])
def test_the_mirror_of_central_in_maven_settings(tmp_path, mirror_of):
    settings = tmp_path / "settings.xml"
    settings.write_text(_SETTINGS.format(of=mirror_of))
    assert maven_repository(settings) == "https://mirror.invalid/maven2"


def test_neither_is_one_line_saying_what_to_install_or_set(tmp_path):
    settings = tmp_path / "settings.xml"
    settings.write_text(_SETTINGS.format(of="snapshots-only"))
    for path in (settings, tmp_path / "absent.xml"):
        with pytest.raises(EngineError, match=r"install Maven .* or set SPARSE_MM_MAVEN_REPO"):
            maven_repository(path)


def test_broken_settings_are_named(tmp_path):
    settings = tmp_path / "settings.xml"
    settings.write_text("<settings><mirrors>")
    with pytest.raises(EngineError, match=r"settings\.xml is not valid XML"):
        maven_repository(settings)

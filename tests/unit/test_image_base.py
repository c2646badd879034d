"""The base image's apt source, read from the system's apt configuration (no mirror is
written in the code), and the debootstrap command made from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexing.images.base import (
    AptSource,
    base_tag,
    debootstrap_command,
    os_codename,
    parse_sources,
    system_source,
)
from sparse_mm.errors import EngineError

DEB822 = """Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822_source_of_the_release_with_its_keyring():
    source = parse_sources({"debian.sources": DEB822}, "bookworm")
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert source == AptSource("http://mirror.example/debian", "bookworm", keyring)


def test_one_line_sources_skip_comments_disabled_and_other_suites():
    text = (
        "# deb http://old.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb http://security.example/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/ubuntu noble main universe\n"
    )
    assert parse_sources({"sources.list": text}, "noble") == AptSource(
        "http://mirror.example/ubuntu", "noble", "/k.gpg"
    )
    assert parse_sources({"sources.list": text}, "bookworm") is None
    disabled = DEB822.replace("Types: deb\n#", "Types: deb\nEnabled: no\n#", 1)
    assert parse_sources({"d.sources": disabled}, "bookworm") is None


def test_codename_and_the_command_debootstrap_runs(tmp_path):
    assert os_codename('NAME="Debian"\nVERSION_CODENAME=bookworm\n') == "bookworm"
    assert os_codename("NAME=x\n") is None
    source = AptSource("http://mirror.example/debian", "bookworm", str(tmp_path / "absent.gpg"))
    cmd = debootstrap_command(source, Path("/t"))
    assert cmd[:2] == ["debootstrap", "--variant=minbase"]
    assert "curl" in cmd[2] and cmd[-3:] == ["bookworm", "/t", "http://mirror.example/debian"]
    assert not any(c.startswith("--keyring") for c in cmd)  # only a keyring that exists
    assert base_tag(source) == "sparse-mm/base:bookworm"


def test_system_source_reads_the_machine_and_says_what_is_missing(tmp_path):
    (tmp_path / "etc" / "apt" / "sources.list.d").mkdir(parents=True)
    with pytest.raises(EngineError, match="--base"):
        system_source(tmp_path)
    (tmp_path / "etc" / "os-release").write_text("VERSION_CODENAME=bookworm\n")
    with pytest.raises(EngineError, match="no apt source for bookworm"):
        system_source(tmp_path)
    (tmp_path / "etc" / "apt" / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert system_source(tmp_path).uri == "http://mirror.example/debian"

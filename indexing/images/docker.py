"""The docker CLI calls an image build makes; each failure is one line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from sparse_mm.errors import EngineError

_NO_DAEMON = (
    "no Docker daemon answers (`docker info` fails): start one (as root: "
    "scripts/docker-host.sh start), or use the managed nodes (`sparse-mm opensearch start`)"
)


def docker() -> str:
    path = shutil.which("docker")
    if path is None:
        raise EngineError("no docker command on the PATH: install Docker (scripts/docker-host.sh)")
    return path


def require_daemon() -> None:
    done = subprocess.run(
        [docker(), "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise EngineError(_NO_DAEMON)


def inspect(ref: str, template: str) -> str | None:
    """`docker image inspect --format TEMPLATE ref`, or None when there is no such image."""
    done = subprocess.run(
        [docker(), "image", "inspect", "--format", template, ref],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def image_id(ref: str) -> str | None:
    return inspect(ref, "{{.Id}}")


def image_label(ref: str, key: str) -> str | None:
    value = inspect(ref, f'{{{{index .Config.Labels "{key}"}}}}')
    return value if value and value != "<no value>" else None


def image_size(ref: str) -> int | None:
    value = inspect(ref, "{{.Size}}")
    return int(value) if value else None


def pull(ref: str) -> bool:
    done = subprocess.run([docker(), "pull", "-q", ref], capture_output=True, check=False)
    return done.returncode == 0


def _builder_env() -> dict[str, str]:
    """BuildKit through buildx when the CLI has it; else the classic builder (a daemon-side
    builder every daemon has), asked for explicitly so that the CLI does not refuse."""
    has_buildx = (
        subprocess.run([docker(), "buildx", "version"], capture_output=True, check=False).returncode
        == 0
    )
    return dict(os.environ) if has_buildx else {**os.environ, "DOCKER_BUILDKIT": "0"}


def build(context: Path, tag: str, progress: Callable[[str], None]) -> None:
    """`docker build -t tag context`, its steps reported through `progress`."""
    proc = subprocess.Popen(
        [docker(), "build", "--pull=false", "-t", tag, str(context)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_builder_env(),
    )
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line.startswith("Step ") or re.match(r"#\d+ \[", line):
            progress(f"  {line[:100]}")
        if line:
            tail = [*tail[-4:], line]
    if proc.wait() != 0:
        raise EngineError(f"docker build of {tag} failed: {' | '.join(tail[-2:])}")

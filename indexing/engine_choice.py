"""Which engine the tests and `./dev.sh` use: one explicit choice, never a silent fallback.

`SPARSE_MM_ENGINE` says how to get each registered engine (indexing/registry.py: OpenSearch,
and Elasticsearch for the tests that run on both), the same way for all:
- `url`: the one at the engine's URL variable (`$OPENSEARCH_URL`, `$ELASTICSEARCH_URL`; it
  must answer);
- `docker`: a container, started by testcontainers for the tests (a Docker daemon must answer)
  or by `docker compose` for `dev.sh` (`docker compose version` must work), of the image
  `$SPARSE_MM_OPENSEARCH_IMAGE` (Elasticsearch: `$SPARSE_MM_ELASTICSEARCH_IMAGE`; default the
  official image of the pinned version), which must be present or pullable (`sparse-mm image
  build` makes local ones);
- `managed`: the managed local node (`sparse-mm opensearch start`, `sparse-mm elasticsearch
  start`) on the engine's port (`indexing.registry.port_from`: `$SPARSE_MM_PORT`;
  Elasticsearch: `$SPARSE_MM_ES_PORT`, default the OpenSearch port + 1);
- unset (or `auto`): the engine's URL variable when it is set (an explicit URL is honoured, or
  the run fails); else an engine already answering on its port on 127.0.0.1 (a `docker compose
  up` node, a managed node started earlier); else Docker when its daemon answers and the image
  is present or pullable; else the managed node, the reason saying why Docker was passed over.

`python -m indexing.engine_choice [ENGINE]` prints the decision for `dev.sh`, one field per
line (KIND, the local URL, REASON; a line per field, so that an empty field stays a field); its
Docker probe is `docker compose` v2, since dev.sh starts the compose file. An explicit choice
that cannot be honoured is one `error:` line and exit status 2.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from indexing.images.spec import SPECS
from indexing.registry import DEFAULT_ENGINE, engine_spec, port_from
from sparse_mm.errors import EngineError

KINDS = ("url", "docker", "managed")
NO_DAEMON = "no Docker daemon answers (`docker info` fails)"
__all__ = ["EngineChoice", "choose_engine", "choose_from_environment", "port_from"]


@dataclass(frozen=True)
class EngineChoice:
    kind: str  # one of KINDS
    url: str | None  # known up front for "url"; managed/docker engines say theirs when started
    reason: str  # why this one, for the pytest header and dev.sh
    image: str | None = None  # the container image, for "docker"

    def describe(self) -> str:
        where = f" at {self.url}" if self.url else ""
        image = f" image {self.image}" if self.image else ""
        return f"{self.kind}{where}{image} ({self.reason})"


def choose_engine(
    env: Mapping[str, str],
    answers: Callable[[str], bool],
    docker_answers: Callable[[], bool],
    engine: str = DEFAULT_ENGINE,
    image_problem: Callable[[str], str | None] = lambda _image: None,
    docker_missing: str = NO_DAEMON,
) -> EngineChoice:
    """Decide from the environment and the probes (passed in, so the logic is testable):
    `docker_missing` says what is missing when the Docker probe fails; `image_problem(image)` is
    None when Docker can run `image` (present or pulled), else why not."""
    wanted = (env.get("SPARSE_MM_ENGINE") or "auto").strip().lower()
    variable = engine_spec(engine).url_variable
    url = env.get(variable) or None
    local = f"http://127.0.0.1:{port_from(env, engine)}"
    if wanted not in (*KINDS, "auto"):
        raise EngineError(
            f"SPARSE_MM_ENGINE={wanted!r} is not one of managed, docker, url (or unset for auto)"
        )
    if wanted == "url":
        if url is None:
            raise EngineError(f"SPARSE_MM_ENGINE=url needs {variable}")
        if not answers(url):
            raise EngineError(f"SPARSE_MM_ENGINE=url but nothing answers at {url}")
        return EngineChoice("url", url, "SPARSE_MM_ENGINE=url")
    image = docker_image(env, engine)
    if wanted == "docker":
        if not docker_answers():
            raise EngineError(
                f"SPARSE_MM_ENGINE=docker but {docker_missing}; "
                "start Docker or choose SPARSE_MM_ENGINE=managed"
            )
        problem = image_problem(image) if image else None
        if problem is not None:
            raise EngineError(f"SPARSE_MM_ENGINE=docker but {problem}: {_image_hint(engine)}")
        return EngineChoice("docker", None, "SPARSE_MM_ENGINE=docker", image)
    if wanted == "managed":
        return EngineChoice("managed", local, "SPARSE_MM_ENGINE=managed")
    if url is not None:
        if not answers(url):
            raise EngineError(
                f"{variable}={url} does not answer; start that engine, or unset "
                f"{variable} to let the tests pick one"
            )
        return EngineChoice("url", url, f"{variable} is set")
    if answers(local):
        return EngineChoice("url", local, "an engine already answers there")
    if not docker_answers():
        return EngineChoice("managed", local, f"nothing answers on the port and {docker_missing}")
    problem = image_problem(image) if image else None
    if problem is None:
        reason = "nothing answers on the port; Docker's daemon does and has the image"
        return EngineChoice("docker", None, reason, image)
    return EngineChoice(
        "managed", local, f"nothing answers on the port; Docker answers but {problem}"
    )


def docker_image(env: Mapping[str, str], engine: str) -> str | None:
    """The image a container of `engine` runs: its image variable's, else the official image
    of the pinned version (None for an engine without an image recipe)."""
    chosen = env.get(engine_spec(engine).image_variable)
    return chosen or (SPECS[engine].official_image if engine in SPECS else None)


def _image_hint(engine: str) -> str:
    variable = engine_spec(engine).image_variable
    if engine not in SPECS:
        return f"set {variable}"
    tag = SPECS[engine].tag
    return (
        f"build a local one (`sparse-mm image build --engine {engine}`, then "
        f"{variable}={tag}) or set {variable}"
    )


def http_answers(url: str, timeout: float = 3.0) -> bool:
    """True when something HTTP answers at `url` (any status: a secured engine answers 401).

    A liveness probe only: it sends nothing and reads nothing, so it does not verify TLS."""
    probe_tls = ssl.create_default_context()
    probe_tls.check_hostname = False
    probe_tls.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=probe_tls):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def docker_daemon_answers(timeout: float = 5.0) -> bool:
    """True when the `docker` CLI reaches a daemon (no CLI, no socket, no daemon: False)."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        done = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def compose_answers(timeout: float = 10.0) -> bool:
    """True when `docker compose` (v2) works and reaches a daemon: dev.sh starts the compose
    file with it (a daemon without the compose plugin answers `docker compose up -d` with
    "unknown shorthand flag: 'd'")."""
    docker = shutil.which("docker")
    if docker is None or not docker_daemon_answers():
        return False
    try:
        done = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def docker_image_problem(image: str, timeout: float = 120.0) -> str | None:
    """None when the daemon has `image` or pulls it; else why not, in a few words."""
    docker = shutil.which("docker") or "docker"
    try:
        present = subprocess.run(
            [docker, "image", "inspect", image], capture_output=True, timeout=30, check=False
        )
        if present.returncode == 0:
            return None
        pulled = subprocess.run(
            [docker, "pull", "-q", image], capture_output=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return f"the image {image} is not present and pulling it did not finish"
    if pulled.returncode == 0:
        return None
    return f"the image {image} is not present and cannot be pulled"


def choose_from_environment(engine: str = DEFAULT_ENGINE) -> EngineChoice:
    return choose_engine(
        os.environ, http_answers, docker_daemon_answers, engine, docker_image_problem
    )


def main(argv: list[str] | None = None) -> int:
    """For dev.sh: the choice with `docker compose` as the Docker probe, one field a line."""
    args = sys.argv[1:] if argv is None else argv
    engine = args[0] if args else DEFAULT_ENGINE
    missing = "no Docker daemon with `docker compose` v2 (`docker compose version` fails)"
    try:
        choice = choose_engine(
            os.environ, http_answers, compose_answers, engine, docker_image_problem, missing
        )
        local = f"http://127.0.0.1:{port_from(os.environ, engine)}"
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(choice.kind, choice.url or local, choice.reason, sep="\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

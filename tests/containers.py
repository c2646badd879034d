"""The engines' test containers (SPARSE_MM_ENGINE=docker): testcontainers-python with the
images of $SPARSE_MM_OPENSEARCH_IMAGE / $SPARSE_MM_ELASTICSEARCH_IMAGE (the official images by
default, as in docker-compose.yml; `sparse-mm image build` makes local ones).

Two settings for machines without a registry or inside a VM, applied only when detected and
only when the user has not set them (they are named in the pytest header):
- the reaper (Ryuk) image is neither present nor pullable: run without it
  (TESTCONTAINERS_RYUK_DISABLED); the fixtures stop their containers themselves;
- this process runs in a container or VM image (/.dockerenv), yet the daemon it talks to
  (a unix socket) runs in its own network namespace (the daemon's docker0 bridge is one of
  this namespace's interfaces): testcontainers would connect through the bridge gateway, as
  from a container beside the daemon's; connect to the published ports on this host instead
  (TESTCONTAINERS_CONNECTION_MODE=docker_host).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from indexing.engine_choice import docker_image, docker_image_problem
from indexing.registry import engine_spec

STARTUP_SECONDS = 300  # a loaded 2-core machine starts a node in 40 s to 2 min
APPLIED: list[str] = []  # the offline settings this session applied, for the pytest header


def offline_settings(
    env: Mapping[str, str],
    ryuk_problem: Callable[[], str | None],
    in_container: bool,
    daemon_network_is_ours: bool,
) -> dict[str, str]:
    """The testcontainers settings this machine needs, as variable -> value (pure: the probes
    are passed in)."""
    settings = {}
    if "TESTCONTAINERS_RYUK_DISABLED" not in env and ryuk_problem() is not None:
        settings["TESTCONTAINERS_RYUK_DISABLED"] = "true"
    host = env.get("DOCKER_HOST", "unix://")
    chosen = ("TESTCONTAINERS_CONNECTION_MODE", "TESTCONTAINERS_HOST_OVERRIDE", "TC_HOST")
    local = host.startswith("unix://") and daemon_network_is_ours
    if in_container and local and not any(v in env for v in chosen):
        settings["TESTCONTAINERS_CONNECTION_MODE"] = "docker_host"
    return settings


def apply_offline_settings() -> None:
    """Detect and apply the settings (once per session) to testcontainers' configuration."""
    if APPLIED:
        return
    from testcontainers.core.config import testcontainers_config as config

    settings = offline_settings(
        os.environ,
        lambda: docker_image_problem(config.ryuk_image, timeout=60),
        Path("/.dockerenv").exists(),
        Path("/sys/class/net/docker0").exists(),
    )
    if "TESTCONTAINERS_RYUK_DISABLED" in settings:
        config.ryuk_disabled = True
    if "TESTCONTAINERS_CONNECTION_MODE" in settings:
        from testcontainers.core.config import ConnectionMode

        config.connection_mode_override = ConnectionMode.docker_host
    if "TC_MAX_TRIES" not in os.environ:  # the OpenSearch module's wait: tries of one second
        config.max_tries = max(config.max_tries, STARTUP_SECONDS)
    APPLIED.extend(f"{k}={v}" for k, v in settings.items())
    APPLIED.append("(detected)" if settings else "none needed")


def container_settings(name: str, env: Mapping[str, str] = os.environ) -> tuple[str, dict]:
    """The image of engine `name` (indexing.engine_choice.docker_image: its image variable's,
    else the official one) and the environment its container gets beyond the testcontainers
    module's own (which turns security off), from the engine's registry entry."""
    return docker_image(env, name), dict(engine_spec(name).container_env)


def container_for(name: str):
    """The testcontainers container of engine `name` (constructing it needs a Docker daemon),
    as the engine's registry entry describes it: class, arguments, environment and readiness
    path."""
    apply_offline_settings()
    spec = engine_spec(name)
    image, env = container_settings(name)
    container = spec.container_class()(image, **dict(spec.container_kwargs))
    if spec.container_health_path:
        from testcontainers.core.wait_strategies import HttpWaitStrategy

        wait = HttpWaitStrategy(9200, spec.container_health_path)
        container.waiting_for(wait.with_startup_timeout(STARTUP_SECONDS))
    for key, value in env.items():
        container.with_env(key, value)
    return container

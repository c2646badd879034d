"""dev.sh's engine choice, run with stand-ins for `docker` and `sparse-mm` on the PATH: Docker
only when `docker compose` v2 works (else the managed node, saying why), the port variable
honoured on every branch, the managed way out printed on a failure, and a usage text that ends
its sentences."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEV_SH = ROOT / "dev.sh"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stand_in(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def _docker(folder: Path, *, compose: bool, image: bool = True, up: bool = True) -> None:
    log = folder / "calls.log"
    _stand_in(
        folder,
        "docker",
        f'echo "docker $* SPARSE_MM_PORT=$SPARSE_MM_PORT" >> {log}\n'
        'case "$1 $2" in\n'
        '  "info "*|"info --format") echo 27.0; exit 0 ;;\n'
        f'  "compose version") {"echo v2.29; exit 0" if compose else "exit 1"} ;;\n'
        '  "compose config") echo opensearchproject/opensearch:3.4.0; exit 0 ;;\n'
        f'  "image inspect") exit {0 if image else 1} ;;\n'
        '  "compose pull") exit 1 ;;\n'
        f'  "compose up") exit {0 if up else 1} ;;\n'
        "esac\nexit 0\n",
    )
    _stand_in(folder, "sparse-mm", f'echo "sparse-mm $*" >> {log}\n')


def _engine_up(folder: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SPARSE_MM", "OPENSEARCH"))},
        "PATH": f"{folder}:{Path(sys.executable).parent}:/usr/bin:/bin",
        **env,
    }
    script = f'source {DEV_SH}; cd {ROOT}; engine_up; echo "URL=$OPENSEARCH_URL KIND=$ENGINE_KIND"'
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=environment, timeout=120
    )


def test_no_compose_plugin_means_the_managed_node_and_says_why(tmp_path):
    _docker(tmp_path, compose=False)
    port = _free_port()
    done = _engine_up(tmp_path, SPARSE_MM_PORT=str(port))
    assert done.returncode == 0, done.stderr
    assert "using the managed OpenSearch node" in done.stderr
    assert "`docker compose` v2" in done.stderr
    calls = (tmp_path / "calls.log").read_text()
    assert f"sparse-mm opensearch start --port {port}" in calls
    assert "compose up" not in calls
    assert done.stdout.strip() == f"URL=http://127.0.0.1:{port} KIND=managed"


def test_the_docker_branch_honours_the_port_variable(tmp_path):
    _docker(tmp_path, compose=True)
    port = _free_port()
    done = _engine_up(tmp_path, SPARSE_MM_PORT=str(port))
    assert done.returncode == 0, done.stderr
    assert (
        f"docker compose up -d --wait opensearch SPARSE_MM_PORT={port}"
        in (tmp_path / "calls.log").read_text()
    )
    assert done.stdout.strip() == f"URL=http://127.0.0.1:{port} KIND=docker"
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["opensearch"]
    assert service["ports"] == ["127.0.0.1:${SPARSE_MM_PORT:-9200}:9200"]


def test_an_image_that_cannot_be_pulled_falls_back_to_the_managed_node(tmp_path):
    _docker(tmp_path, compose=True, image=False)
    done = _engine_up(tmp_path, SPARSE_MM_PORT=str(_free_port()))
    assert done.returncode == 0, done.stderr
    assert "image is not there and cannot be pulled" in done.stderr
    assert done.stdout.strip().endswith("KIND=managed")


def test_a_failure_prints_the_managed_way_out(tmp_path):
    _docker(tmp_path, compose=True, up=False)
    done = _engine_up(tmp_path, SPARSE_MM_PORT=str(_free_port()))
    assert done.returncode != 0
    assert "SPARSE_MM_ENGINE=managed ./dev.sh demo" in done.stderr
    _docker(tmp_path, compose=False)
    done = _engine_up(tmp_path, SPARSE_MM_ENGINE="docker")
    assert done.returncode == 2
    assert "SPARSE_MM_ENGINE=managed" in done.stderr


def test_without_a_command_it_prints_whole_sentences():
    done = subprocess.run(["bash", str(DEV_SH)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    text = done.stdout.strip()
    assert text.startswith("usage: ./dev.sh setup|test|demo")
    assert text.endswith(".")

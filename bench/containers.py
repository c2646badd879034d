"""Local engine images, measured: `python -m bench.containers [--port 9240] [--cold] [--json F]`.

- `build`: `sparse-mm image build` (both engines) as a user runs it, from the command to its
  return. With `--cold` the sparse-mm images (base included) are removed first, so the first
  build makes the base image by debootstrap and both engine images; the managed nodes'
  distributions stay assembled in their homes (the managed node's first start measures that:
  bench/node_start.py). A second build follows: same inputs, reused.
- `sizes`: each image's size as Docker reports it.
- `start`: each engine's container, alone, from `docker run` to a yellow `/_cluster/health` on
  127.0.0.1:PORT (security off, heap 1g, no ulimits asked).

Needs a Docker daemon (scripts/docker-host.sh start).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.provenance import provenance
from bench.report import write_json

HEALTH = "/_cluster/health?wait_for_status=yellow&timeout=1s"


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed: {done.stdout}{done.stderr}")
    return done.stdout + done.stderr


def timed_build() -> dict:
    began = time.monotonic()
    output = _run(sys.executable, "-m", "sparse_mm.cli", "image", "build")
    # the machine's apt source stays out of the record (no mirror is written in the repository)
    lines = [re.sub(r"\b\w+://\S+", "<apt source>", line) for line in output.splitlines()]
    return {"wall_s": round(time.monotonic() - began, 1), "output": lines}


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{HEALTH}", timeout=5) as answer:
            return json.load(answer).get("status") in ("yellow", "green")
    except (OSError, ValueError, urllib.error.HTTPError):
        return False


def timed_start(spec, port: int, timeout: float = 600.0) -> dict:
    heap = {"opensearch": "OPENSEARCH_JAVA_OPTS", "elasticsearch": "ES_JAVA_OPTS"}[spec.engine]
    began = time.monotonic()
    container = _run(
        "docker", "run", "-d", "-p", f"127.0.0.1:{port}:9200",
        "-e", "discovery.type=single-node", "-e", "DISABLE_SECURITY_PLUGIN=true",
        "-e", f"{heap}=-Xms1g -Xmx1g", spec.tag,
    ).strip()  # fmt: skip
    try:
        while not _healthy(port):
            if time.monotonic() - began > timeout:
                raise SystemExit(f"{spec.tag} not healthy after {timeout:.0f} s")
            time.sleep(0.5)
        return {"image": spec.tag, "ready_s": round(time.monotonic() - began, 1)}
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


def remove_images(tags: list[str]) -> None:
    present = [t for t in tags if _run("docker", "image", "ls", "-q", t).strip()]
    if present:
        _run("docker", "rmi", *present)


def main(argv: list[str] | None = None) -> None:
    from indexing.images.base import base_tag, system_source
    from indexing.images.docker import image_size
    from indexing.images.spec import SPECS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9240, help="HTTP port (free)")
    parser.add_argument("--cold", action="store_true", help="remove the sparse-mm images first")
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    base = base_tag(system_source())
    if args.cold:
        remove_images([*(s.tag for s in SPECS.values()), base])
    first, again = timed_build(), timed_build()
    sizes = {tag: image_size(tag) for tag in (*(s.tag for s in SPECS.values()), base)}
    starts = [timed_start(spec, args.port) for spec in SPECS.values()]
    kind = "cold" if args.cold else "as found"
    print(f"build ({kind}) {first['wall_s']} s, again {again['wall_s']} s")
    for tag, size in sizes.items():
        print(f"{tag}: {size / 1e6:.0f} MB")
    for start in starts:
        print(f"{start['image']}: ready in {start['ready_s']} s")
    if args.json:
        report = {
            **provenance(argv, prog="python -m bench.containers"),
            # what was measured: the images of these engine versions (no model, no data)
            "engine": {s.engine: {"version": s.version, "image": s.tag} for s in SPECS.values()},
            "build": {"cold": args.cold, "first": first, "again": again},
            "sizes_bytes": sizes,
            "start": starts,
        }
        write_json(report, args.json)


if __name__ == "__main__":
    main()

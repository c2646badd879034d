"""Managed node start times:
`python -m tools.recorders.node_start [--port 9280] [--repeats 2] [--json F]`.

In a fresh home folder (deleted afterwards), times `sparse-mm opensearch start` as a user
sees it, from the command to its return:

- `assemble`: nothing assembled in the home, the artifacts already in Maven's cache (or, without
  `mvn`, downloaded: the record says which): resolving them into the home, assembling the
  distribution and the modules, starting the node;
- `later`: the node stopped and started again on the assembled distribution;
- `running`: `start` while the node runs (it returns at once).

A first start with an empty Maven cache is not measured: it is the download, and depends on the
network. The node runs with the command's defaults (heap 1g).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sparse_mm.provenance import engine_record, provenance, write_json

READY = re.compile(r"ready in ([0-9.]+)s")


def _command(*args: str) -> tuple[float, str]:
    """Run `sparse-mm ARGS` with this interpreter and this checkout's code; wall seconds and
    output. Fails loudly if the command fails."""
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sparse_mm.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"`sparse-mm {' '.join(args)}` failed: {done.stdout}{done.stderr}")
    return seconds, done.stdout + done.stderr


def _timed_start(home: Path, port: int) -> dict:
    seconds, output = _command("opensearch", "start", "--port", str(port), "--home", str(home))
    ready = READY.search(output)
    return {
        "wall_s": seconds,
        "reported_ready_s": float(ready.group(1)) if ready else None,
        "output": output.splitlines(),
    }


def measure(port: int, repeats: int, parent: Path | None = None) -> list[dict]:
    runs = []
    for _ in range(repeats):
        home = Path(tempfile.mkdtemp(prefix="sparse-mm-node-start-", dir=parent))
        home.chmod(0o755)
        try:
            assemble = _timed_start(home, port)
            running = _timed_start(home, port)
            _command("opensearch", "stop", "--port", str(port), "--home", str(home))
            later = _timed_start(home, port)
            _command("opensearch", "stop", "--port", str(port), "--home", str(home))
        finally:
            subprocess.run(
                [sys.executable, "-m", "sparse_mm.cli", "opensearch", "stop", "--home", str(home)],
                capture_output=True,
                check=False,
            )
            shutil.rmtree(home, ignore_errors=True)
        runs.append({"assemble": assemble, "running": running, "later": later})
    return runs


def main(argv: list[str] | None = None) -> None:
    from indexing.opensearch.node import OPENSEARCH_VERSION

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9280, help="HTTP port (free)")
    parser.add_argument("--repeats", type=int, default=2, help="fresh homes, one after another")
    parser.add_argument(
        "--parent", type=Path, default=None, help="where the fresh homes go [default: tmp]"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    runs = measure(args.port, args.repeats, args.parent)
    for kind in ("assemble", "later", "running"):
        walls = ", ".join(f"{r[kind]['wall_s']:.1f}" for r in runs)
        print(f"{kind:<9} wall s: {walls}")
    if args.json:
        report = {
            **provenance(argv, prog="python -m tools.recorders.node_start"),
            "engine": engine_record(
                {
                    "name": "opensearch",
                    "version": OPENSEARCH_VERSION,
                    "maven": shutil.which("mvn") is not None,
                }
            ),
            "runs": runs,
        }
        write_json(report, args.json)


if __name__ == "__main__":
    main()

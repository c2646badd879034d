"""The README's synthetic results table, in one command:
`python -m tools.recorders.synthetic_results`.

Runs, in this process, exactly the README's four commands (seed and sizes as given):

    sparse-mm data synth --out WORK/syn20k --images 20000
    sparse-mm train --data WORK/syn20k --config training/configs/synthetic.json --out WORK/m-joint
    sparse-mm train ... --method d2s --out WORK/m-d2s
    sparse-mm eval --model WORK/m-<method> --data WORK/syn20k --json WORK/m-<method>/test.json

and writes, per method, `OUT/<method>.json`: the `sparse-mm eval --json` output under
`metrics`, the training run's summary (epochs run, best epoch, wall seconds, the per-epoch
log) under `train`, the commands under `steps`, and the provenance of sparse_mm.provenance (git
describe, the trained model's sha256 and training provenance, the data recipe, the machine).
The models stay in WORK (not committed: this command reproduces them). About 20-30 minutes on
two CPU cores. Refuses to write into bench/results/ from a work tree with uncommitted changes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from sparse_mm.provenance import (
    RESULTS_DIR,
    data_record,
    git_describe,
    guard_results,
    provenance,
    write_json,
)

CONFIG = "training/configs/synthetic.json"
METHODS = ("joint", "d2s")


def _run(args: list[str]) -> float:
    """One `sparse-mm` command in this process; returns its wall seconds."""
    from sparse_mm.cli import main

    print("$ sparse-mm " + " ".join(args), flush=True)
    began = time.monotonic()
    main.main(args=args, prog_name="sparse-mm", standalone_mode=False)
    return time.monotonic() - began


def _train_summary(model_dir: Path, seconds: float) -> dict:
    log = [
        json.loads(line)
        for line in (model_dir / "train_log.jsonl").read_text().splitlines()
        if line.strip()
    ]
    best = [r["epoch"] for r in log if r.get("best")]
    return {
        "epochs_run": len(log),
        "best_epoch": best[-1] if best else None,
        "wall_seconds": seconds,
        "log": log,
    }


def produce(work: Path, out: Path, images: int, seed: int, methods=METHODS) -> list[Path]:
    # The code measured is the tree as it is now: the first result written into bench/results/
    # must not make the next one look measured on a dirty tree. Fail before the training.
    measured_at = git_describe()
    guard_results({"git": measured_at}, out / "check.json")
    data = work / f"syn{images // 1000}k"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    steps = [f"sparse-mm data synth --out {data} --images {images} --seed {seed}"]
    seconds = {
        "data": _run(
            ["data", "synth", "--out", str(data), "--images", str(images), "--seed", str(seed)]
        )
    }
    written = []
    for method in methods:
        model = work / f"m-{method}"
        train = [
            "train",
            "--data",
            str(data),
            "--config",
            CONFIG,
            "--method",
            method,
            "--out",
            str(model),
        ]
        evaluate = [
            "eval",
            "--model",
            str(model),
            "--data",
            str(data),
            "--json",
            str(model / "test.json"),
        ]
        train_s = _run(train)
        eval_s = _run(evaluate)
        record = {
            **provenance(
                prog="python -m tools.recorders.synthetic_results",
                model=model,
                data=data_record(data),
            ),
            "git": measured_at,
            "method": method,
            "steps": [*steps, "sparse-mm " + " ".join(train), "sparse-mm " + " ".join(evaluate)],
            "seconds": {**seconds, "train": train_s, "eval": eval_s},
            "train": _train_summary(model, train_s),
            "metrics": json.loads((model / "test.json").read_text()),
        }
        path = out / f"{method}.json"
        write_json(record, path)
        written.append(path)
        print(f"wrote {path}", flush=True)
    return written


def main(argv: list[str] | None = None) -> None:
    from sparse_mm.demo import cache_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--work",
        type=Path,
        default=cache_dir() / "synthetic-results",
        help="folder for the corpus and the models (replaced)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "synthetic")
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (data synth's default)")
    parser.add_argument(
        "--method",
        choices=METHODS,
        action="append",
        default=None,
        help="only this method (repeatable) [default: both]",
    )
    args = parser.parse_args(argv)
    produce(args.work, args.out, args.images, args.seed, tuple(args.method or METHODS))


if __name__ == "__main__":
    main()

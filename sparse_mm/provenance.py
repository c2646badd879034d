"""Where a results JSON comes from: one record shared by every measurement the project writes.

`provenance(...)` returns the keys a results JSON carries at its top level:

    {"command": "sparse-mm bench ...",        # as typed (shell-quoted argv)
     "argv": [...],                           # the same, as a list
     "git": "17588a0" | "17588a0-dirty",      # `git describe --always --dirty`
     "created": "2026-11-29T21:30:00+0000",
     "machine": {...},                        # sparse_mm.machine.machine()
     "model": {"path", "sha256": {file: digest}, "w1", "w2", "vocab_size", "dense_dim",
               "provenance": {...}},          # the model directory's training provenance
     "data": {"path", "recipe": {...}, "vocab_size", ...},   # when a dataset is involved
     "engine": {"name", "version", ..., "index": {...}}}    # when an engine is involved

`write_json` writes every results JSON (atomically: a crash mid-write leaves the previous
file) and refuses to write such a record into bench/results/ when the tree it was measured on
was dirty (or unknown), unless SPARSE_MM_ALLOW_DIRTY=1, which marks the JSON loudly instead
(and tests/unit/test_readme_measurements.py then fails on it): a committed report must be
reproducible from a commit.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from sparse_mm.atomic import write_text_atomic
from sparse_mm.checkpoint import sha256_file

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
# Committed records: written only from a clean commit (guard_results).
GUARDED_DIRS = (RESULTS_DIR, REPO / "sparse_mm" / "demo")
# Keys every results JSON carries (tests/unit/test_provenance.py checks the committed ones).
REQUIRED_KEYS = ("command", "argv", "git", "created", "machine")
ALLOW_DIRTY_ENV = "SPARSE_MM_ALLOW_DIRTY"
# Files of a model directory that make the model what it is (weights, vocabulary, config).
MODEL_FILES = ("*.safetensors", "vocab.txt", "config.json", "serving.json")


def git_describe(cwd: Path = REPO) -> str | None:
    """`git describe --always --dirty` of the checkout at `cwd`; None outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def is_clean(describe: str | None) -> bool:
    return describe is not None and not describe.endswith("-dirty")


def model_record(model_dir: Path) -> dict:
    """A model directory: its path, the sha256 of its weights, vocabulary, config and serving
    weights, its scoring weights and sizes, and the training provenance its config.json
    carries."""
    model_dir = Path(model_dir)
    files = sorted({p for pattern in MODEL_FILES for p in model_dir.glob(pattern)})
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    heads = config.get("heads", {})
    serving_file = model_dir / "serving.json"  # tuned serving weights, when present
    serving = json.loads(serving_file.read_text(encoding="utf-8")) if serving_file.exists() else {}
    return {
        "path": _shown(model_dir),
        "sha256": {p.name: sha256_file(p) for p in files},
        # the weights the integrated score is served with (serving.json, else config.json)
        "w1": serving.get("w1", config.get("w1")),
        "w2": serving.get("w2", config.get("w2")),
        "training_w1_w2": [config.get("w1"), config.get("w2")],
        "vocab_size": heads.get("vocab_size"),
        "dense_dim": heads.get("dense_dim"),
        "provenance": config.get("provenance", {}),
    }


def data_record(data_dir: Path | None = None, **recipe) -> dict:
    """A dataset: its folder, its generating recipe (synthetic.json, written by `data synth`)
    and its vocabulary size; keyword arguments describe data made without a folder (a
    synthetic collection generated in memory: seed, sizes, ...)."""
    out: dict = {"path": _shown(data_dir) if data_dir is not None else None}
    if data_dir is not None:
        data_dir = Path(data_dir)
        recipe_file = data_dir / "synthetic.json"
        if recipe_file.exists():
            out["recipe"] = json.loads(recipe_file.read_text(encoding="utf-8"))
        vocab = data_dir / "vocab.txt"
        if vocab.exists():
            out["vocab_size"] = sum(1 for line in vocab.open(encoding="utf-8") if line.strip())
        meta = data_dir / "dataset_meta.json"
        if meta.exists():
            out["meta_sha256"] = sha256_file(meta)
    if recipe:
        out.setdefault("recipe", {}).update(recipe)
    return out


def engine_record(info: dict, index_body: dict | None = None) -> dict:
    """The engine (bench.engine.engine_info's answer) and the index it was measured on: the
    create-index body's settings and mapping parameters."""
    out = dict(info)
    if index_body is not None:
        out["index"] = index_body
    return out


def command_line(
    argv: list[str] | str | None = None, prog: str | None = None
) -> tuple[str, list[str]]:
    """The command as typed: `prog` (e.g. "python -m tools.load") and its arguments (a list,
    or one shell-quoted string)."""
    if isinstance(argv, str):
        argv = shlex.split(argv)
    args = list(sys.argv[1:] if argv is None else argv)
    prog = prog or Path(sys.argv[0]).name
    return f"{prog} {shlex.join(args)}".strip(), [*shlex.split(prog), *args]


def provenance(
    argv: list[str] | str | None = None,
    *,
    prog: str | None = None,
    model: Path | None = None,
    data: dict | None = None,
    engine: dict | None = None,
    cwd: Path = REPO,
) -> dict:
    """The top-level keys of a results JSON (module doc). `argv` defaults to sys.argv[1:];
    `model` is a model directory, `data` a `data_record`, `engine` an `engine_record`."""
    from sparse_mm.machine import machine

    command, full = command_line(argv, prog)
    out = {
        "command": command,
        "argv": full,
        "git": git_describe(cwd),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
    }
    if model is not None:
        out["model"] = model_record(model)
    if data is not None:
        out["data"] = data
    if engine is not None:
        out["engine"] = engine
    return out


def guard_results(report: dict, path: Path, guarded=GUARDED_DIRS) -> dict:
    """Refuse a report measured on a dirty (or unknown) tree when it is written into one of
    the `guarded` folders (bench/results/, the demo model); with SPARSE_MM_ALLOW_DIRTY=1 mark
    it loudly instead. Returns the report to write (marked or not)."""
    from sparse_mm.errors import ConfigError

    target = Path(path).resolve()
    inside = any(target.is_relative_to(Path(d).resolve()) for d in guarded)
    if not inside or is_clean(report.get("git")):
        return report
    state = report.get("git") or "no git provenance"
    if os.environ.get(ALLOW_DIRTY_ENV) != "1":
        raise ConfigError(
            f"refusing to write {path}: it was measured on a work tree that is not a clean "
            f"commit ({state}); commit first and re-run, or set {ALLOW_DIRTY_ENV}=1 to write "
            "it marked as not reproducible"
        )
    return {
        "WARNING": f"NOT REPRODUCIBLE: measured on a dirty or unknown work tree ({state})",
        **report,
    }


def provenance_problems(record: object) -> list[str]:
    """What keeps a committed results JSON from being reproducible: missing provenance keys, a
    dirty or unknown `git`, a `stale` or `WARNING` mark, no machine, a model without its path
    and weights digest, inputs without their recipe. Empty when the record is complete."""
    if not isinstance(record, dict):
        return ["not a JSON object"]
    problems = [f"no {k!r}" for k in REQUIRED_KEYS if k not in record]
    if not is_clean(record.get("git")):
        problems.append(f"git {record.get('git')!r} is not a clean commit")
    problems += [f"marked {k!r}" for k in ("stale", "WARNING") if k in record]
    machine = record.get("machine")
    if not (isinstance(machine, dict) and machine.get("cpu") and machine.get("cores")):
        problems.append("no machine (cpu, cores)")
    if "model" in record:
        model = record["model"] if isinstance(record["model"], dict) else {}
        digests = model.get("sha256") or {}
        weights = [h for name, h in digests.items() if name.endswith(".safetensors")]
        if not model.get("path") or not weights or any(len(str(h)) != 64 for h in weights):
            problems.append("a model without its path and weights sha256")
    if not _inputs(record) and ("model" in record or "engine" not in record):
        problems.append("no data recipe or workload (what was measured on)")
    return problems


def _inputs(record: dict) -> list[dict]:
    """The recorded inputs: `data` and `workload` with a recipe (or a generated workload's
    description), at the top level or per run."""
    runs = [r for r in record.get("runs") or [] if isinstance(r, dict)]
    found = [record.get("data"), record.get("workload"), *(r.get("workload") for r in runs)]
    return [
        x
        for x in found
        if isinstance(x, dict) and (x.get("recipe") or x.get("name") or x.get("path"))
    ]


def write_json(report: dict, path: Path) -> None:
    """Every results JSON is written here: strict JSON, atomically (temporary file, then one
    rename), and refused in bench/results/ unless measured at a clean commit (guard_results)."""
    path = Path(path)
    report = guard_results(report, path)
    write_text_atomic(path, json.dumps(_finite(report), indent=2) + "\n")


def _finite(value):
    """NaN and infinities become null: strict JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _shown(path: Path) -> str:
    """A path as recorded: relative to the repository when inside it, absolute otherwise."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)

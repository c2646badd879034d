"""One benchmark report made in pieces: `sparse-mm bench ... --report FOLDER --append` adds its
runs to the `<engine>.json` already in FOLDER, so a long command (every workload at 10k, 100k
and 1M) can be split across sessions, e.g. `--sizes 10k,100k` first, then
`--sizes 1M --workload lsr-30k --append`, then `--sizes 1M --workload model --append`.

Pieces merge only when they measured the same thing with the same code: the same clean
`git describe`, the same recipe (seed, queries, clients, timing budgets, grid: `recipe`), the
same model weights and the same engine version; and no (workload label, N) twice. The merged
report keeps every piece's command (`pieces`), its phase timings, and the runs in order.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from indexing.registry import engine_names
from sparse_mm.errors import ConfigError
from sparse_mm.provenance import is_clean


def piece_record(report: dict) -> dict:
    """What a report says about the command that made it (one entry of `pieces`)."""
    return {
        "command": report.get("command"),
        "created": report.get("created"),
        "runs": [_key(r) for r in report.get("runs", [])],
    }


def _key(run: dict) -> list:
    workload = run.get("workload") or {}
    return [workload.get("label") or workload.get("name"), run.get("n_docs")]


def _model(report: dict) -> tuple:
    model = report.get("model") or {}
    return (model.get("weights_sha256") or model.get("sha256"), model.get("path"))


def check_mergeable(old: dict, new: dict, where: str) -> None:
    """Raise ConfigError (one line) when `new` cannot be appended to `old`."""
    git_old, git_new = old.get("git"), new.get("git")
    if not (is_clean(git_old) and is_clean(git_new)):
        raise ConfigError(
            f"--append: {where} was made at git {git_old}, this run at {git_new}; pieces merge "
            "only at a clean checkout (commit first)"
        )
    if git_old != git_new:
        raise ConfigError(
            f"--append: {where} was made at git {git_old}, this run is at {git_new}; pieces "
            "of one report must come from the same commit"
        )
    if old.get("recipe") != new.get("recipe"):
        diff = sorted(
            k
            for k in set(old.get("recipe") or {}) | set(new.get("recipe") or {})
            if (old.get("recipe") or {}).get(k) != (new.get("recipe") or {}).get(k)
        )
        raise ConfigError(
            f"--append: {where} used another recipe ({', '.join(diff) or 'none recorded'} "
            "differ); rerun with the same options"
        )
    if _model(old) != _model(new):
        raise ConfigError(f"--append: {where} measured another model ({_model(old)[1]})")
    v_old = (old.get("engine") or {}).get("version")
    v_new = (new.get("engine") or {}).get("version")
    if v_old != v_new:
        raise ConfigError(f"--append: {where} measured engine version {v_old}, this run {v_new}")
    done = {tuple(_key(r)) for r in old.get("runs", [])}
    again = [k for k in (tuple(_key(r)) for r in new.get("runs", [])) if k in done]
    if again:
        label, n = again[0]
        raise ConfigError(f"--append: {where} already holds {label} at N = {n:,}")


def merge(old: dict, new: dict, where: str = "the report") -> dict:
    """`old` with `new`'s runs, phases and piece appended (both unchanged); refuses as
    check_mergeable does. `scale_fit` and `targets` are the caller's to recompute."""
    check_mergeable(old, new, where)
    out = copy.deepcopy(old)
    out.setdefault("pieces", [piece_record(old)])
    out["pieces"].append(piece_record(new))
    out["runs"] = [*old.get("runs", []), *copy.deepcopy(new.get("runs", []))]
    out["phases"] = [*old.get("phases", []), *copy.deepcopy(new.get("phases", []))]
    return out


def run_recipe(opts, *, seed: int, n_queries: int, lsr_grid_size: int) -> dict:
    """The options that decide what a run measures: pieces of one report must share them."""
    from dataclasses import asdict

    return {
        "seed": seed,
        "queries": n_queries,
        "clients": list(opts.clients),
        "ingest_clients": opts.ingest_clients,
        "batch": opts.batch,
        "devices": list(opts.devices),
        "timing_queries": opts.timing_queries,
        "qps_seconds": opts.qps_seconds,
        "grid_queries": opts.grid_queries,
        "grid": [asdict(p) for p in opts.grid],
        "lsr_grid_size": lsr_grid_size,
        "reuse_index": opts.reuse_index,
        "index_graph": opts.index_settings.graph,
    }


def earlier_pieces(
    folder: Path, engines: dict, model, recipe: dict, items, argv, settings=None
) -> dict:
    """{engine: report} already in `folder`, checked against this run before it starts (same
    clean commit, recipe, model, engine version; none of its (workload, N) measured yet); the
    folder's other engines' reports too (unchanged: report.md keeps comparing them)."""
    from bench.run import report_header

    found = {}
    for name, client in engines.items():
        path = folder / f"{name}.json"
        if not path.exists():
            continue
        old = json.loads(path.read_text(encoding="utf-8"))
        new = report_header(client, model, argv, settings=settings)
        new["recipe"] = recipe
        new["runs"] = [{"workload": {"label": i.label}, "n_docs": i.n_docs} for i in items]
        check_mergeable(old, new, str(path))
        found[name] = old
    if not found:
        raise ConfigError(f"--append: {folder} holds no report of {', '.join(engines)}")
    for path in sorted(folder.glob("*.json")):
        if path.stem in engine_names() and path.stem not in found:
            found[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    return found


def merged(old: dict | None, new: dict) -> dict:
    from bench.targets import check_targets, scale_fits

    if old is None:
        return new
    out = merge(old, new)
    out["scale_fit"] = scale_fits(out["runs"])
    out["targets"] = check_targets(out["runs"])
    return out

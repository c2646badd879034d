"""The README's "A new model without downtime" examples, recorded:
`python -m tools.recorders.lifecycle_examples --url URL --json FILE`.

In a fresh folder (WORKDIR, default /tmp/sparse-mm-photos: its paths show in the outputs) it
makes `photos-data`, the demo corpus with two metadata fields of its own in the meta file
(`licence`: cc-by, cc0 or all-rights-reserved, and `year`: 1995-2024, drawn per image with a
fixed seed), and copies training/configs/synthetic.json (the demo model's configuration)
there, then runs, against the OpenSearch at URL, with this checkout's code:

    sparse-mm ingest --data photos-data --alias photos
    sparse-mm train --data photos-data --config synthetic.json --epochs 3 --seed 1 --out model-b
    sparse-mm ingest --data photos-data --model model-b --alias photos
    sparse-mm query "a dog on a beach" --index photos -k 3           (refused: another model)
    sparse-mm query "a dog on a beach" --index photos --model model-b -k 3 \\
        --filter licence=cc-by --filter 'year>=2015'
    sparse-mm delete --index photos --id ID
    sparse-mm indices

after deleting what an earlier recording left (the alias `photos` and its indices), and writes
each command with its output, and the provenance record, to `--json`
(bench/results/lifecycle_examples.json, rendered into the README by
tools.recorders.readme_tables).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
from pathlib import Path

from sparse_mm.provenance import data_record, guard_results, provenance, write_json
from tools.recorders.readme_examples import QUERY, run_examples

ALIAS = "photos"
LICENCES = ("cc-by", "cc0", "all-rights-reserved")
SEED = 1


def photos_data(demo: Path, out: Path) -> Path:
    """The demo corpus with `licence` and `year` in each image entry of its meta file (the
    embeddings are linked, not copied)."""
    out.mkdir(parents=True)
    for item in demo.iterdir():
        if item.name != "dataset_meta.json":
            (out / item.name).symlink_to(item.resolve())
    meta = json.loads((demo / "dataset_meta.json").read_text(encoding="utf-8"))
    draw = random.Random(SEED)
    for entry in meta["images"]:
        entry["licence"] = draw.choice(LICENCES)
        entry["year"] = draw.randint(1995, 2024)
    (out / "dataset_meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return out


def clear(url: str) -> None:
    """Remove the alias's indices and assets left by an earlier recording."""
    from indexing.client import ConnectionOptions
    from indexing.engine import connect

    engine = connect(ConnectionOptions(url=url))
    for row in engine.index_rows(f"{ALIAS}*"):
        engine.delete_index(row.name)
        engine.delete_assets(row.name)
    engine.delete_assets(ALIAS)


def main(argv: list[str] | None = None) -> None:
    from sparse_mm.demo import demo_data_dir, demo_model_dir
    from training.config import CONFIG_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("OPENSEARCH_URL"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sparse-mm-photos"))
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give --url or set OPENSEARCH_URL")
    demo = demo_data_dir()
    report = provenance(
        argv,
        prog="python -m tools.recorders.lifecycle_examples",
        model=demo_model_dir(),
        data={
            **data_record(demo),
            "metadata": f"licence from {list(LICENCES)} and year 1995-2024 per image, "
            f"random.Random({SEED}) in image order (tools.recorders.lifecycle_examples)",
        },
    )
    guard_results(report, args.json)
    shutil.rmtree(args.workdir, ignore_errors=True)
    photos_data(demo, args.workdir / "photos-data")
    clear(args.url)
    shutil.copy(CONFIG_DIR / "synthetic.json", args.workdir / "synthetic.json")

    def shown(*commands: str, refused: bool = False) -> list[dict]:
        return run_examples(args.url, args.workdir, list(commands), refused=refused)

    examples = [
        *shown(
            f"sparse-mm ingest --data photos-data --alias {ALIAS}",
            "sparse-mm train --data photos-data --config synthetic.json --epochs 3 --seed 1 "
            "--out model-b",
            f"sparse-mm ingest --data photos-data --model model-b --alias {ALIAS}",
        ),
        *shown(f'sparse-mm query "{QUERY}" --index {ALIAS} -k 3', refused=True),
        *shown(
            f'sparse-mm query "{QUERY}" --index {ALIAS} --model model-b -k 3 '
            "--filter licence=cc-by --filter 'year>=2015'",
            f"sparse-mm delete --index {ALIAS} --id 547",
            "sparse-mm indices",
        ),
    ]
    report["examples"] = examples
    write_json(report, args.json)
    for example in examples:
        print(f"$ {example['command']}")
        print("\n".join(example["output"]))


if __name__ == "__main__":
    main()

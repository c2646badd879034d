"""Train the bundled demo model: `python -m training.demo_model [--epochs N] [--record]`.

It trains on the demo corpus (sparse_mm.demo, regenerated from its recipe) with
training/configs/synthetic.json and writes float16 weights, the vocabulary and the synthetic
query encoder into sparse_mm/demo/model (a few MB, committed), then its provenance.

`--record` does not train: it evaluates the committed weights on the demo corpus' test split
(what `sparse-mm eval --model sparse_mm/demo/model` computes) and writes
sparse_mm/demo/model/provenance.json: the test metrics, the sha256 of every model file, the
data recipe, the command, `git describe` and the machine (sparse_mm.provenance's record;
refused on a work tree with uncommitted changes). tests/unit/test_demo_provenance.py checks it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from sparse_mm.checkpoint import load_model, save_model
from sparse_mm.data import load_dataset
from sparse_mm.demo import MODEL_DIR, demo_data_dir
from training.config import CONFIG_DIR, load_config
from training.evaluate import evaluate_split, format_metrics
from training.trainer import Trainer, write_query_encoder

PROVENANCE_FILE = "provenance.json"


def build(epochs: int | None = None, out: Path = MODEL_DIR) -> dict:
    data = demo_data_dir()
    config, _ = load_config(CONFIG_DIR / "synthetic.json")
    config = config.with_overrides(epochs=epochs)
    dataset = load_dataset(data)
    with tempfile.TemporaryDirectory() as tmp:
        run = Trainer(dataset, config, Path(tmp) / "run").fit()
        trained = load_model(run.out)
    save_model(out, trained.heads, trained.vocab, trained.config, dtype=torch.float16)
    write_query_encoder(data, out)
    return record(out)


def record(model_dir: Path = MODEL_DIR, argv: list[str] | None = None) -> dict:
    """Evaluate the model in `model_dir` as shipped (float16 weights, loaded as float32) on the
    demo corpus' test split and write its provenance.json; returns the test metrics."""
    # sparse_mm.provenance is the project's one provenance recorder, in the core that every
    # package may import (it imports nothing of training, indexing or bench).
    from sparse_mm.provenance import data_record, provenance, write_json

    data = demo_data_dir()
    metrics = evaluate_split(load_model(model_dir), load_dataset(data, splits=["test"]), "test")
    write_json(
        {
            **provenance(
                argv, prog="python -m training.demo_model", model=model_dir, data=data_record(data)
            ),
            "split": "test",
            "evaluated_as": "sparse-mm eval --model sparse_mm/demo/model --split test",
            "test": metrics,
        },
        Path(model_dir) / PROVENANCE_FILE,
    )
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--record",
        action="store_true",
        help="do not train: evaluate the committed weights and write their provenance.json",
    )
    args = parser.parse_args(argv)
    if args.record:
        metrics = record(MODEL_DIR, argv)
        print(f"provenance written to {MODEL_DIR / PROVENANCE_FILE}")
    else:
        metrics = build(args.epochs)
        print(f"demo model written to {MODEL_DIR}")
    print(format_metrics(metrics))


if __name__ == "__main__":
    main()

"""Train the bundled demo model: `python -m training.demo_model [--epochs N]`.

It trains on the demo corpus (sparse_mm.demo, regenerated from its recipe) with
training/configs/synthetic.json and writes float16 weights, the vocabulary and the synthetic
query encoder into sparse_mm/demo/model (a few MB, committed).
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
    shipped = load_model(out)  # what users get: float16 weights, loaded as float32
    return evaluate_split(shipped, dataset, "test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    metrics = build(args.epochs)
    print(f"demo model written to {MODEL_DIR}")
    print(format_metrics(metrics))


if __name__ == "__main__":
    main()

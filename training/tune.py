"""Serving weights for the integrated score, chosen on the validation split.

Training fixes w1, w2 for the loss, but the dense (cosine) and sparse (dot product) scores of a
trained model live on different scales, so the training weights need not rank best at serving
time. Only the ratio w2 / w1 changes the ranking: `tune_weights` keeps w1 and tries a
log-spaced grid of ratios (plus the training one), picks the best validation integrated R@1
(MRR@10 breaks ties, then closeness to the training ratio) and `sparse-mm tune-weights` stores
the result in the model's `serving.json`, apart from the training weights in `config.json`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from training.evaluate import encode_for_eval, integrated_sweep

METRICS = ("R@1", "R@5", "R@10", "MRR@10")


def ratio_grid(train_ratio: float, points: int = 31, low: float = 1e-3, high: float = 1e2):
    """Log-spaced w2 / w1 ratios from `low` to `high`, with the training ratio included."""
    grid = {float(r) for r in np.geomspace(low, high, points)}
    return sorted(grid | {train_ratio})


def tune_weights(model, dataset, split: str = "val", *, metric: str = "R@1", device="cpu") -> dict:
    """Try the ratio grid on `split`; return the record `serving.json` holds (w1, w2, ...)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    part = dataset.splits[split]
    vectors = encode_for_eval(
        model.heads,
        dataset.texts.emb[part.text_rows],
        dataset.images.emb[part.image_rows],
        part.text_to_image,
        device=device,
    )
    w1, train_ratio = model.config.w1, model.config.w2 / model.config.w1
    ratios = ratio_grid(train_ratio)
    results = integrated_sweep(vectors, [(w1, w1 * r) for r in ratios])

    def rank(i: int):
        m = results[i]
        return (m[metric], m["MRR@10"], -abs(math.log(ratios[i] / train_ratio)))

    best = max(range(len(ratios)), key=rank)
    trained = ratios.index(train_ratio)
    return {
        "w1": w1,
        "w2": w1 * ratios[best],
        "chosen_by": f"best validation integrated {metric} over w2/w1 (MRR@10 breaks ties)",
        "split": split,
        "data": str(Path(dataset.root).resolve()),
        "queries": len(part.captions),
        "metrics": results[best],
        "training_weights": {"w1": model.config.w1, "w2": model.config.w2},
        "training_weights_metrics": results[trained],
        "grid": [{"w2_over_w1": r, **m} for r, m in zip(ratios, results, strict=True)],
    }

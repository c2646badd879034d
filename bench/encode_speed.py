"""Encoding speed of the heads on CPU: `python -m bench.encode_speed [--n 100000] [--json F]`.

Random pre-projection embeddings go through SparseDenseHeads.encode (dense + sparse, CSR
output) for two vocabulary sizes: the synthetic demo's and BERT's 30,522 WordPiece terms.
Reports the median of 3 runs, images/s, and the FLOP rate of the dominant matrix products.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

from sparse_mm.model import HeadsConfig, SparseDenseHeads


def machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def measure(vocab: int, n: int, batch_size: int, repeats: int = 3) -> dict:
    heads = SparseDenseHeads(HeadsConfig(vocab_size=vocab), seed=0)
    x = torch.randn(n, 768)
    heads.encode(x[: min(n, batch_size)], "image", batch_size=batch_size)  # warm-up
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        out = heads.encode(x, "image", batch_size=batch_size)
        times.append(time.perf_counter() - began)
    seconds = statistics.median(times)
    c = heads.config
    flops = 2 * n * (c.in_dim * c.dense_dim + c.dense_dim * c.hidden_dim + c.hidden_dim * vocab)
    return {
        "vocab": vocab,
        "n": n,
        "batch_size": batch_size,
        "seconds": seconds,
        "images_per_s": n / seconds,
        "gflop_per_s": flops / seconds / 1e9,
        "terms_per_image": out.sparse.values().numel() / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--vocab", type=int, nargs="+", default=[344, 30522])
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    report = {"machine": machine(), "runs": []}
    for vocab in args.vocab:
        run = measure(vocab, args.n, args.batch_size)
        report["runs"].append(run)
        print(
            f"vocab {vocab:>6}: {run['images_per_s']:>9,.0f} images/s "
            f"({run['gflop_per_s']:.1f} GFLOP/s, {run['terms_per_image']:.0f} terms/image)"
        )
    print(json.dumps(report["machine"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()

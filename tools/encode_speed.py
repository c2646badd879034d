"""Encoding speed of the heads: `python -m tools.encode_speed [--n 100000] [--vocab 3000 30522]`.

Random pre-projection embeddings go through `SparseDenseHeads.encode` (dense + sparse, CSR
output) for each vocabulary size: by default the synthetic demo's (~3,000 terms) and BERT's
30,522 WordPiece terms. A randomly initialised head activates about half the vocabulary, which
no trained model does (and which would make the CSR output enormous), so the head is shifted to
activate `--terms` terms per image on average, like a trained sparse model.

Prints the median of `--repeats` runs in images/s, next to the bound that the matrix products
alone allow at the speed this machine multiplies matrices (measured here, not assumed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from sparse_mm.model import HeadsConfig, SparseDenseHeads
from sparse_mm.provenance import provenance, write_json


def calibrated_heads(config: HeadsConfig, terms: float, seed: int = 0) -> SparseDenseHeads:
    """Random heads whose sparse head activates `terms` terms per row on average.

    LayerNorm's normalised output is orthogonal to u = 1/sqrt(H), so giving every vocabulary
    row a component of exactly 1 along u and the LayerNorm a bias of -c u lowers every logit by
    the same c; c is the logit quantile that leaves `terms` of V positive."""
    heads = SparseDenseHeads(config, seed=seed).eval()
    head = heads.sparse_head
    u = torch.full((config.hidden_dim,), config.hidden_dim**-0.5)
    x = torch.randn(1024, config.in_dim, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        w = head.vocab.weight
        w += (1 - w @ u)[:, None] * u
        head.norm.bias.zero_()
        logits = head.logits(heads.dense(x, "image")).flatten()
        keep = max(1, min(logits.numel(), round(terms / config.vocab_size * logits.numel())))
        c = float(logits.kthvalue(logits.numel() - keep + 1).values)
        head.norm.bias.copy_(-c * u)
    return heads


def matmul_gflops(batch: int, config: HeadsConfig, repeats: int = 5) -> float:
    """Measured float32 GFLOP/s of the vocabulary product (the dominant one) at this batch."""
    a, b = torch.randn(batch, config.hidden_dim), torch.randn(config.vocab_size, config.hidden_dim)
    times = []
    with torch.inference_mode():
        a @ b.t()
        for _ in range(repeats):
            began = time.perf_counter()
            a @ b.t()
            times.append(time.perf_counter() - began)
    seconds = min(times)  # the machine's best rate: the bound to compare with
    return 2 * batch * config.hidden_dim * config.vocab_size / seconds / 1e9


def measure(vocab: int, n: int, batch_size: int, terms: float, repeats: int) -> dict:
    config = HeadsConfig(vocab_size=vocab)
    heads = calibrated_heads(config, terms)
    x = torch.randn(n, config.in_dim, generator=torch.Generator().manual_seed(7))
    heads.encode(x[: min(n, batch_size)], "image", batch_size=batch_size)  # warm-up
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        out = heads.encode(x, "image", batch_size=batch_size)
        times.append(time.perf_counter() - began)
    seconds = statistics.median(times)
    c = config
    flop = 2 * (c.in_dim * c.dense_dim + c.dense_dim * c.hidden_dim + c.hidden_dim * vocab)
    gflops = matmul_gflops(min(n, batch_size), config)
    return {
        "vocab": vocab,
        "n": n,
        "batch_size": batch_size,
        "seconds_median": seconds,
        "seconds_all": times,
        "images_per_s": n / seconds,
        "mflop_per_image": flop / 1e6,
        "achieved_gflop_per_s": flop * n / seconds / 1e9,
        "matmul_gflop_per_s": gflops,
        "matmul_bound_images_per_s": gflops * 1e9 / flop,
        "terms_per_image": out.sparse.values().numel() / n,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="images per run")
    parser.add_argument("--vocab", type=int, nargs="+", default=[3000, 30522])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--terms", type=float, default=100, help="mean active terms per image")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the report to this file")
    args = parser.parse_args(argv)
    report = {
        **provenance(argv, prog="python -m tools.encode_speed"),
        "workload": {
            "name": "random embeddings (seed 7), heads calibrated to --terms terms per image",
            "vocab_size": args.vocab,
            "n": args.n,
            "terms": args.terms,
        },
        "runs": [],
    }
    print(json.dumps(report["machine"]))
    for vocab in args.vocab:
        run = measure(vocab, args.n, args.batch_size, args.terms, args.repeats)
        report["runs"].append(run)
        print(
            f"vocab {vocab:>6}: {run['images_per_s']:>8,.0f} images/s "
            f"(median of {args.repeats}, {args.n:,} images, batch {args.batch_size}, "
            f"{run['terms_per_image']:.0f} terms/image); {run['mflop_per_image']:.1f} MFLOP/image: "
            f"matmul-only bound {run['matmul_bound_images_per_s']:,.0f} images/s "
            f"at the measured {run['matmul_gflop_per_s']:.0f} GFLOP/s"
        )
    if args.json:
        write_json(report, args.json)


if __name__ == "__main__":
    main()

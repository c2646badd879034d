"""Training speed: `python -m tools.train_speed [--pairs 500000] [--vocab 30522] [--steps 40]`.

Times the trainer's own optimisation step (`Trainer.train_step`: both projections, the shared
sparse head over the vocabulary, the joint loss, backward, AdamW) at the paper's batch size on
random embeddings held as the trainer holds them, and compares its achieved GFLOP/s with a plain
torch matrix product of the dominant shape (batch x hidden by hidden x vocabulary, forward and
backward), measured in the same run. The FLOPs of a step are counted by torch's own FLOP
counter on one real step, not estimated.

The epoch time is the median step time times the steps in an epoch over `--pairs`
caption-image pairs; with `--steps` equal to the epoch's steps (the default is fewer, to keep
a CPU run short) it is the measured epoch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sparse_mm.data import Dataset, EmbeddingTable, Split
from sparse_mm.provenance import provenance, write_json
from training.config import CONFIG_DIR, load_config
from training.trainer import Trainer


def random_dataset(folder: Path, pairs: int, vocab: int, in_dim: int = 768) -> Dataset:
    """`pairs` captions over pairs/5 images (train), 1,000 captions over 200 images (val); a
    vocabulary of `vocab` made-up tokens. Embeddings are random: speed does not depend on them."""
    g = torch.Generator().manual_seed(0)
    n_img, n_val = max(1, pairs // 5), 200
    images = torch.randn(n_img + n_val, in_dim, generator=g)
    texts = torch.randn(pairs + 5 * n_val, in_dim, generator=g)
    vocab_path = folder / "vocab.txt"
    vocab_path.write_text("".join(f"t{i}\n" for i in range(vocab)))

    def split(name: str, img0: int, n_i: int, txt0: int, n_t: int) -> Split:
        return Split(
            name,
            torch.arange(img0, img0 + n_i),
            torch.arange(txt0, txt0 + n_t),
            torch.arange(n_t) % n_i,
            [""] * n_t,
            [str(i) for i in range(img0, img0 + n_i)],
            [""] * n_i,
        )

    return Dataset(
        folder,
        "random",
        EmbeddingTable(folder / "images", [str(i) for i in range(len(images))], images),
        EmbeddingTable(folder / "texts", [str(i) for i in range(len(texts))], texts),
        {
            "train": split("train", 0, n_img, 0, pairs),
            "val": split("val", n_img, n_val, pairs, 5 * n_val),
        },
        folder / "dataset_meta.json",
        vocab_path,
    )


def step_flops(trainer: Trainer, text_rows: torch.Tensor, image_rows: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        trainer.train_step(text_rows, image_rows)
    return counter.get_total_flops()


def matmul_gflops(batch: int, hidden: int, vocab: int, device: torch.device, repeats: int) -> float:
    """GFLOP/s of the vocabulary layer's products alone: forward, and the two backward ones."""
    a = torch.randn(batch, hidden, device=device)
    w = torch.randn(vocab, hidden, device=device)
    g = torch.randn(batch, vocab, device=device)
    flop = 3 * 2 * batch * hidden * vocab
    times = []
    for _ in range(repeats + 1):
        _sync(device)
        began = time.perf_counter()
        a @ w.t()  # forward
        g @ w  # gradient of the input
        g.t() @ a  # gradient of the weight
        _sync(device)
        times.append(time.perf_counter() - began)
    return flop / statistics.median(times[1:]) / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(pairs: int, vocab: int, steps: int, device: str, batch_size: int) -> dict:
    dev = torch.device(device)
    config, _ = load_config(CONFIG_DIR / "blip-coco.json")
    config = config.with_overrides(batch_size=batch_size, epochs=1)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = random_dataset(Path(tmp), pairs, vocab)
        trainer = Trainer(dataset, config, Path(tmp) / "out", device=device, progress=False)
    order = torch.randperm(len(trainer.pair_text), generator=torch.Generator().manual_seed(1))
    batches = order[: (steps + 2) * batch_size].to(dev).split(batch_size)
    flop = step_flops(trainer, trainer.pair_text[batches[0]], trainer.pair_image[batches[0]])
    times = []
    for idx in batches[1 : steps + 1]:
        _sync(dev)
        began = time.perf_counter()
        trainer.train_step(trainer.pair_text[idx], trainer.pair_image[idx])
        _sync(dev)
        times.append(time.perf_counter() - began)
    step = statistics.median(times)
    gflops = flop / step / 1e9
    reference = matmul_gflops(batch_size, trainer.heads.config.hidden_dim, vocab, dev, 5)
    steps_per_epoch = trainer.steps_per_epoch
    return {
        "pairs": pairs,
        "vocab": vocab,
        "batch_size": batch_size,
        "device": device,
        "steps_timed": len(times),
        "steps_per_epoch": steps_per_epoch,
        "step_s_median": step,
        "step_s_all": times,
        "epoch_s": step * steps_per_epoch,
        "epoch_measured": len(times) >= steps_per_epoch,
        "gflop_per_step": flop / 1e9,
        "achieved_gflop_per_s": gflops,
        "matmul_gflop_per_s": reference,
        "fraction_of_matmul": gflops / reference,
        "amp": trainer.amp,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=500_000, help="caption-image pairs")
    parser.add_argument("--vocab", type=int, default=30522)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40, help="steps timed (median used)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None, help="also write the report to this file")
    args = parser.parse_args(argv)
    run = measure(args.pairs, args.vocab, args.steps, args.device, args.batch_size)
    report = {
        **provenance(argv, prog="python -m tools.train_speed"),
        "workload": {
            "name": "random embeddings (tools.train_speed.random_dataset, seed 0)",
            "vocab_size": args.vocab,
            "pairs": args.pairs,
            "config": "training/configs/blip-coco.json",
        },
        "run": run,
    }
    print(json.dumps(report["machine"]))
    kind = "measured" if run["epoch_measured"] else "median step x steps per epoch"
    print(
        f"{run['pairs']:,} pairs, vocab {run['vocab']:,}, batch {run['batch_size']} on "
        f"{run['device']}: step {run['step_s_median'] * 1000:.0f} ms (median of "
        f"{run['steps_timed']}), {run['gflop_per_step']:.1f} GFLOP/step -> "
        f"{run['achieved_gflop_per_s']:.1f} GFLOP/s; plain matmul of the vocabulary layer "
        f"{run['matmul_gflop_per_s']:.1f} GFLOP/s ({run['fraction_of_matmul']:.0%}); "
        f"epoch {run['epoch_s'] / 60:.1f} min ({kind}, {run['steps_per_epoch']} steps)"
    )
    if args.json:
        write_json(report, args.json)


if __name__ == "__main__":
    main()

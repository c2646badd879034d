"""The training-speed benchmark on a tiny problem: it times the trainer's real step and counts
at least the vocabulary layer's FLOPs (forward and backward, both modalities)."""

from __future__ import annotations

from tools.train_speed import measure


def test_counts_and_times_the_real_step():
    run = measure(pairs=2000, vocab=500, steps=2, device="cpu", batch_size=64)
    vocab_layer = 2 * 3 * 2 * 64 * 768 * 500  # modalities x (fwd + 2 bwd) x 2 flop x shapes
    assert run["gflop_per_step"] * 1e9 >= vocab_layer
    assert run["steps_timed"] == 2 and run["steps_per_epoch"] == 2000 // 64
    assert run["epoch_s"] == run["step_s_median"] * run["steps_per_epoch"] > 0
    assert run["matmul_gflop_per_s"] > 0 and not run["epoch_measured"]

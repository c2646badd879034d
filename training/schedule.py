"""Schedules stepped by the training loop: the L1 weight warm-up and the learning rate."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class QuadraticWarmup:
    """eta(step) = final * min(1, step / warmup_steps)^2: the regulariser's ramp from 0."""

    final: float
    warmup_steps: int
    step_count: int = 0

    @property
    def value(self) -> float:
        if self.warmup_steps <= 0:
            return self.final
        return self.final * min(1.0, self.step_count / self.warmup_steps) ** 2

    def step(self) -> None:
        self.step_count += 1

    def state_dict(self) -> dict:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])


def linear_warmup_decay(warmup_steps: int, total_steps: int):
    """LambdaLR factor: 0 -> 1 linearly over `warmup_steps`, then linearly down to 0.

    As in the reference (and the Hugging Face linear schedule) the factor is `step / warmup`:
    the first optimiser step runs at learning rate 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        remaining = max(1, total_steps - warmup_steps)
        return max(0.0, (total_steps - step) / remaining)

    return factor

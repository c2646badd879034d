"""Each loss against a direct, loop-by-loop transcription of METHOD.md's formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from training.losses import D2SLoss, JointLoss, JointLossConfig
from training.schedule import QuadraticWarmup, linear_warmup_decay

B, D, V = 4, 5, 7


def _batch(seed: int = 0, requires_grad: bool = False):
    g = torch.Generator().manual_seed(seed)
    d_img = F.normalize(torch.randn(B, D, generator=g, dtype=torch.float64), dim=1)
    d_txt = F.normalize(torch.randn(B, D, generator=g, dtype=torch.float64), dim=1)
    z_img = torch.log1p(torch.relu(torch.randn(B, V, generator=g, dtype=torch.float64)))
    z_txt = torch.log1p(torch.relu(torch.randn(B, V, generator=g, dtype=torch.float64)))
    tensors = [d_img, d_txt, z_img, z_txt]
    if requires_grad:
        tensors = [t.clone().requires_grad_(True) for t in tensors]
    return tensors


def _matrix(a, b, scale=1.0):
    return [
        [scale * sum(a[i][k] * b[j][k] for k in range(len(a[0]))) for j in range(B)]
        for i in range(B)
    ]


def _softmax(row):
    m = max(row)
    e = [math.exp(x - m) for x in row]
    return [x / sum(e) for x in e]


def _ce_rows(s):  # mean over rows of -log softmax(row)[i]
    return sum(-math.log(_softmax(s[i])[i]) for i in range(B)) / B


def _t(s):
    return [[s[j][i] for j in range(B)] for i in range(B)]


def _nce(s):
    return 0.5 * (_ce_rows(s) + _ce_rows(_t(s)))


def _kd_rows(student, teacher_rows):
    return (
        sum(
            -sum(
                p * math.log(q) for p, q in zip(teacher_rows[i], _softmax(student[i]), strict=True)
            )
            for i in range(B)
        )
        / B
    )


def _reference_joint(batch, tau, w1, w2, lam1, lam2, eta_t, eta_i, released, self_distill=True):
    d_img, d_txt, z_img, z_txt = (t.tolist() for t in batch)
    s_d = _matrix(d_img, d_txt, 1 / tau)
    s_s = _matrix(z_img, z_txt)
    s_i = [[w1 * s_d[i][j] + w2 * s_s[i][j] for j in range(B)] for i in range(B)]
    big_l = lam1 * _nce(s_d) + lam2 * _nce(s_s) + _nce(s_i)
    p_rows = [_softmax(r) for r in s_i]
    p_cols = p_rows if released else [_softmax(r) for r in _t(s_i)]

    def kd(s):
        return 0.5 * (_kd_rows(s, p_rows) + _kd_rows(_t(s), p_cols))

    big_l2 = lam1 * kd(s_d) + lam2 * kd(s_s)
    loss = 0.5 * (big_l / 2 + big_l2 / 2) if self_distill else 0.5 * (big_l / 2)
    l1_t = sum(sum(abs(x) for x in row) for row in z_txt) / B
    l1_i = sum(sum(abs(x) for x in row) for row in z_img) / B
    return loss + 0.5 * (eta_t * l1_t + eta_i * l1_i)


@pytest.mark.parametrize("released", [False, True])
@pytest.mark.parametrize("self_distill", [True, False])
def test_joint_loss_matches_the_formulas(released, self_distill):
    batch = _batch()
    cfg = JointLossConfig(
        w1=0.2, w2=0.5, lam1=0.9, lam2=0.3, self_distill=self_distill, released_transpose=released
    )
    tau = torch.tensor(0.07, dtype=torch.float64)
    out = JointLoss(cfg)(batch[0], batch[1], batch[2], batch[3], tau, 5e-4, 3e-5)
    expected = _reference_joint(batch, 0.07, 0.2, 0.5, 0.9, 0.3, 5e-4, 3e-5, released, self_distill)
    assert float(out["loss"]) == pytest.approx(expected, rel=1e-10)
    assert ("kd" in out) == self_distill


def test_released_and_correct_teachers_differ():
    batch = _batch(1)
    tau = torch.tensor(0.07, dtype=torch.float64)
    losses = [
        float(
            JointLoss(JointLossConfig(0.2, 0.5, 0.9, 0.3, released_transpose=r))(
                *batch, tau, 0.0, 0.0
            )["loss"]
        )
        for r in (False, True)
    ]
    assert abs(losses[0] - losses[1]) > 1e-6


def _teacher_grad(detach: bool) -> torch.Tensor:
    """Gradient of the KD part w.r.t. the sparse text weights: with the teacher attached, it
    also flows through softmax(S_i); detached, only through the students."""
    batch = _batch(2, requires_grad=True)
    cfg = JointLossConfig(0.2, 0.5, 0.9, 0.3, detach_teacher=detach)
    out = JointLoss(cfg)(*batch, torch.tensor(0.07, dtype=torch.float64), 0.0, 0.0)
    (grad,) = torch.autograd.grad(out["kd"], batch[3])
    return grad


def test_gradients_flow_through_the_teacher_unless_detached():
    attached, detached = _teacher_grad(False), _teacher_grad(True)
    assert not torch.allclose(attached, detached)
    # detached teacher == the KD computed on a constant copy of S_i
    batch = _batch(2, requires_grad=True)
    d_img, d_txt, z_img, z_txt = batch
    s_d = d_img @ d_txt.t() / 0.07
    s_s = z_img @ z_txt.t()
    teacher = (0.2 * s_d + 0.5 * s_s).detach()
    p_r, p_c = F.softmax(teacher, 1), F.softmax(teacher.t(), 1)

    def kd(s):
        return 0.5 * (
            -(p_r * F.log_softmax(s, 1)).sum(1).mean()
            - (p_c * F.log_softmax(s.t(), 1)).sum(1).mean()
        )

    (manual,) = torch.autograd.grad((0.9 * kd(s_d) + 0.3 * kd(s_s)) / 2, z_txt)
    assert torch.allclose(detached, manual)


def test_d2s_distils_sparse_from_frozen_dense():
    batch = _batch(3, requires_grad=True)
    tau = torch.tensor(0.07, dtype=torch.float64)
    out = D2SLoss()(*batch, tau, 1e-3, 1e-3)
    d_img, d_txt, z_img, z_txt = (t.tolist() for t in batch)
    s_d, s_s = _matrix(d_img, d_txt, 1 / 0.07), _matrix(z_img, z_txt)
    p_rows, p_cols = [_softmax(r) for r in s_d], [_softmax(r) for r in _t(s_d)]
    kd = 0.5 * (_kd_rows(s_s, p_rows) + _kd_rows(_t(s_s), p_cols))
    l1 = 0.5 * (1e-3 * sum(map(sum, z_txt)) / B + 1e-3 * sum(map(sum, z_img)) / B)
    assert out["loss"].item() == pytest.approx(kd + l1, rel=1e-10)
    out["loss"].backward()
    assert batch[0].grad is None and batch[1].grad is None  # the dense teacher gets nothing
    assert batch[3].grad is not None


def test_eta_ramps_quadratically_then_holds():
    ramp = QuadraticWarmup(final=1e-3, warmup_steps=10)
    values = []
    for _ in range(15):
        values.append(ramp.value)
        ramp.step()
    assert values[0] == 0.0
    assert values[5] == pytest.approx(1e-3 * 0.25)
    assert values[10:] == [pytest.approx(1e-3)] * 5


def test_learning_rate_warms_up_then_decays_to_zero():
    f = linear_warmup_decay(warmup_steps=4, total_steps=10)
    assert [round(f(s), 3) for s in range(11)] == [
        0.0,
        0.25,
        0.5,
        0.75,
        1.0,
        0.833,
        0.667,
        0.5,
        0.333,
        0.167,
        0.0,
    ]


def test_first_optimiser_steps_run_at_the_reference_learning_rate():
    """LambdaLR with the factor: step 0 runs at lr 0, then lr * step / warmup (reference)."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, linear_warmup_decay(4, 10))
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1 * 5 / 6])
    assert linear_warmup_decay(0, 10)(0) == 1.0  # no warm-up: full rate from the first step

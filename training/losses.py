"""The paper's losses over a batch of B aligned (caption, image) pairs.

Score matrices are (B, B) with row = image, column = text; the diagonal holds the positives.
Each loss is an `nn.Module` whose forward returns a dict of named parts; "loss" is the total to
minimise. Switches are decided at construction and passed as plain values (see METHOD.md for
the released code's behaviour and its quirks).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def info_nce(scores: Tensor) -> Tensor:
    """Mean of the cross-entropies over rows and over columns, the diagonal as target. (B, B)."""
    target = torch.arange(scores.shape[0], device=scores.device)
    return 0.5 * (F.cross_entropy(scores, target) + F.cross_entropy(scores.t(), target))


def soft_cross_entropy(student: Tensor, teacher_probs: Tensor) -> Tensor:
    """Mean over rows of -sum_j P_j log softmax(student)_j. Both (B, B)."""
    return -(teacher_probs * F.log_softmax(student, dim=1)).sum(dim=1).mean()


def distill(student: Tensor, teacher: Tensor, *, released_transpose: bool) -> Tensor:
    """KD(S, P) in both directions, averaged. `teacher` are logits (B, B).

    The second direction's students are S^T; their correct teacher is softmax(T^T). The released
    code reuses softmax(T) (rows) instead, so text j is taught image j's distribution:
    `released_transpose=True` reproduces that.
    """
    rows = F.softmax(teacher, dim=1)
    cols = rows if released_transpose else F.softmax(teacher.t(), dim=1)
    return 0.5 * (soft_cross_entropy(student, rows) + soft_cross_entropy(student.t(), cols))


def l1_regulariser(z_text: Tensor, z_image: Tensor, eta_text: float, eta_image: float) -> dict:
    """0.5 * (eta_t * mean_b ||z_text||_1 + eta_i * mean_b ||z_img||_1). Inputs (B, V) >= 0."""
    l1_text = z_text.abs().sum(dim=1).mean()
    l1_image = z_image.abs().sum(dim=1).mean()
    reg = 0.5 * (eta_text * l1_text + eta_image * l1_image)
    return {"reg": reg, "l1_text": l1_text.detach(), "l1_image": l1_image.detach()}


@dataclass(frozen=True)
class JointLossConfig:
    w1: float
    w2: float
    lam1: float
    lam2: float
    self_distill: bool = True  # False: the "without self-distillation" ablation
    detach_teacher: bool = False  # released code: gradients flow through the teacher
    released_transpose: bool = False  # released code's second-direction teacher quirk


class JointLoss(nn.Module):
    """Contrastive on dense, sparse and integrated scores + self-distillation from the
    integrated score + L1 sparsity (METHOD.md, "Loss")."""

    def __init__(self, config: JointLossConfig) -> None:
        super().__init__()
        self.config = config

    def forward(
        self,
        dense_image: Tensor,  # (B, D) unit rows
        dense_text: Tensor,  # (B, D) unit rows
        sparse_image: Tensor,  # (B, V) >= 0
        sparse_text: Tensor,  # (B, V) >= 0
        tau: Tensor,  # scalar, already clamped
        eta_text: float,
        eta_image: float,
    ) -> dict[str, Tensor]:
        c = self.config
        s_dense = dense_image @ dense_text.t() / tau
        s_sparse = sparse_image @ sparse_text.t()
        s_int = c.w1 * s_dense + c.w2 * s_sparse
        nce_dense, nce_sparse, nce_int = info_nce(s_dense), info_nce(s_sparse), info_nce(s_int)
        contrastive = (c.lam1 * nce_dense + c.lam2 * nce_sparse + nce_int) / 2
        parts = {
            "nce_dense": nce_dense.detach(),
            "nce_sparse": nce_sparse.detach(),
            "nce_int": nce_int.detach(),
            "contrastive": contrastive,
        }
        if c.self_distill:
            teacher = s_int.detach() if c.detach_teacher else s_int
            kd = (
                c.lam1 * distill(s_dense, teacher, released_transpose=c.released_transpose)
                + c.lam2 * distill(s_sparse, teacher, released_transpose=c.released_transpose)
            ) / 2
            loss = 0.5 * (contrastive + kd)
            parts["kd"] = kd
        else:
            loss = 0.5 * contrastive
        reg = l1_regulariser(sparse_text, sparse_image, eta_text, eta_image)
        parts.update(reg)
        parts["loss"] = loss + reg["reg"]
        return parts


class D2SLoss(nn.Module):
    """The D2S baseline: the sparse scores distilled from a frozen dense teacher,
    softmax(S_dense_frozen / tau), in both directions, plus the same L1 regulariser."""

    def forward(
        self,
        teacher_image: Tensor,  # (B, D) unit rows from the frozen dense projection
        teacher_text: Tensor,  # (B, D)
        sparse_image: Tensor,  # (B, V)
        sparse_text: Tensor,  # (B, V)
        tau: Tensor,
        eta_text: float,
        eta_image: float,
    ) -> dict[str, Tensor]:
        with torch.no_grad():
            teacher = teacher_image @ teacher_text.t() / tau
        s_sparse = sparse_image @ sparse_text.t()
        kd = distill(s_sparse, teacher, released_transpose=False)
        reg = l1_regulariser(sparse_text, sparse_image, eta_text, eta_image)
        return {"kd": kd, **reg, "loss": kd + reg["reg"]}


def build_loss(config) -> nn.Module:
    """The loss module of a `TrainConfig`: the paper's joint loss, or the D2S baseline's."""
    if config.method != "joint":
        return D2SLoss()
    return JointLoss(
        JointLossConfig(
            w1=config.w1,
            w2=config.w2,
            lam1=config.lam1,
            lam2=config.lam2,
            self_distill=config.self_distill,
            detach_teacher=config.detach_teacher,
            released_transpose=config.released_transpose,
        )
    )

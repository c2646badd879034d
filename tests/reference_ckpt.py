"""Checkpoints with the reference implementation's exact layout, made the way its trainer
makes them: the state dict is `state_dict()` of a module built like the reference's
LightningModule (`model` with the head layers, `temp`, and a `loss_fn` that keeps a reference
to `temp`, so the same parameter appears as `temp` and `loss_fn.temp`), inside the dict a
Lightning 2.x ModelCheckpoint writes (hyper-parameters pickled as lightning_fabric's
AttributeDict, the regulariser entries, the optimiser state...), saved without Lightning; and
the reference layers written out from such a checkpoint's tensors."""

from __future__ import annotations

import pathlib
import sys
import types

import torch
import torch.nn.functional as F
from torch import nn

from sparse_mm.importer import ATTRIBUTE_DICT

HPARAMS = {
    "w1": 0.1,
    "w2": 0.2,
    "lam1": 0.9,
    "lam2": 0.3,
    "backbone_model": "blip",
    "dataset": "coco",
    "q_reg": 5e-4,
    "d_reg": 3e-5,
    "use_amp": True,
}


class _Marker:
    """A class whose unpickling would create a file: loading must never run it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def _attribute_dict_class(monkeypatch):
    """Lightning's AttributeDict, importable under its real module path while saving."""
    module, _, name = ATTRIBUTE_DICT.rpartition(".")
    cls = type(name, (dict,), {"__module__": module})
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        monkeypatch.setitem(sys.modules, ".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    setattr(sys.modules[module], name, cls)
    return cls


class ReferenceHeads(nn.Module):
    """The reference's `model` on the weight-tied projection path: per-modality dense
    projections and one sparse head fed by the normalised dense vector (METHOD.md)."""

    def __init__(self, V: int, H: int, D: int, HS: int):
        super().__init__()
        self.text_proj = nn.Linear(H, D)
        self.vision_proj = nn.Linear(H, D)
        self.single_proj = nn.Linear(D, HS)
        self.single_vocab_layer_norm = nn.LayerNorm(HS)
        self.single_vocab_projector = nn.Linear(HS, V, bias=False)

    def forward(self, x: torch.Tensor, modality: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, H) -> dense (B, D) unit vectors and sparse (B, V) term weights."""
        proj = self.text_proj if modality == "text" else self.vision_proj
        d = F.normalize(proj(x), dim=-1)
        h = self.single_vocab_layer_norm(self.single_proj(d))
        return d, torch.log1p(torch.relu(self.single_vocab_projector(h)))


class ReferenceLoss(nn.Module):
    """The reference's loss module: it is handed the module's temperature and keeps it as an
    attribute, so PyTorch registers that one parameter a second time (`loss_fn.temp`)."""

    def __init__(self, temp: nn.Parameter, w1: float, w2: float, lam1: float, lam2: float):
        super().__init__()
        self.temp = temp
        self.w1, self.w2, self.lam1, self.lam2 = w1, w2, lam1, lam2


class ReferenceModule(nn.Module):
    """Built like the reference's LightningModule (an nn.Module here, Lightning is not
    needed): `model` holding the head layers, the learnable temperature `temp`, and `loss_fn`
    keeping a reference to `temp`. Its `state_dict()` is what the trainer saves, so every
    parameter or buffer this structure registers appears in a checkpoint made from it."""

    def __init__(self, V: int, H: int, D: int, HS: int, hparams: dict = HPARAMS):
        super().__init__()
        self.model = ReferenceHeads(V, H, D, HS)
        self.temp = nn.Parameter(torch.ones([]) * 0.07)
        keys = ("w1", "w2", "lam1", "lam2")
        self.loss_fn = ReferenceLoss(self.temp, *(hparams[k] for k in keys))

    def forward(self, x: torch.Tensor, modality: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(x, modality)


def reference_module(seed=0, *, V=40, H=24, D=8, HS=20) -> ReferenceModule:
    """A trained-looking reference module: V terms, H-d backbone embeddings, D-d dense
    vectors, HS-d sparse hidden; weights drawn from `seed`, temperature moved off its init."""
    g = torch.Generator().manual_seed(seed)
    module = ReferenceModule(V, H, D, HS)
    with torch.no_grad():
        for name, param in module.model.named_parameters():
            param.copy_(torch.randn(param.shape, generator=g) * 0.3)
            if name == "single_vocab_layer_norm.weight":
                param.add_(1.0)
            if name == "single_vocab_projector.weight":
                param.add_(0.2)  # some terms active, some not
        module.temp.fill_(0.0612)
    return module.eval()


def reference_state(seed=0, **sizes):
    """`reference_module(seed, **sizes).state_dict()`: what the reference's trainer saves
    ("model.*", "temp" and the same parameter again as "loss_fn.temp")."""
    return reference_module(seed, **sizes).state_dict()


def save_reference(path, monkeypatch, state=None, hparams=HPARAMS, **extra):
    """torch.save of the dict a Lightning 2.x ModelCheckpoint writes for the reference run
    (state: `reference_state()` unless given); Lightning's modules exist only while saving."""
    with monkeypatch.context() as m:
        attribute_dict = _attribute_dict_class(m)
        state = reference_state() if state is None else state
        step = torch.tensor(700.0)
        ckpt = {
            "epoch": 6,
            "global_step": 700,
            "pytorch-lightning_version": "2.1.3",
            "state_dict": state,
            "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 7}}}},
            "callbacks": {"ModelCheckpoint{'monitor': 'val_r1'}": {"best_model_score": step}},
            "optimizer_states": [
                {
                    "state": {
                        0: {"step": step, "exp_avg": torch.zeros_like(next(iter(state.values())))}
                    },
                    "param_groups": [
                        {
                            "lr": 5e-5,
                            "betas": (0.9, 0.999),
                            "eps": 1e-8,
                            "weight_decay": 0.05,
                            "amsgrad": False,
                            "params": [0],
                        }
                    ],
                }
            ],
            "lr_schedulers": [{"base_lrs": [5e-5], "last_epoch": 700, "_step_count": 701}],
            "hparams_name": "kwargs",
            "hyper_parameters": attribute_dict(hparams),
            "q_reg_t": torch.tensor(4.9e-4),
            "q_reg_weight_t": 1.0,
            "d_reg_t": torch.tensor(2.9e-5),
            "d_reg_weight_t": 1.0,
            **extra,
        }
        torch.save(ckpt, path)
    assert ATTRIBUTE_DICT.rpartition(".")[0] not in sys.modules  # loading runs without it
    return path


def reference_layers(state, x):
    """The reference heads, written out from the checkpoint tensors: (dense, sparse) per
    modality."""
    s = {k.removeprefix("model."): v for k, v in state.items()}
    out = {}
    for modality, proj in (("text", "text_proj"), ("image", "vision_proj")):
        d = F.normalize(x @ s[f"{proj}.weight"].T + s[f"{proj}.bias"], dim=-1)
        h = F.layer_norm(
            d @ s["single_proj.weight"].T + s["single_proj.bias"],
            s["single_vocab_layer_norm.weight"].shape,
            s["single_vocab_layer_norm.weight"],
            s["single_vocab_layer_norm.bias"],
        )
        out[modality] = (d, torch.log1p(torch.relu(h @ s["single_vocab_projector.weight"].T)))
    return out

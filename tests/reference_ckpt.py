"""Checkpoints with the reference implementation's exact layout: the dict a Lightning 2.x
ModelCheckpoint writes for the weight-tied projection run (state_dict with `model.` prefixes
and `temp`, hyper-parameters pickled as lightning_fabric's AttributeDict, the regulariser
entries, the optimiser state...), built without Lightning; and the reference layers written
out from such a checkpoint's tensors."""

from __future__ import annotations

import collections
import pathlib
import sys
import types

import torch
import torch.nn.functional as F

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


def reference_state(seed=0, *, V=40, H=24, D=8, HS=20):
    """A state dict: V terms, H-d backbone embeddings, D-d dense vectors, HS-d sparse hidden."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.3

    state = collections.OrderedDict(temp=torch.tensor(0.0612))
    state.update(
        {
            "model.text_proj.weight": r(D, H),
            "model.text_proj.bias": r(D),
            "model.vision_proj.weight": r(D, H),
            "model.vision_proj.bias": r(D),
            "model.single_proj.weight": r(HS, D),
            "model.single_proj.bias": r(HS),
            "model.single_vocab_layer_norm.weight": 1 + r(HS),
            "model.single_vocab_layer_norm.bias": r(HS),
            "model.single_vocab_projector.weight": r(V, HS) + 0.2,
        }
    )
    return state


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

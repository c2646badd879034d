"""`sparse-mm import`: checkpoints with the reference's exact layout (the dict Lightning 2.x
writes, hyper-parameters pickled as lightning_fabric's AttributeDict) become model directories
whose dense and sparse outputs equal the reference layers computed from the checkpoint's own
tensors; other layouts, other pickled classes and mismatched vocabularies are refused."""

from __future__ import annotations

import collections
import hashlib
import pathlib
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from sparse_mm.checkpoint import load_model
from sparse_mm.cli import main
from sparse_mm.errors import ModelError
from sparse_mm.importer import ATTRIBUTE_DICT, import_checkpoint

V, H, D, HS = 40, 24, 8, 20
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


def reference_state(seed=0):
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
    """torch.save of the dict a Lightning 2.x ModelCheckpoint writes for the reference run."""
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
                    "state": {0: {"step": step, "exp_avg": torch.zeros(D, H)}},
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


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("".join(f"tok{i}\n" for i in range(V)))
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
            (HS,),
            s["single_vocab_layer_norm.weight"],
            s["single_vocab_layer_norm.bias"],
        )
        out[modality] = (d, torch.log1p(torch.relu(h @ s["single_vocab_projector.weight"].T)))
    return out


def test_imported_model_reproduces_the_reference_layers(tmp_path, monkeypatch, vocab_file):
    ckpt = save_reference(tmp_path / "epoch=6.ckpt", monkeypatch)
    result = import_checkpoint(ckpt, vocab_file, tmp_path / "model")
    model = load_model(tmp_path / "model")
    x = torch.randn(16, H, generator=torch.Generator().manual_seed(1))
    expected = reference_layers(reference_state(), x)
    for modality, (dense, sparse) in expected.items():
        with torch.no_grad():
            got = model.heads(x, modality)
        torch.testing.assert_close(got.dense, dense, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got.sparse, sparse, rtol=1e-5, atol=1e-6)
        assert (sparse > 0).any() and (sparse == 0).any()  # a genuinely sparse output
        enc = model.heads.encode(x, modality)
        torch.testing.assert_close(enc.sparse.to_dense(), sparse, rtol=1e-5, atol=1e-6)
    assert (model.config.w1, model.config.w2) == (0.1, 0.2) == (result.w1, result.w2)
    assert model.config.heads.vocab_size == V and model.config.heads.in_dim == H
    source = model.config.provenance["imported_from"]
    assert source["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert source["hyper_parameters"] == HPARAMS
    assert source["epoch"] == 6 and source["temp"] == pytest.approx(0.0612)
    assert source["regularisers"]["q_reg_t"] == pytest.approx(4.9e-4)
    assert model.config.query_encoder == {"type": "none"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (  # the reference's baseline path: a DistilBERT MLM head with a bias
            lambda s: s.update({"model.single_vocab_projector.bias": torch.zeros(V)}),
            "bias .*baseline",
        ),
        (  # a non-projection variant that fine-tunes (and saves) the backbone
            lambda s: s.update({"model.text_encoder.embeddings.weight": torch.zeros(3, H)}),
            "1 weights besides the heads .*model.text_encoder.embeddings.weight.*backbone",
        ),
        (lambda s: s.pop("model.single_proj.bias"), "missing model.single_proj.bias"),
        (lambda s: s.pop("temp"), "missing temp"),
        (
            lambda s: s.update({"model.vision_proj.weight": torch.zeros(D, H + 1)}),
            r"model.vision_proj.weight has shape \(8, 25\), the other tensors imply \(8, 24\)",
        ),
        (
            lambda s: s.update({"model.text_proj.bias": torch.full((D,), float("nan"))}),
            "NaN",
        ),
    ],
)
def test_other_layouts_are_refused_naming_the_difference(
    tmp_path, monkeypatch, vocab_file, change, message
):
    state = reference_state()
    change(state)
    ckpt = save_reference(tmp_path / "x.ckpt", monkeypatch, state=state)
    with pytest.raises(ModelError, match=message) as info:
        import_checkpoint(ckpt, vocab_file, tmp_path / "model")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "model").exists()


def test_the_vocabulary_must_have_exactly_v_lines(tmp_path, monkeypatch):
    ckpt = save_reference(tmp_path / "x.ckpt", monkeypatch)
    short = tmp_path / "short.txt"
    short.write_text("".join(f"tok{i}\n" for i in range(V - 2)))
    with pytest.raises(ModelError, match=f"{V} rows but the vocabulary file has {V - 2} lines"):
        import_checkpoint(ckpt, short, tmp_path / "model")


def test_weights_come_from_the_hyper_parameters(tmp_path, monkeypatch, vocab_file):
    hparams = {k: v for k, v in HPARAMS.items() if k != "w2"}
    ckpt = save_reference(tmp_path / "x.ckpt", monkeypatch, hparams=hparams)
    with pytest.raises(ModelError, match="hyper-parameter w2 is None"):
        import_checkpoint(ckpt, vocab_file, tmp_path / "model")


def test_other_pickled_classes_are_refused_and_never_run(tmp_path, monkeypatch, vocab_file):
    marker = tmp_path / "ran"
    ckpt = save_reference(tmp_path / "x.ckpt", monkeypatch, callback=_Marker(marker))
    refusal = r"refused: Unsupported global: GLOBAL .*only tensors"
    with pytest.raises(ModelError, match=refusal) as info:
        import_checkpoint(ckpt, vocab_file, tmp_path / "model")
    assert "\n" not in str(info.value) and not marker.exists()


def test_command_line(tmp_path, monkeypatch, vocab_file):
    ckpt = save_reference(tmp_path / "blip-coco.ckpt", monkeypatch)
    runner = CliRunner()
    out = tmp_path / "model"
    ok = runner.invoke(main, ["import", str(ckpt), "--vocab", str(vocab_file), "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert "w1=0.1 w2=0.2" in ok.output and "--query-encoder" in ok.output
    again = runner.invoke(
        main, ["import", str(ckpt), "--vocab", str(vocab_file), "--out", str(out)]
    )
    assert again.exit_code != 0 and "--overwrite" in again.output
    blip = tmp_path / "blip"
    blip.mkdir()
    args = ["import", str(ckpt), "--vocab", str(vocab_file), "--out", str(out), "--overwrite"]
    ok = runner.invoke(main, [*args, "--query-encoder", str(blip)])
    assert ok.exit_code == 0, ok.output
    encoder = load_model(out).config.query_encoder
    assert encoder == {"type": "blip", "name": str(blip.resolve()), "max_length": 35}
    missing = runner.invoke(
        main,
        [
            "import",
            str(tmp_path / "nope.ckpt"),
            "--vocab",
            str(vocab_file),
            "--out",
            str(tmp_path / "m2"),
        ],
    )
    assert missing.exit_code != 0
    assert missing.output.strip().startswith("error:") and len(missing.output.splitlines()) == 1
    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    bad = runner.invoke(
        main, ["import", str(text), "--vocab", str(vocab_file), "--out", str(tmp_path / "m3")]
    )
    assert bad.exit_code != 0 and "not a readable PyTorch checkpoint" in bad.output

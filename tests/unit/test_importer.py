"""`sparse-mm import`: checkpoints with the reference's exact layout (the `state_dict()` of a
module built like the reference's LightningModule, inside the dict Lightning 2.x writes, with
hyper-parameters pickled as lightning_fabric's AttributeDict) become model directories whose
dense and sparse outputs equal that module's own outputs and the reference layers computed from
the checkpoint's tensors; other layouts, other pickled classes and mismatched vocabularies are
refused."""

from __future__ import annotations

import hashlib

import pytest
import torch
from click.testing import CliRunner

from sparse_mm.checkpoint import load_model
from sparse_mm.cli import main
from sparse_mm.errors import ModelError
from sparse_mm.importer import import_checkpoint
from tests.reference_ckpt import (
    HPARAMS,
    _Marker,
    reference_layers,
    reference_module,
    reference_state,
    save_reference,
)

V, H, D, HS = 40, 24, 8, 20


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("".join(f"tok{i}\n" for i in range(V)))
    return path


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


def test_the_reference_modules_own_checkpoint_imports_and_reproduces_its_outputs(
    tmp_path, monkeypatch, vocab_file
):
    module = reference_module(seed=5)
    state = module.state_dict()
    # the loss module's reference to the temperature: one parameter under two names
    assert module.loss_fn.temp is module.temp
    assert {"temp", "loss_fn.temp"} <= set(state)
    ckpt = save_reference(tmp_path / "epoch=6.ckpt", monkeypatch, state=state)
    import_checkpoint(ckpt, vocab_file, tmp_path / "model")
    model = load_model(tmp_path / "model")
    x = torch.randn(32, H, generator=torch.Generator().manual_seed(2))
    for modality in ("text", "image"):
        with torch.no_grad():
            dense, sparse = module(x, modality)
            got = model.heads(x, modality)
        torch.testing.assert_close(got.dense, dense, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got.sparse, sparse, rtol=1e-5, atol=1e-6)
        assert (sparse > 0).any() and (sparse == 0).any()
    assert model.config.provenance["imported_from"]["temp"] == pytest.approx(0.0612)


def test_a_loss_temperature_other_than_temp_is_refused(tmp_path, monkeypatch, vocab_file):
    state = reference_state()
    state["loss_fn.temp"] = torch.tensor(0.5)  # no longer the module's one parameter
    ckpt = save_reference(tmp_path / "x.ckpt", monkeypatch, state=state)
    with pytest.raises(ModelError, match=r"loss_fn.temp is 0.5 but temp is 0.06") as info:
        import_checkpoint(ckpt, vocab_file, tmp_path / "model")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "model").exists()


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
        (  # anything else beside the heads and the temperature
            lambda s: s.update({"loss_fn.queue": torch.zeros(3)}),
            "unexpected entries loss_fn.queue",
        ),
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

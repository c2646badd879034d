"""The BLIP text tower through `transformers`, on a tiny randomly initialised checkpoint built
locally (no download): [CLS] hidden state before BLIP's text projection, truncation, errors.

Needs the `blip` extra (transformers) installed."""

from __future__ import annotations

import pytest
import torch

from sparse_mm.checkpoint import ModelConfig, load_model, save_model
from sparse_mm.encoders import BlipTextEncoder, load_query_encoder
from sparse_mm.errors import ModelError
from sparse_mm.model import HeadsConfig, SparseDenseHeads
from sparse_mm.vocab import Vocabulary
from tests.blip_tiny import HIDDEN, build_tiny_blip


@pytest.fixture(scope="module")
def blip_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("blip")
    return folder, build_tiny_blip(folder)


def _reference(model, ids):
    ids = torch.tensor(ids)
    with torch.no_grad():
        out = model.text_encoder(input_ids=ids, attention_mask=torch.ones_like(ids))
    return out.last_hidden_state[:, 0, :]


def test_cls_state_before_the_projection(blip_dir):
    folder, model = blip_dir
    encoder = BlipTextEncoder(folder)
    assert encoder.in_dim == HIDDEN
    got = encoder.encode_texts(["a dog on the beach", "dogs"])
    assert got.shape == (2, HIDDEN) and got.dtype == torch.float32
    # [CLS] a dog on the beach [SEP]; the second text alone, without padding
    assert torch.allclose(got[0], _reference(model, [[2, 5, 6, 7, 8, 9, 3]])[0], atol=1e-5)
    assert torch.allclose(got[1], _reference(model, [[2, 6, 10, 3]])[0], atol=1e-5)


def test_long_captions_are_truncated(blip_dir):
    folder, model = blip_dir
    got = BlipTextEncoder(folder, max_length=4).encode_texts(["a dog on the beach"])
    assert torch.allclose(got[0], _reference(model, [[2, 5, 6, 3]])[0], atol=1e-5)


def test_loaded_through_a_model_config(blip_dir, tmp_path):
    folder, _ = blip_dir
    cfg = HeadsConfig(vocab_size=2, in_dim=HIDDEN, dense_dim=4, hidden_dim=4)
    desc = {"type": "blip", "name": str(folder), "max_length": 35}
    path = save_model(
        tmp_path / "m",
        SparseDenseHeads(cfg),
        Vocabulary(["x", "y"]),
        ModelConfig(cfg, 1, 1, query_encoder=desc),
    )
    encoder = load_query_encoder(load_model(path))
    assert encoder.encode_texts(["a dog"]).shape == (1, HIDDEN)


def test_a_missing_checkpoint_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match=r"the BLIP checkpoint folder .*absent does not exist"):
        BlipTextEncoder(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="cannot load the BLIP checkpoint"):
        BlipTextEncoder(tmp_path / "empty")


def test_a_hub_name_is_tried_only_when_it_looks_like_one(monkeypatch):
    from sparse_mm import encoders

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="nope-blip does not exist"):
        encoders.checkpoint_source("nope-blip")
    with pytest.raises(ModelError, match=r"model hub is unreachable \(HF_HUB_OFFLINE is set\)"):
        encoders.checkpoint_source("someone/nope-blip")
    monkeypatch.setattr(encoders, "_in_hub_cache", lambda name: True)
    assert encoders.checkpoint_source("someone/nope-blip") == "someone/nope-blip"


def test_words_that_are_not_whole_tokens_are_named_with_their_pieces(blip_dir):
    encoder = BlipTextEncoder(blip_dir[0])
    # the tiny vocabulary has "##s" but no "##es": "beaches" has no pieces that fit ([UNK])
    gaps = encoder.unknown_words("A dog on the beaches! dogs xyzzy dogs")
    assert [(g.word, g.pieces) for g in gaps] == [
        ("beaches", ("[UNK]",)),
        ("dogs", ("dog", "##s")),
        ("xyzzy", ("[UNK]",)),
    ]
    assert encoder.unknown_words("a dog on the beach") == []

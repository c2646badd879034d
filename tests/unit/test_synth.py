"""The synthetic corpus: determinism, a mediocre initial projection, a meaningful encoder."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from sparse_mm.data import load_dataset
from sparse_mm.errors import DataError
from sparse_mm.synth import SyntheticTextEncoder, SynthParams, World, synthesize


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _content(folder):
    ds = load_dataset(folder)
    meta = json.loads((folder / "dataset_meta.json").read_text())
    return ds.images.emb, ds.texts.emb, meta


def test_same_seed_same_corpus_whatever_the_chunking(tmp_path):
    synthesize(tmp_path / "a", SynthParams(seed=3, n_images=2500), chunk_images=1000)
    synthesize(tmp_path / "a2", SynthParams(seed=3, n_images=2500), chunk_images=1000)
    synthesize(tmp_path / "r", SynthParams(seed=3, n_images=2500), chunk_images=20000)
    synthesize(tmp_path / "b", SynthParams(seed=4, n_images=2500))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "a2")  # byte-identical
    img, txt, meta = _content(tmp_path / "a")
    img_r, txt_r, meta_r = _content(tmp_path / "r")
    assert torch.equal(img, img_r) and torch.equal(txt, txt_r) and meta == meta_r
    img_b, _, meta_b = _content(tmp_path / "b")
    assert not torch.equal(img, img_b) and meta != meta_b


def test_initial_projection_is_a_mediocre_retriever_on_1k_test_images(tmp_path):
    summary = synthesize(tmp_path / "c", SynthParams(seed=11, n_images=10000))
    assert 0.30 <= summary.init_dense_r1 <= 0.60
    ds = load_dataset(tmp_path / "c", splits=["test"])
    assert len(ds.splits["test"].image_ids) == 1000


def test_query_encoder_finds_dogs_on_beaches(mini_corpus, tmp_path):
    world = World(SynthParams(seed=3))
    encoder = SyntheticTextEncoder.from_corpus(mini_corpus)
    ds = load_dataset(mini_corpus)
    proj = ds.init_projection
    q = torch.nn.functional.normalize(
        encoder.encode_texts(["A dog on a beach!"]) @ proj["text_proj.weight"].T
        + proj["text_proj.bias"],
        dim=1,
    )
    img = torch.nn.functional.normalize(
        ds.images.emb @ proj["vision_proj.weight"].T + proj["vision_proj.bias"], dim=1
    )
    top = (q @ img.T)[0].topk(10).indices.tolist()
    from sparse_mm.synth import _sample_slots  # noqa: F401  (the slots are regenerated below)

    dog, beach = world.word_id["dog"], world.word_id["beach"]
    names = {i: set() for i in range(300)}
    meta_caps = {img_id: [] for img_id in ds.images.ids}
    for split in ds.splits.values():
        for cap, pos in zip(split.captions, split.text_to_image.tolist(), strict=True):
            meta_caps[split.image_ids[pos]].append(cap)
    for row, img_id in enumerate(ds.images.ids):
        words = {w for c in meta_caps[img_id] for w in c.split()}
        names[row] = words
    synonyms = {
        w
        for w, i in world.word_id.items()
        if world.word_concept[i] in (world.word_concept[dog], world.word_concept[beach])
    }
    hits = sum(bool(names[r] & synonyms) for r in top)
    base = sum(bool(names[r] & synonyms) for r in range(300)) / 300
    assert hits / 10 > base


def test_encoder_round_trip_and_unknown_words(mini_corpus, tmp_path):
    encoder = SyntheticTextEncoder.from_corpus(mini_corpus)
    desc = encoder.save(tmp_path)
    again = SyntheticTextEncoder.load(tmp_path, desc)
    a, b = encoder.encode_texts(["a red kite"]), again.encode_texts(["a red kite"])
    assert torch.allclose(a, b, atol=1e-2)  # stored in float16
    with pytest.raises(DataError, match="no known words"):
        encoder.encode_texts(["xyzzy 123"])

"""Loading the reference layout, and one clear error per kind of broken input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparse_mm.data import image_file, load_dataset, text_file, write_embeddings
from sparse_mm.errors import DataError


@pytest.fixture
def corpus(mini_corpus, tmp_path):
    dst = tmp_path / "c"
    shutil.copytree(mini_corpus, dst)
    return dst


def test_splits_relevance_and_optional_files(mini_corpus):
    ds = load_dataset(mini_corpus)
    meta = json.loads((mini_corpus / "dataset_meta.json").read_text())["images"]
    assert ds.backbone == "synth"
    assert {k: len(v.image_ids) for k, v in ds.splits.items()} == {
        "test": 30,
        "val": 30,
        "train": 216,  # split 'train' only, as the reference trains: the 24 restval left out
    }
    assert ds.train_splits == ("train",)
    test = ds.splits["test"]
    assert len(test.captions) == 5 * 30
    # caption k's relevant image is the image whose sentences contain it
    by_sentid = {str(s["sentid"]): str(img["imgid"]) for img in meta for s in img["sentences"]}
    for k in (0, 7, 149):
        assert test.image_ids[int(test.text_to_image[k])] == by_sentid[test.caption_ids[k]]
        assert ds.texts.ids[int(test.text_rows[k])] == test.caption_ids[k]
    assert ds.images.emb.shape == (300, 768) and ds.texts.emb.dtype.is_floating_point
    assert ds.vocab_path is not None and ds.word_embeddings.shape[1] == 768
    assert set(ds.init_projection) == {
        "text_proj.weight",
        "text_proj.bias",
        "vision_proj.weight",
        "vision_proj.bias",
    }


def test_restval_joins_train_only_when_asked(mini_corpus):
    meta = json.loads((mini_corpus / "dataset_meta.json").read_text())["images"]
    restval = {str(m["imgid"]) for m in meta if m["split"] == "restval"}
    assert len(restval) == 24
    default = load_dataset(mini_corpus, splits=["train"])
    assert not restval & set(default.splits["train"].image_ids)
    wide = load_dataset(mini_corpus, include_restval=True)
    assert wide.train_splits == ("train", "restval")
    assert set(wide.splits["train"].image_ids) == set(default.splits["train"].image_ids) | restval


def _rewrite(path, ids=None, emb=None, table=None):
    if table is None:
        old = pq.read_table(path)
        ids = ids if ids is not None else old.column("id").to_pylist()
        emb = emb if emb is not None else np.array(old.column("emb").to_pylist(), np.float32)
        write_embeddings(path, ids, emb)
    else:
        pq.write_table(table, path)


def _emb(path):
    return np.array(pq.read_table(path).column("emb").to_pylist(), np.float32)


CASES = {
    "wrong columns": (
        lambda c: _rewrite(
            image_file(c, "synth"), table=pa.table({"key": ["1"], "vector": [[0.0]]})
        ),
        r"expected columns 'id' and 'emb', found \['key'",
    ),
    "wrong dimension": (
        lambda c: _rewrite(text_file(c, "synth"), emb=_emb(text_file(c, "synth"))[:, :700]),
        "has 700 values, expected 768",
    ),
    "nan row": (
        lambda c: _rewrite(
            image_file(c, "synth"),
            emb=np.where(np.arange(300)[:, None] == 17, np.nan, _emb(image_file(c, "synth"))),
        ),
        r"row 17 \(id 17\) has NaN or infinite",
    ),
    "inf row": (
        lambda c: _rewrite(
            image_file(c, "synth"),
            emb=np.where(np.arange(300)[:, None] == 5, np.inf, _emb(image_file(c, "synth"))),
        ),
        r"row 5 \(id 5\)",
    ),
    "duplicate ids": (
        lambda c: _rewrite(image_file(c, "synth"), ids=[str(min(i, 298)) for i in range(300)]),
        "row 299 repeats id 298 of row 298",
    ),
    "missing id": (
        lambda c: _rewrite(
            image_file(c, "synth"),
            ids=[str(i) for i in range(299)],
            emb=_emb(image_file(c, "synth"))[:299],
        ),
        r"1 imgids have no row in .*img_embs_before_proj_synth.parquet \(first: 299\)",
    ),
    "unknown split": (
        lambda c: (c / "dataset_meta.json").write_text(
            (c / "dataset_meta.json").read_text().replace('"split":"val"', '"split":"dev"', 1)
        ),
        r"image entry 30 \(imgid 30\) has unknown split 'dev'",
    ),
    "empty file": (
        lambda c: _rewrite(
            image_file(c, "synth"),
            table=pa.table(
                {"id": pa.array([], pa.string()), "emb": pa.array([], pa.list_(pa.float32()))}
            ),
        ),
        "the file has no rows",
    ),
    "truncated file": (
        lambda c: image_file(c, "synth").write_bytes(image_file(c, "synth").read_bytes()[:5000]),
        "not a readable parquet file",
    ),
    "bad json": (
        lambda c: (c / "dataset_meta.json").write_text('{"images": [}'),
        "dataset_meta.json: invalid JSON at line 1",
    ),
    "bad projection": (
        lambda c: __import__("safetensors.torch").torch.save_file(
            {"text_proj.weight": __import__("torch").zeros(256, 10)},
            str(c / "init_projection.safetensors"),
        ),
        "missing tensors text_proj.bias",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_inputs_name_the_file_and_row(corpus, case):
    damage, message = CASES[case]
    damage(corpus)
    with pytest.raises(DataError, match=message):
        load_dataset(corpus)


def test_missing_folder_and_ambiguous_backbone(corpus, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    shutil.copy(image_file(corpus, "synth"), image_file(corpus, "blip"))
    with pytest.raises(DataError, match="found blip, synth; choose with --backbone"):
        load_dataset(corpus)

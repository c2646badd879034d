"""`sparse-mm embed` on a tiny randomly initialised BLIP checkpoint and images drawn by the
test: the parquet embeddings equal transformers' own forward pass, the files from the checkpoint
let training start where the paper starts, a re-run after an interruption embeds nothing twice
and loses nothing, and unreadable images are reported by name."""

from __future__ import annotations

import json
import sys

import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from sparse_mm import embed as embed_module
from sparse_mm.cli import main
from sparse_mm.data import load_dataset
from sparse_mm.embed import PARTS, EmbedOptions, embed_collection
from sparse_mm.embed_meta import read_meta
from sparse_mm.encoders import blip_caption
from sparse_mm.errors import ModelError
from tests.blip_tiny import WORDS, build_tiny_blip, draw_images, karpathy

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def blip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("blip")
    return folder, build_tiny_blip(folder)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    drawn = draw_images(folder, 9)
    meta = folder / "meta.json"
    meta.write_text(json.dumps(karpathy(drawn, {"test": 2, "val": 2})))
    return folder, meta, drawn


def _options(**kw):
    return EmbedOptions(**{"batch_size": 2, "progress": False, **kw})


def _table(path):
    table = pq.read_table(path)
    ids = [str(v) for v in table.column("id").to_pylist()]
    return ids, torch.tensor(table.column("emb").to_pylist())


@pytest.fixture(scope="module")
def embedded(blip, pictures, tmp_path_factory):
    out = tmp_path_factory.mktemp("embedded") / "data"
    report = embed_collection(blip[0], pictures[0], pictures[1], out, _options())
    return out, report


def test_blip_caption_cleaning():
    assert blip_caption('A Dog; on the (sunny) beach!!  "Nice"') == "a dog on the sunny beach nice"
    assert blip_caption(" ".join(["w"] * 40)) == " ".join(["w"] * 30)


def test_embeddings_equal_transformers_forward(blip, pictures, embedded):
    from PIL import Image
    from transformers import AutoImageProcessor, AutoTokenizer

    folder, model = blip
    images, meta, _ = pictures
    out, report = embedded
    assert report.finalised and report.images == 9 and report.captions == 18 and not report.bad
    img_ids, img = _table(out / "img_embs_before_proj_blip.parquet")
    txt_ids, txt = _table(out / "text_embs_before_proj_blip.parquet")
    assert sorted(img_ids) == sorted(str(1000 + i) for i in range(9))
    assert len(txt_ids) == len(set(txt_ids)) == 18
    assert img.std(dim=0).mean() > 0.05 and txt.std(dim=0).mean() > 0.01  # not degenerate
    processor = AutoImageProcessor.from_pretrained(str(folder))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    projection = {}
    from safetensors.torch import load_file

    projection = load_file(str(out / "init_projection.safetensors"))
    for entry in json.loads(meta.read_text())["images"]:
        with Image.open(images / entry["filename"]) as picture:
            pixels = processor(images=picture.convert("RGB"), return_tensors="pt")["pixel_values"]
        for sentence in entry["sentences"]:
            tokens = tokenizer(
                blip_caption(sentence["raw"]),
                padding="max_length",
                truncation=True,
                max_length=35,
                return_tensors="pt",
            )
            with torch.no_grad():
                ref = model(
                    input_ids=tokens["input_ids"],
                    attention_mask=tokens["attention_mask"],
                    pixel_values=pixels,
                    use_itm_head=False,
                )
            i = img[img_ids.index(str(entry["imgid"]))]
            t = txt[txt_ids.index(str(sentence["sentid"]))]
            torch.testing.assert_close(i, ref.last_hidden_state[0, 0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(t, ref.question_embeds[0, 0], rtol=1e-5, atol=1e-5)
            # the saved projections turn them into BLIP's own image-text similarity
            d_i = F.normalize(
                i @ projection["vision_proj.weight"].T + projection["vision_proj.bias"], dim=-1
            )
            d_t = F.normalize(
                t @ projection["text_proj.weight"].T + projection["text_proj.bias"], dim=-1
            )
            assert float(d_i @ d_t) == pytest.approx(float(ref.itm_score[0, 0]), abs=1e-5)


def test_the_backbone_files_start_training_where_the_paper_starts(blip, embedded):
    _, model = blip
    out, _ = embedded
    assert (out / "vocab.txt").read_text().splitlines() == WORDS
    ds = load_dataset(out)
    assert {k: len(v.image_ids) for k, v in ds.splits.items()} == {"test": 2, "val": 2, "train": 5}
    torch.testing.assert_close(
        ds.word_embeddings, model.text_encoder.get_input_embeddings().weight.detach()
    )
    torch.testing.assert_close(
        ds.init_projection["text_proj.weight"], model.text_proj.weight.detach()
    )
    assert json.loads((out / "query_encoder.json").read_text())["type"] == "blip"
    assert not (out / PARTS).exists()
    record = json.loads((out / "embed.json").read_text())
    assert record["images"] == 9 and record["left_out"] == []


def test_an_interrupted_run_resumes_without_duplicates_or_losses(
    blip, pictures, embedded, tmp_path, monkeypatch
):
    out = tmp_path / "data"
    real = embed_module._write_shard
    writes = []

    def crash_on_third(parts, kind, ids, vectors):
        if len(writes) == 2:
            raise KeyboardInterrupt
        writes.append(list(ids))
        real(parts, kind, ids, vectors)

    monkeypatch.setattr(embed_module, "_write_shard", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        embed_collection(blip[0], pictures[0], pictures[1], out, _options())
    assert not (out / "dataset_meta.json").exists() and len(list((out / PARTS).iterdir())) == 3
    monkeypatch.setattr(embed_module, "_write_shard", real)
    first_run = {i for batch in writes for i in batch}
    loaded = []
    real_load = embed_module._load_images

    def counting_load(batch, *args):
        loaded.extend(item.id for item in batch)
        return real_load(batch, *args)

    monkeypatch.setattr(embed_module, "_load_images", counting_load)
    report = embed_collection(blip[0], pictures[0], pictures[1], out, _options())
    assert report.finalised and report.embedded_now == 9 - 4  # two batches of two survived
    assert len(first_run) == 4 and not first_run & set(loaded) and len(loaded) == 5
    ids, emb = _table(out / "img_embs_before_proj_blip.parquet")
    ref_ids, ref = _table(embedded[0] / "img_embs_before_proj_blip.parquet")
    assert sorted(ids) == sorted(ref_ids) and len(ids) == len(set(ids))
    order = [ref_ids.index(i) for i in ids]
    torch.testing.assert_close(emb, ref[order], rtol=1e-5, atol=1e-5)
    txt_ids, _ = _table(out / "text_embs_before_proj_blip.parquet")
    assert len(txt_ids) == len(set(txt_ids)) == 18


def test_unreadable_images_are_named_and_the_rest_embedded(blip, pictures, tmp_path):
    images, meta, drawn = pictures
    folder = tmp_path / "images"
    folder.mkdir()
    for name, _ in drawn:
        (folder / name).write_bytes((images / name).read_bytes())
    (folder / drawn[3][0]).write_bytes(b"this is not an image")
    (folder / drawn[6][0]).unlink()
    out = tmp_path / "data"
    runner = CliRunner()
    args = ["embed", "--backbone", str(blip[0]), "--images", str(folder), "--meta", str(meta)]
    args += ["--out", str(out), "--batch-size", "4", "--device", "cpu"]
    failed = runner.invoke(main, args)
    assert failed.exit_code != 0
    assert f"failed: {drawn[3][0]}: unreadable image" in failed.output
    assert f"failed: {drawn[6][0]}: file not found" in failed.output
    assert "error: 2 images could not be embedded" in failed.output
    assert not (out / "dataset_meta.json").exists()
    accepted = runner.invoke(main, [*args, "--skip-bad"])
    assert accepted.exit_code == 0, accepted.output
    assert "7 images (0 embedded by this run)" in accepted.output
    ds = load_dataset(out)
    kept = {i for s in ds.splits.values() for i in s.image_ids}
    assert kept == {str(1000 + i) for i in range(9)} - {"1003", "1006"}
    assert len(ds.texts) == 14
    left_out = json.loads((out / "embed.json").read_text())["left_out"]
    assert sorted(r["file"] for r in left_out) == sorted([drawn[3][0], drawn[6][0]])


def test_jsonl_meta_groups_captions_and_assigns_stable_splits(tmp_path):
    lines = [
        {"image": f"p{i}.jpg", "caption": f"caption {i} {k}"} for i in range(20) for k in (0, 1)
    ]
    lines.append({"image": "special.jpg", "caption": "x", "split": "val"})
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    items = read_meta(path)
    assert len(items) == 21 and all(len(i.captions) == 2 for i in items[:20])
    assert items[-1].split == "val"
    splits = [i.split for i in items[:20]]
    assert splits.count("test") == 2 and splits.count("val") == 2
    shuffled = tmp_path / "s.jsonl"
    shuffled.write_text("\n".join(json.dumps(r) for r in reversed(lines)) + "\n")
    again = {i.path: i.split for i in read_meta(shuffled)}
    assert again == {i.path: i.split for i in items}  # from the names, not the line order


def test_without_transformers_the_error_names_the_extra(pictures, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ModelError, match=r"sparse-mm\[blip\]"):
        embed_collection(tmp_path, pictures[0], pictures[1], tmp_path / "o", _options())


def test_karpathy_meta_with_filepath_and_its_errors(tmp_path):
    from sparse_mm.errors import DataError

    meta = {"images": [{"imgid": 7, "filepath": "val2014", "filename": "x.jpg", "split": "test",
                        "sentences": [{"sentid": 70, "raw": "A cat."}]}]}  # fmt: skip
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(meta))
    (item,) = read_meta(path)
    assert (item.id, item.path, item.split, item.captions[0].id) == (
        "7",
        "val2014/x.jpg",
        "test",
        "70",
    )
    meta["images"][0]["split"] = "training"
    path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="unknown split 'training'"):
        read_meta(path)
    path.write_text('{"images": [')
    with pytest.raises(DataError, match="invalid JSON at line 1"):
        read_meta(path)
    lines = tmp_path / "m.jsonl"
    lines.write_text('{"image": "a.jpg", "caption": "x"}\n{"image": "b.jpg"}\n')
    with pytest.raises(DataError, match="line 2 needs a non-empty string 'caption'"):
        read_meta(lines)

"""The two ways in from the paper (issue 13), through the command line against the real engine:

- "your own images": embed (tiny BLIP checkpoint, images drawn by the test) -> train -> eval ->
  ingest -> query with the BLIP text tower;
- "the released model": import a checkpoint with the reference's exact layout -> ingest
  precomputed embeddings -> query.
The engine's scores are checked against the model's exact in-memory scores of the same query, on
each engine (the embedded images are shared; each engine's tests train and import their own)."""

from __future__ import annotations

import json
import uuid

import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from sparse_mm.checkpoint import load_model
from sparse_mm.cli import main
from sparse_mm.encoders import BlipTextEncoder
from tests.blip_tiny import EMBED_DIM, HIDDEN, WORDS, build_tiny_blip, draw_images, karpathy
from tests.engines import each_engine  # noqa: F401  (every test here runs on both engines)
from tests.reference_ckpt import reference_layers, reference_state, save_reference

pytest.importorskip("transformers")
QUERY = "a red dog on the grass"


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def own_images(tmp_path_factory):
    """The tiny BLIP checkpoint, 40 drawn images (8 test, 8 val) and their embedded folder."""
    root = tmp_path_factory.mktemp("own-images")
    blip = root / "blip"
    build_tiny_blip(blip)
    drawn = draw_images(root / "images", 40, seed=1)
    meta = root / "meta.json"
    meta.write_text(json.dumps(karpathy(drawn, {"test": 8, "val": 8})))
    out = root / "data"
    embedded = run(
        "embed", "--backbone", blip, "--images", root / "images", "--meta", meta,
        "--out", out, "--batch-size", 16, "--device", "cpu",
    )  # fmt: skip
    assert "40 images (40 embedded by this run) and 80 captions" in embedded.output
    return blip, out


@pytest.fixture
def index(engine):
    name = f"test-paper-{uuid.uuid4().hex[:8]}"
    yield name
    engine.client.indices.delete(index=name, ignore_unavailable=True)


def _ingest_and_query(engine, model_dir, data, index, tmp_path):
    """Ingest the test split with the model, then run QUERY exactly (every document scored)."""
    ingest = run(
        "ingest", "--model", model_dir, "--data", data, "--split", "test", "--index", index,
        "--url", engine.url, "--engine", engine.name, "--rejects", tmp_path / "rejects.jsonl",
    )  # fmt: skip
    assert "failed 0" in ingest.output
    out = run(
        "query", QUERY, "--model", model_dir, "--index", index, "--url", engine.url,
        "--engine", engine.name, "--exact", "--json", "-k", 8,
    )  # fmt: skip
    return json.loads(out.stdout)["hits"]


def _test_images(data):
    meta = json.loads((data / "dataset_meta.json").read_text())["images"]
    test = {str(m["imgid"]) for m in meta if m["split"] == "test"}
    table = pq.read_table(data / "img_embs_before_proj_blip.parquet")
    ids = [str(i) for i in table.column("id").to_pylist()]
    emb = torch.tensor(table.column("emb").to_pylist())
    keep = [k for k, i in enumerate(ids) if i in test]
    return [ids[k] for k in keep], emb[keep]


def _assert_engine_scores(hits, expected: dict[str, float]):
    assert hits
    for hit in hits:
        assert hit["score"] == pytest.approx(expected[hit["id"]], rel=1e-2, abs=1e-3), hit["id"]
    best = max(expected.values())
    assert hits[0]["score"] == pytest.approx(best, rel=1e-2, abs=1e-3)


def test_your_own_images(engine, own_images, index, tmp_path):
    blip, data = own_images
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({
        "train_batch_size": 8, "epochs": 2, "lr": 1e-3, "patience": 0, "q_reg": 1e-3,
        "d_reg": 1e-3, "dense_dim": EMBED_DIM, "hidden_dim": HIDDEN, "seed": 0,
    }))  # fmt: skip
    model_dir = tmp_path / "model"
    trained = run("train", "--data", data, "--config", config, "--out", model_dir)
    assert "best epoch" in trained.output
    assert "warning" not in trained.output  # initialised from the checkpoint's own weights
    model = load_model(model_dir)
    assert model.config.query_encoder["type"] == "blip"
    assert model.config.provenance["switches"]["train_splits"] == ["train"]
    report = tmp_path / "eval.json"
    run("eval", "--model", model_dir, "--data", data, "--split", "test", "--json", report)
    metrics = json.loads(report.read_text())
    assert 0 <= metrics["integrated"]["R@1"] <= 1
    assert metrics["run"]["switches"]["precision"] == "fp32"
    hits = _ingest_and_query(engine, model_dir, data, index, tmp_path)
    assert len(hits) == 8
    # the same query, exactly, in memory: the BLIP text tower, then the trained heads
    ids, images = _test_images(data)
    q = BlipTextEncoder(blip).encode_texts([QUERY])
    with torch.no_grad():
        qt, docs = model.heads(q, "text"), model.heads(images, "image")
    w1, w2 = model.serving_weights()
    scores = w1 * (docs.dense @ qt.dense[0]) + w2 * (docs.sparse @ qt.sparse[0])
    _assert_engine_scores(hits, dict(zip(ids, scores.tolist(), strict=True)))


def test_the_released_model(engine, own_images, index, tmp_path, monkeypatch):
    blip, data = own_images
    state = reference_state(seed=3, V=len(WORDS), H=HIDDEN, D=EMBED_DIM, HS=HIDDEN)
    ckpt = save_reference(tmp_path / "blip-coco.ckpt", monkeypatch, state=state)
    model_dir = tmp_path / "imported"
    imported = run(
        "import", ckpt, "--vocab", data / "vocab.txt", "--out", model_dir,
        "--query-encoder", blip,
    )  # fmt: skip
    assert "w1=0.1 w2=0.2" in imported.output
    hits = _ingest_and_query(engine, model_dir, data, index, tmp_path)
    # the reference layers, from the checkpoint's own tensors, score the same query
    ids, images = _test_images(data)
    q = BlipTextEncoder(blip).encode_texts([QUERY])
    d_q, z_q = reference_layers(state, q)["text"]
    d_i, z_i = reference_layers(state, images)["image"]
    scores = 0.1 * (d_i @ d_q[0]) + 0.2 * (z_i @ z_q[0])
    _assert_engine_scores(hits, dict(zip(ids, scores.tolist(), strict=True)))
    assert len(hits) == 8 and d_q.shape == (1, EMBED_DIM)

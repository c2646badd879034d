"""The two ways in from the paper (issue 13), through the command line against the real engine:

- "your own images": embed (tiny BLIP checkpoint, images drawn by the test) -> train -> eval ->
  ingest -> query with the BLIP text tower;
- "the released model": import a checkpoint with the reference's exact layout -> ingest
  precomputed embeddings -> query.
The engine's hits are checked against the model's exact in-memory search of the same query, with
the documents' term weights quantised as the engine stores them (sparse_mm.retriever, quantize):
the same ids in the same order, scores within 1e-4; on each engine (the embedded images are
shared; each engine's tests train and import their own). The evaluation's R@1 is pinned against
an in-memory evaluation written out here."""

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
from sparse_mm.retriever import ExactRetriever
from tests.blip_tiny import EMBED_DIM, HIDDEN, WORDS, build_tiny_blip, draw_images, karpathy
from tests.engines import each_engine  # noqa: F401  (every test here runs on both engines)
from tests.reference_ckpt import reference_module, save_reference

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


def _test_captions(data):
    """The test split's caption embeddings and, per caption, its image's position among the
    test images of `_test_images`."""
    ids, _ = _test_images(data)
    position = {image_id: i for i, image_id in enumerate(ids)}
    meta = json.loads((data / "dataset_meta.json").read_text())["images"]
    own = {
        str(s["sentid"]): position[str(m["imgid"])]
        for m in meta
        if m["split"] == "test"
        for s in m["sentences"]
    }
    table = pq.read_table(data / "text_embs_before_proj_blip.parquet")
    rows = [(k, own[str(i)]) for k, i in enumerate(table.column("id").to_pylist()) if str(i) in own]
    emb = torch.tensor(table.column("emb").to_pylist())
    return emb[[k for k, _ in rows]], torch.tensor([r for _, r in rows])


def _assert_engine_equals_exact(hits, ids, query, docs, w1, w2):
    """The engine's hits are the quantised in-memory reference's: same ids in the same order,
    each score within 1e-4. `query` and `docs` are (dense, sparse) pairs."""
    exact = ExactRetriever(ids, docs[0], docs[1], w1=w1, w2=w2, quantize=True)
    ref = exact.search(query[0], query[1], k=len(hits), mode="hybrid")
    assert [h["id"] for h in hits] == ref.ids(exact)[0]
    for hit, score in zip(hits, ref.scores[0].tolist(), strict=True):
        assert hit["score"] == pytest.approx(score, rel=1e-4, abs=1e-6), hit["id"]


def _r_at_1(heads, captions, relevant, images, w1, w2) -> dict[str, float]:
    """R@1 per mode, in memory: each caption's best test image is its own."""
    with torch.no_grad():
        t, i = heads(captions, "text"), heads(images, "image")
    dense, sparse = t.dense @ i.dense.T, t.sparse @ i.sparse.T
    modes = {"dense": dense, "sparse": sparse, "integrated": w1 * dense + w2 * sparse}
    return {m: float((s.argmax(dim=1) == relevant).double().mean()) for m, s in modes.items()}


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
    assert metrics["run"]["switches"]["precision"] == "fp32"
    ids, images = _test_images(data)
    captions, relevant = _test_captions(data)
    assert len(relevant) == 16  # 8 test images, 2 captions each
    assert (metrics["run"]["w1"], metrics["run"]["w2"]) == (model.config.w1, model.config.w2)
    expected = _r_at_1(model.heads, captions, relevant, images, model.config.w1, model.config.w2)
    for mode, r1 in expected.items():
        assert metrics[mode]["R@1"] == pytest.approx(r1, abs=1e-9), mode
    hits = _ingest_and_query(engine, model_dir, data, index, tmp_path)
    assert len(hits) == 8
    # the same query, exactly, in memory: the BLIP text tower, then the trained heads
    q = BlipTextEncoder(blip).encode_texts([QUERY])
    with torch.no_grad():
        qt, docs = model.heads(q, "text"), model.heads(images, "image")
    w1, w2 = model.serving_weights()  # what ingest and query serve with
    _assert_engine_equals_exact(hits, ids, (qt.dense, qt.sparse), (docs.dense, docs.sparse), w1, w2)


def test_the_released_model(engine, own_images, index, tmp_path, monkeypatch):
    blip, data = own_images
    module = reference_module(seed=3, V=len(WORDS), H=HIDDEN, D=EMBED_DIM, HS=HIDDEN)
    ckpt = save_reference(tmp_path / "blip-coco.ckpt", monkeypatch, state=module.state_dict())
    model_dir = tmp_path / "imported"
    imported = run(
        "import", ckpt, "--vocab", data / "vocab.txt", "--out", model_dir,
        "--query-encoder", blip,
    )  # fmt: skip
    assert "w1=0.1 w2=0.2" in imported.output
    hits = _ingest_and_query(engine, model_dir, data, index, tmp_path)
    assert len(hits) == 8
    # the reference module itself (its own forward, not the imported heads) scores the query
    ids, images = _test_images(data)
    q = BlipTextEncoder(blip).encode_texts([QUERY])
    with torch.no_grad():
        query, docs = module(q, "text"), module(images, "image")
    assert query[0].shape == (1, EMBED_DIM)
    _assert_engine_equals_exact(hits, ids, query, docs, 0.1, 0.2)

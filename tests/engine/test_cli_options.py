"""The ingest and query options through the command line, each checked against what the engine
holds or against exact in-memory search: --doc-top-k/--doc-min-weight and their report line,
--shards/--replicas, --query-top-k/--query-min-weight and their report line, --caption-id,
--exact (dense and hybrid), and an ingest whose rejected documents make it exit non-zero. On
each engine."""

from __future__ import annotations

import json
import re

import pytest
import torch

from indexing.engine import as_engine
from indexing.ingest import model_meta, source_from_dataset
from indexing.layout import SPARSE_FIELD, IndexSettings
from indexing.search import SearchOptions, encode_query, search, vectors_from_embedding
from sparse_mm.data import load_dataset
from sparse_mm.encoders import load_query_encoder
from sparse_mm.retriever import ExactRetriever
from tests.cli_run import one_line_error, run
from tests.engines import each_engine  # noqa: F401  (every test here runs on both engines)

TEXT = "a dog on the beach"


def _all_documents(client, index: str) -> list[dict]:
    body = {"size": 10_000, "query": {"match_all": {}}}
    return client.search(index=index, body=body)["hits"]["hits"]


def _query(engine, trained_model, index, *args):
    """`sparse-mm query ... --json`: (its JSON, its stderr)."""
    result = run("query", *args, "--model", trained_model.path, "--index", index,
                 "--url", engine.url, "--engine", engine.name, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def test_ingest_pruning_shards_and_replicas(engine, corpus, trained_model, index_name, tmp_path):
    source = source_from_dataset(corpus, "test")
    made = trained_model.heads.encode(source.emb, "image").sparse
    top_k = 5
    # the median weight of the images' 5th-heaviest terms: half the images keep fewer terms
    fifth = made.to_dense().topk(top_k, dim=1).values[:, -1]
    min_weight = round(float(fifth.median()), 4)
    rejects = tmp_path / "rejects.jsonl"
    result = run(
        "ingest", "--model", trained_model.path, "--data", corpus, "--split", "test",
        "--index", index_name, "--url", engine.url, "--engine", engine.name, "--doc-top-k", top_k,
        "--doc-min-weight", min_weight, "--shards", 2, "--replicas", 1, "--rejects", rejects,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    settings = engine.client.indices.get_settings(index=index_name)[index_name]["settings"]
    assert (settings["index"]["number_of_shards"], settings["index"]["number_of_replicas"]) == (
        "2",
        "1",
    )
    assert not rejects.exists()  # nothing rejected: no rejects file left behind
    engine.client.indices.refresh(index=index_name)
    stored = [d["_source"][SPARSE_FIELD] for d in _all_documents(engine.client, index_name)]
    assert len(stored) == len(source.ids)
    sizes = [len(terms) for terms in stored]
    assert max(sizes) == top_k and min(sizes) < top_k  # both options bind somewhere
    assert min(w for terms in stored for w in terms.values()) > min_weight
    # the report line counts what the engine holds and what the model made beyond it
    line = next(x for x in result.stdout.splitlines() if x.startswith("document terms:"))
    pattern = r"document terms: kept ([\d,]+), pruned ([\d,]+) \(weight ([\d.e+]+)\)(.*)"
    found = re.fullmatch(pattern, line)
    assert found, line
    kept, pruned = (int(found.group(i).replace(",", "")) for i in (1, 2))
    assert kept == sum(sizes)
    underflow = re.search(r"dropped ([\d,]+) below", found.group(4))
    dropped = int(underflow.group(1).replace(",", "")) if underflow else 0
    assert kept + pruned + dropped == int(made.values().gt(0).sum())
    kept_weight = sum(w for terms in stored for w in terms.values())
    removed = float(made.values().sum()) - kept_weight  # underflowed weights are negligible
    assert float(found.group(3)) == pytest.approx(removed, rel=1e-3)


def test_query_pruning_options_and_their_report_line(engine, cli_index, trained_model):
    name, _ = cli_index
    terms = encode_query(trained_model, load_query_encoder(trained_model), TEXT).terms
    heaviest = sorted(terms, key=lambda t: -terms[t])[:3]
    out, err = _query(engine, trained_model, name, TEXT, "--query-top-k", 3, "--mode", "sparse")
    assert err.strip() == f"query terms: kept 3, dropped {len(terms) - 3} beyond the top-k"
    assert out["hits"] and all({m["term"] for m in h["matches"]} <= set(heaviest)
                               for h in out["hits"])  # fmt: skip
    cut = sorted(terms.values())[len(terms) // 2]
    out, err = _query(engine, trained_model, name, TEXT, "--query-min-weight", cut)
    light = sum(1 for w in terms.values() if w <= cut)
    kept = len(terms) - light
    assert err.strip() == f"query terms: kept {kept}, dropped {light} below the minimum weight"
    assert all(m["query_weight"] > cut for h in out["hits"] for m in h["matches"])
    _, err = _query(engine, trained_model, name, TEXT)
    assert err == ""  # nothing pruned, nothing said


def test_caption_id_queries_with_the_stored_caption(engine, corpus, cli_index, trained_model):
    name, _ = cli_index
    dataset = load_dataset(corpus, splits=["test"])
    part = dataset.splits["test"]
    row = 7
    caption_id = part.caption_ids[row]
    out, _ = _query(engine, trained_model, name, "--caption-id", caption_id, "--data", corpus)
    vectors = vectors_from_embedding(trained_model, dataset.texts.emb[part.text_rows[[row]]])
    cfg = trained_model.config
    expected = search(engine.client, name, vectors, SearchOptions(), cfg.w1, cfg.w2)
    assert [h["id"] for h in out["hits"]] == [h.id for h in expected.hits]
    assert [h["score"] for h in out["hits"]] == pytest.approx([h.score for h in expected.hits])
    one_line_error(
        run("query", "--caption-id", "no-such", "--data", corpus, "--model", trained_model.path,
            "--index", name, "--url", engine.url, "--engine", engine.name),
        "no caption with id 'no-such'",
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_exact_scores_equal_the_exact_in_memory_scores(engine, corpus, cli_index, trained_model,
                                                       mode):  # fmt: skip
    name, _ = cli_index
    source = source_from_dataset(corpus, "test")
    encoded = trained_model.heads.encode(source.emb, "image")
    cfg = trained_model.config
    exact = ExactRetriever(source.ids, encoded.dense, encoded.sparse, w1=cfg.w1, w2=cfg.w2,
                           quantize=True)  # fmt: skip
    q = encode_query(trained_model, load_query_encoder(trained_model), TEXT)
    sparse = [0.0] * cfg.heads.vocab_size
    for term, weight in q.terms.items():
        sparse[trained_model.vocab.id_of(term)] = weight
    ref = exact.search(torch.tensor([q.dense]), torch.tensor([sparse]), k=10, mode=mode)
    out, _ = _query(engine, trained_model, name, TEXT, "--exact", "--mode", mode)
    assert [h["id"] for h in out["hits"]] == ref.ids(exact)[0]
    scores = [h["score"] for h in out["hits"]]
    assert scores == pytest.approx(ref.scores[0].tolist(), rel=1e-4, abs=1e-5)


def test_ingest_with_rejected_documents_exits_non_zero(
    engine, corpus, trained_model, index_name, tmp_path
):
    """The index maps `filename` as an integer: the engine rejects every image whose file name
    is not a number, and the ingest says how many, lists them with reasons and exits non-zero."""
    data = tmp_path / "data"
    data.mkdir()
    for path in corpus.iterdir():
        if path.name != "dataset_meta.json":
            (data / path.name).symlink_to(path)
    meta = json.loads((corpus / "dataset_meta.json").read_text())
    test = [e for e in meta["images"] if e["split"] == "test"]
    for entry in test:
        entry["filename"] = str(entry["imgid"])
    bad = {str(e["imgid"]) for e in test[:3]}
    for entry in test[:3]:
        entry["filename"] = f"not-a-number-{entry['imgid']}.jpg"
    (data / "dataset_meta.json").write_text(json.dumps(meta))
    body = as_engine(engine.client).index_body(
        trained_model.config.heads.dense_dim, IndexSettings(), model_meta(trained_model)
    )
    body["mappings"]["properties"]["filename"] = {"type": "integer"}
    engine.client.indices.create(index=index_name, body=body)
    rejects = tmp_path / "rejects.jsonl"
    result = run(
        "ingest", "--model", trained_model.path, "--data", data, "--split", "test",
        "--index", index_name, "--url", engine.url, "--engine", engine.name, "--rejects", rejects,
    )  # fmt: skip
    one_line_error(result, f"3 documents were rejected; see {rejects}")
    assert "failed 3" in result.stdout
    rejected = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert {r["id"] for r in rejected} == bad
    assert all(r["status"] == 400 and "filename" in json.dumps(r["reason"]) for r in rejected)
    engine.client.indices.refresh(index=index_name)
    assert engine.client.count(index=index_name)["count"] == len(test) - 3

"""The engine reproduces the model's scores: hybrid == w1 * cos + w2 * sparse (quantised),
checked against the exact in-memory retriever on the same vectors."""

from __future__ import annotations

import random

import pytest
import torch

from bench.metrics import K, query_parity
from indexing.codec import decode_term
from indexing.documents import Pruning
from indexing.ingest import IngestOptions, ingest, source_from_dataset
from indexing.layout import SPARSE_FIELD
from indexing.search import SearchOptions, search, vectors_from_embedding
from sparse_mm.data import load_dataset
from sparse_mm.retriever import ExactRetriever
from tests.engines import each_engine  # noqa: F401  (every test here runs on both engines)

SPLIT = "train"


@pytest.fixture(scope="module")
def indexed(engine, corpus, trained_model):
    import uuid

    client, name = engine.client, f"test-parity-{uuid.uuid4().hex[:8]}"
    source = source_from_dataset(corpus, SPLIT)
    first = ingest(client, trained_model, source, IngestOptions(index=name), progress=False)
    second = ingest(client, trained_model, source, IngestOptions(index=name), progress=False)
    encoded = trained_model.heads.encode(source.emb, "image")
    exact = ExactRetriever(
        source.ids,
        encoded.dense,
        encoded.sparse,
        w1=trained_model.config.w1,
        w2=trained_model.config.w2,
        quantize=True,
    )
    yield client, name, first, second, exact, source
    client.indices.delete(index=name, ignore_unavailable=True)


def _queries(corpus, model, n=50, seed=0):
    ds = load_dataset(corpus, splits=[SPLIT])
    rows = random.Random(seed).sample(range(len(ds.splits[SPLIT].text_rows)), n)
    emb = ds.texts.emb[ds.splits[SPLIT].text_rows[rows]]
    return [vectors_from_embedding(model, emb[i : i + 1]) for i in range(n)]


def _dense_terms(model, q):
    v = torch.zeros(model.config.heads.vocab_size)
    for t, w in q.terms.items():
        v[model.vocab.id_of(t)] = w
    return torch.tensor(q.dense)[None, :], v[None, :]


def test_ingest_twice_gives_the_same_documents(indexed):
    client, name, first, second, _, source = indexed
    assert first.created and not second.created
    assert (first.bulk.indexed, first.bulk.failed) == (len(source.ids), 0)
    assert (second.bulk.indexed, second.bulk.updated) == (0, len(source.ids))
    assert client.count(index=name)["count"] == len(source.ids) > 2000


@pytest.mark.parametrize("exact_mode", [False, True])
def test_hybrid_top10_and_scores_equal_the_exact_integrated_score(
    indexed, corpus, trained_model, exact_mode
):
    client, name, _, _, exact, _ = indexed
    cfg = trained_model.config
    same, worst = 0, 0.0
    for q in _queries(corpus, trained_model):
        got = search(
            client, name, q, SearchOptions(mode="hybrid", exact=exact_mode), cfg.w1, cfg.w2
        )
        ref = exact.search(*_dense_terms(trained_model, q), k=10, mode="hybrid")
        ref_ids = ref.ids(exact)[0]
        same += [h.id for h in got.hits] == ref_ids
        ref_score = dict(zip(ref_ids, ref.scores[0].tolist(), strict=True))
        for hit in got.hits:
            if hit.id in ref_score:
                worst = max(worst, abs(hit.score - ref_score[hit.id]) / abs(ref_score[hit.id]))
            # explanations add up to the reported score
            assert hit.dense_part + hit.sparse_part == pytest.approx(hit.score, rel=1e-4)
    assert same >= 49, f"only {same}/50 queries had the exact top-10"
    assert worst <= 1e-4


def test_sparse_top10_and_scores_equal_the_quantised_reference(indexed, corpus, trained_model):
    client, name, _, _, exact, _ = indexed
    position = {doc_id: i for i, doc_id in enumerate(exact.ids)}
    worst = 0.0
    for q in _queries(corpus, trained_model, n=20, seed=1):
        got = search(client, name, q, SearchOptions(mode="sparse", explain=False), 0.1, 0.1)
        _, terms = _dense_terms(trained_model, q)
        scores = exact.sparse_scores(terms)[0]
        ref = exact.search(*_dense_terms(trained_model, q), k=K, mode="sparse")
        ref_ids, ref_scores = ref.ids(exact)[0], ref.scores[0].tolist()
        assert ref_scores[-1] > 0, "the test needs queries that match at least k documents"
        ids = [hit.id for hit in got.hits]
        assert len(ids) == K, f"{len(ids)} hits, not {K}"
        # the same ids as exact search; where they differ, only among hits tied at the cut
        parity = query_parity(
            ids, [h.score for h in got.hits], ref_ids, ref_scores,
            {i: float(scores[position[i]]) for i in ids},
        )  # fmt: skip
        assert parity["overlap_ties"] == 1.0, (ids, ref_ids)
        for hit in got.hits:
            ref_score = float(scores[position[hit.id]])
            worst = max(worst, abs(hit.score - ref_score) / ref_score)
    assert worst <= 1e-5


def test_dense_recall_at_10_against_exact(indexed, corpus, trained_model):
    client, name, _, _, exact, _ = indexed
    found = total = 0
    for q in _queries(corpus, trained_model, n=30, seed=2):
        got = search(client, name, q, SearchOptions(mode="dense", explain=False), 0.1, 0.1)
        ref = set(exact.search(*_dense_terms(trained_model, q), k=10, mode="dense").ids(exact)[0])
        found += len(ref & {h.id for h in got.hits})
        total += 10
    assert found / total >= 0.95


def test_document_pruning_keeps_the_heaviest_terms(engine, corpus, trained_model, index_name):
    top_k = 5
    source = source_from_dataset(corpus, "test")
    report = ingest(
        engine.client,
        trained_model,
        source,
        IngestOptions(index=index_name, pruning=Pruning(top_k=top_k)),
        progress=False,
    )
    full = trained_model.heads.encode(source.emb, "image").sparse
    nnz = full.crow_indices().diff()
    assert int(nnz.min()) > top_k, "the test needs images with more than top-k terms"
    assert report.pruning.terms_kept == top_k * len(source.ids)
    assert report.pruning.terms_removed == int(nnz.sum()) - top_k * len(source.ids)
    tokens = trained_model.vocab.tokens
    for row in random.Random(0).sample(range(len(source.ids)), 10):
        stored = engine.client.get(index=index_name, id=source.ids[row])["_source"][SPARSE_FIELD]
        kept = {decode_term(name): weight for name, weight in stored.items()}
        start, end = full.crow_indices()[row : row + 2].tolist()
        weights = {
            tokens[c]: w
            for c, w in zip(
                full.col_indices()[start:end].tolist(), full.values()[start:end].tolist(),
                strict=True,
            )
        }  # fmt: skip
        assert len(kept) == top_k
        assert all(kept[t] == pytest.approx(weights[t], rel=1e-6) for t in kept)
        dropped = [w for t, w in weights.items() if t not in kept]
        assert min(kept.values()) >= max(dropped) * (1 - 1e-6), (kept, sorted(dropped)[-3:])

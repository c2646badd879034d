"""The exact reference a new index is verified against: computed batch by batch while the index
is built, it must rank and score like the in-memory retriever over the whole collection."""

from __future__ import annotations

import pytest
import torch

from indexing.documents import DocumentBuilder, Pruning
from indexing.verify import ExactSample, Verification, same_ranking
from sparse_mm.checkpoint import load_model
from sparse_mm.demo import demo_model_dir
from sparse_mm.retriever import ExactRetriever


@pytest.fixture(scope="module")
def demo():
    return load_model(demo_model_dir())


@pytest.mark.parametrize("pruning", [Pruning(), Pruning(top_k=5)])
def test_the_running_sample_equals_exact_search_over_everything(demo, pruning):
    torch.manual_seed(0)
    in_dim = demo.config.heads.in_dim
    images = torch.randn(300, in_dim)
    images[7] = images[3]  # a duplicate: a tie, to the earlier document
    captions = torch.randn(6, in_dim)
    ids = [f"img-{i}" for i in range(300)]
    sample = ExactSample(demo, captions, k=10)
    builder = DocumentBuilder(demo.vocab.tokens, pruning)
    builder.observers.append(sample.observe)
    kept_rows = []
    for start in range(0, 300, 64):  # batches, as ingest builds them
        encoded = demo.heads.encode(images[start : start + 64], "image")
        docs = list(builder.build(ids[start : start + 64], encoded.dense, encoded.sparse))
        kept_rows += [doc["sparse"] for doc in docs]
    # the reference: every document at once, with the weights the documents hold
    encoded = demo.heads.encode(images, "image")
    names = {name: i for i, name in enumerate(builder.names.tolist())}
    sparse = torch.zeros(300, demo.config.heads.vocab_size)
    for row, terms in enumerate(kept_rows):
        for name, weight in terms.items():
            sparse[row, names[name]] = weight
    w1, w2 = demo.serving_weights()
    retriever = ExactRetriever(ids, encoded.dense, sparse, w1=w1, w2=w2, quantize=True)
    for j, q in enumerate(sample.queries):
        q_dense = torch.tensor([list(q.dense)])
        q_sparse = torch.zeros(1, demo.config.heads.vocab_size)
        for term, weight in q.terms.items():
            q_sparse[0, demo.vocab.tokens.index(term)] = weight
        exact = retriever.search(q_dense, q_sparse, k=10, mode="hybrid")
        expected = list(zip(exact.ids(retriever)[0], exact.scores[0].tolist(), strict=True))
        got = sample.expected(j)
        assert [i for i, _ in got] == [i for i, _ in expected]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-5)


def test_rankings_may_swap_only_between_equal_scores():
    exact = [("a", 0.9), ("b", 0.5), ("c", 0.5)]
    assert same_ranking([("a", 0.9), ("c", 0.5), ("b", 0.5)], exact)
    assert not same_ranking([("b", 0.5), ("a", 0.9), ("c", 0.5)], exact)
    assert not same_ranking([("a", 0.9), ("b", 0.5)], exact)
    assert not same_ranking([("a", 0.9), ("b", 0.5), ("d", 0.5)], exact)


def test_a_verification_needs_every_document_and_the_exact_answers():
    assert Verification(10, 10, 20, 19, 1e-6).passed
    assert not Verification(9, 10, 20, 20, 0.0).passed  # a document missing
    assert not Verification(10, 10, 20, 17, 0.0).passed  # too many queries differ
    assert not Verification(10, 10, 20, 20, 1e-3).passed  # a score is off
    assert Verification(10, 10).passed and "no sample queries" in Verification(10, 10).describe()

"""Retrieval metrics on a hand-made run, cross-checked with ranx, and the sparsity figures."""

from __future__ import annotations

import pytest
import torch

from training.metrics import ranks_of_relevant, retrieval_metrics, sparsity


def test_hand_made_run():
    # 4 queries over 12 images; relevant images land at ranks 1, 3, 7 and 12.
    scores = torch.zeros(4, 12)
    relevant = torch.tensor([0, 1, 2, 3])
    for q, rank in enumerate([1, 3, 7, 12]):
        order = [i for i in range(12) if i != relevant[q]]
        ranked = [*order[: rank - 1], int(relevant[q]), *order[rank - 1 :]]
        for position, image in enumerate(ranked):
            scores[q, image] = 100.0 - position
    ranks = ranks_of_relevant(scores, relevant)
    assert ranks.tolist() == [1, 3, 7, 12]
    m = retrieval_metrics(ranks)
    assert m["R@1"] == 0.25 and m["R@5"] == 0.5 and m["R@10"] == 0.75
    assert m["MRR@10"] == pytest.approx((1 + 1 / 3 + 1 / 7 + 0) / 4)


def test_ties_are_broken_by_lower_index():
    scores = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    assert ranks_of_relevant(scores, torch.tensor([0, 2])).tolist() == [1, 3]


def test_agrees_with_ranx_on_a_random_run():
    import ranx

    g = torch.Generator().manual_seed(0)
    scores = torch.randn(50, 40, generator=g)
    relevant = torch.randint(0, 40, (50,), generator=g)
    ours = retrieval_metrics(ranks_of_relevant(scores, relevant))
    qrels = ranx.Qrels({f"q{q}": {f"d{int(r)}": 1} for q, r in enumerate(relevant)})
    run = ranx.Run({f"q{q}": {f"d{d}": float(scores[q, d]) for d in range(40)} for q in range(50)})
    theirs = ranx.evaluate(qrels, run, ["recall@1", "recall@5", "recall@10", "mrr@10"])
    assert ours["R@1"] == pytest.approx(theirs["recall@1"])
    assert ours["R@5"] == pytest.approx(theirs["recall@5"])
    assert ours["R@10"] == pytest.approx(theirs["recall@10"])
    assert ours["MRR@10"] == pytest.approx(theirs["mrr@10"])


def test_sparsity_and_flops():
    q = torch.tensor([[1.0, 0, 2.0, 0], [0, 0, 3.0, 0]])
    d = torch.tensor([[1.0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 1.0, 1.0]])
    expected_flops = 0.5 * (1 / 3) + 0 + 1.0 * (2 / 3) + 0
    for docs in (d, d.to_sparse_csr(), d.to_sparse()):
        s = sparsity(q, docs)
        assert s["query_terms"] == pytest.approx(1.5)
        assert s["doc_terms"] == pytest.approx(5 / 3)
        assert s["flops"] == pytest.approx(expected_flops)

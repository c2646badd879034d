"""The lsr statistical workload (bench/workloads.py): the recipe's statistics hold, it is
reproducible, and 10k is a prefix of a larger draw."""

from __future__ import annotations

import pytest
import torch

from bench.workloads import (
    LsrParams,
    distinct_draws,
    lsr_workload,
    statistics,
    zipf_cdf,
)


def test_distinct_draws_are_distinct_sorted_and_follow_popularity():
    gen = torch.Generator().manual_seed(0)
    cdf = zipf_cdf(1000, 1.0)
    rows = distinct_draws(cdf, 4000, 32, gen)
    assert rows.shape == (4000, 32)
    assert bool((rows[:, 1:] > rows[:, :-1]).all())  # sorted, hence distinct
    counts = torch.bincount(rows.flatten(), minlength=1000)
    assert counts[0] > counts[10] > counts[500]  # popular terms are drawn more often
    # every row holds the most popular term almost surely at this size
    assert counts[0] > 0.9 * 4000


def test_distinct_draws_of_the_whole_vocabulary():
    rows = distinct_draws(zipf_cdf(20, 1.5), 3, 20, torch.Generator().manual_seed(1))
    assert rows.tolist() == [list(range(20))] * 3


def test_the_recipe_statistics_hold():
    params = LsrParams(n_docs=3000, n_queries=200, vocab_size=5000, doc_terms=40, query_terms=12)
    w = lsr_workload(params)
    stats = statistics(w)
    assert stats["doc_terms_mean"] == 40
    assert stats["query_terms_mean"] == 12
    assert stats["posting_share_mean_over_vocab"] == pytest.approx(40 / 5000)
    assert w.docs.dense.shape == (3000, 256)
    assert torch.allclose(w.docs.dense.norm(dim=1), torch.ones(3000), atol=1e-5)
    assert torch.allclose(w.query_dense.norm(dim=1), torch.ones(200), atol=1e-5)
    assert bool((w.docs.sparse.values() > 0).all())
    assert len(w.tokens) == 5000 and len(set(w.tokens)) == 5000


def test_queries_find_their_target_documents():
    w = lsr_workload(LsrParams(n_docs=2000, n_queries=100, vocab_size=5000))
    targets = torch.tensor(w.targets)
    dense_top = (w.query_dense @ w.docs.dense.T).argmax(1)
    sparse_scores = (w.docs.sparse @ w.query_sparse.T).T
    assert (dense_top == targets).float().mean() > 0.9
    assert (sparse_scores.argmax(1) == targets).float().mean() > 0.3  # chance: 1 in 2,000
    # half of each query's terms come from its target
    target_terms = w.docs.sparse.to_dense()[targets] > 0
    shared = ((w.query_sparse > 0) & target_terms).sum(1)
    assert bool((shared >= 8).all())


def test_reproducible_and_nested():
    small = lsr_workload(LsrParams(n_docs=10_000, n_queries=5, vocab_size=3000, seed=3))
    again = lsr_workload(LsrParams(n_docs=10_000, n_queries=5, vocab_size=3000, seed=3))
    large = lsr_workload(LsrParams(n_docs=20_000, n_queries=5, vocab_size=3000, seed=3))
    assert torch.equal(small.docs.dense, again.docs.dense)
    assert torch.equal(small.query_sparse, again.query_sparse)
    assert torch.equal(small.docs.dense, large.docs.dense[:10_000])
    n = int(small.docs.sparse.crow_indices()[-1])
    assert torch.equal(small.docs.sparse.col_indices(), large.docs.sparse.col_indices()[:n])
    assert torch.equal(small.query_sparse, large.query_sparse)  # the same queries for every N
    assert torch.equal(small.query_dense, large.query_dense)
    other = lsr_workload(LsrParams(n_docs=10_000, n_queries=5, vocab_size=3000, seed=4))
    assert not torch.equal(small.docs.dense, other.docs.dense)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_docs": 0}, {"n_docs": 10, "doc_terms": 0}, {"n_docs": 10, "query_overlap": 1.5}],
)
def test_bad_recipes_are_refused(kwargs):
    with pytest.raises(ValueError):
        LsrParams(**kwargs)

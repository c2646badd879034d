"""tools.answers: a load run's sampled answers compared with exact search. A right answer
passes; a wrong score, or in sparse mode a wrong id, is a mismatch; tied ids at the cut and
approximate dense ids are not (they show in recall)."""

from __future__ import annotations

import torch

from bench.collection import Queries
from sparse_mm.retriever import ExactRetriever
from tools.answers import SCORE_REL_TOL, Answer, check_answers, describe_answers

N, D, V, K = 40, 8, 30, 5


def _setup():
    g = torch.Generator().manual_seed(0)
    dense = torch.nn.functional.normalize(torch.randn(N, D, generator=g), dim=1)
    sparse = torch.rand(N, V, generator=g) * (torch.rand(N, V, generator=g) < 0.3)
    ids = [f"d{i}" for i in range(N)]
    retriever = ExactRetriever(ids, dense, sparse.to_sparse_csr(), w1=0.3, w2=0.7, quantize=True)
    qd = torch.nn.functional.normalize(torch.randn(3, D, generator=g), dim=1)
    qs = torch.zeros(3, V)
    qs[:, : V // 2] = 1.0
    queries = Queries([None] * 3, qd, qs, ["d0"] * 3, ["q"] * 3)
    return retriever, queries


def _exact(retriever, queries, query, mode, k=K):
    result = retriever.search(queries.dense[[query]], queries.sparse[[query]], k=k, mode=mode)
    return result.ids(retriever)[0], result.scores[0].tolist()


def test_right_answers_pass_in_every_mode():
    retriever, queries = _setup()
    answers = [
        Answer(q, mode, *map(tuple, _exact(retriever, queries, q, mode)))
        for q in range(3)
        for mode in ("hybrid", "sparse", "dense")
    ]
    checked = check_answers(answers, retriever, queries, k=K)
    assert (checked["checked"], checked["mismatches"]) == (9, 0)
    for mode in ("hybrid", "sparse", "dense"):
        assert checked["modes"][mode][f"recall@{K}_vs_exact"] == 1.0
        assert checked["modes"][mode]["score_rel_err_max"] < 1e-6
    assert "9 answers checked" in describe_answers(checked, K) and "0 mismatches" in (
        describe_answers(checked, K)
    )


def test_a_wrong_score_or_a_wrong_sparse_id_is_a_mismatch():
    retriever, queries = _setup()
    ids, scores = _exact(retriever, queries, 0, "hybrid")
    off = [scores[0] * (1 + 10 * SCORE_REL_TOL), *scores[1:]]
    wrong_score = Answer(0, "hybrid", tuple(ids), tuple(off))
    s_ids, s_scores = _exact(retriever, queries, 1, "sparse", k=N)
    # the k-th hit replaced by the lowest-scoring document, with its own (exact) score
    wrong_id = Answer(1, "sparse", (*s_ids[: K - 1], s_ids[-1]), (*s_scores[: K - 1], s_scores[-1]))
    checked = check_answers([wrong_score, wrong_id], retriever, queries, k=K)
    assert checked["mismatches"] == 2
    assert checked["modes"]["hybrid"]["score_rel_err_max"] > SCORE_REL_TOL
    assert checked["modes"]["sparse"][f"recall@{K}_vs_exact"] < 1.0
    assert len(checked["examples"]) == 2 and "sparse query 1" in checked["examples"][1]


def test_dense_ids_may_differ_and_sparse_ties_at_the_cut_may_swap():
    retriever, queries = _setup()
    d_ids, d_scores = _exact(retriever, queries, 2, "dense", k=K + 1)
    # an approximate answer: the 6th document instead of the 5th, with its exact score
    approximate = Answer(2, "dense", (*d_ids[: K - 1], d_ids[K]), (*d_scores[: K - 1], d_scores[K]))
    checked = check_answers([approximate], retriever, queries, k=K)
    assert checked["mismatches"] == 0
    assert checked["modes"]["dense"][f"recall@{K}_vs_exact"] == (K - 1) / K
    # d4 and d5 tie for the 5th place of a sparse query: either may be returned
    weights = torch.tensor([10.0, 9.0, 8.0, 7.0, 5.0, 5.0] + [1.0] * (N - 6))
    sparse = torch.zeros(N, V)
    sparse[:, 0] = weights
    tied = ExactRetriever(retriever.ids, retriever.dense, sparse, w1=0.3, w2=0.7, quantize=True)
    query = Queries([None], queries.dense[:1], torch.eye(V)[:1], ["d0"], ["q"])
    answer = Answer(0, "sparse", ("d0", "d1", "d2", "d3", "d5"), (10.0, 9.0, 8.0, 7.0, 5.0))
    assert check_answers([answer], tied, query, k=K)["mismatches"] == 0
    beyond = Answer(0, "sparse", ("d0", "d1", "d2", "d3", "d6"), (10.0, 9.0, 8.0, 7.0, 1.0))
    assert check_answers([beyond], tied, query, k=K)["mismatches"] == 1

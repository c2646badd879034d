"""The term-name codec and the query builders' pure logic."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexing.codec import decode_term, encode_term
from indexing.layout import SPARSE_FIELD
from indexing.opensearch.queries import dense_query, hybrid_query, sparse_query
from indexing.query_terms import model_score, prune_terms
from sparse_mm.errors import DataError

SPECIAL = [
    ".",
    "..",
    "u.s.",
    "e.g.",
    "%",
    "%2E",
    "%25",
    "##s",
    "#",
    "a b",
    " ",
    '"q"',
    "'",
    "back\\slash",
    "naïve",
    "日本",
    "emoji🙂",
    "tab\there",
    "[CLS]",
    "a.%.b",
    "%%",
    "x%2",
]


@pytest.mark.parametrize("token", SPECIAL)
def test_codec_round_trips_special_tokens_without_dots(token):
    name = encode_term(token)
    assert "." not in name
    assert decode_term(name) == token


def test_plain_wordpiece_tokens_stay_readable():
    assert [encode_term(t) for t in ("dog", "##s", "[SEP]", "frisbee")] == [
        "dog",
        "##s",
        "[SEP]",
        "frisbee",
    ]


@given(st.text(min_size=1))
def test_codec_is_reversible_and_injective(token):
    name = encode_term(token)
    assert "." not in name and decode_term(name) == token


@given(st.text(min_size=1), st.text(min_size=1))
def test_distinct_tokens_get_distinct_names(a, b):
    if a != b:
        assert encode_term(a) != encode_term(b)


@pytest.mark.parametrize("bad", ["a.b", "%zz", "%2", "%2e"])
def test_decode_rejects_names_the_encoder_never_makes(bad):
    with pytest.raises(ValueError):
        decode_term(bad)


def test_prune_by_min_weight_topk_and_clause_limit():
    terms = {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.05, "e": 0.0}
    kept, report = prune_terms(terms, top_k=3, min_weight=0.1, max_clauses=2)
    assert kept == {"a": 3.0, "b": 2.0}
    assert (report.dropped_min_weight, report.dropped_topk, report.dropped_clause_limit) == (
        1,
        0,
        1,
    )
    assert "clause limit" in report.describe()
    kept, report = prune_terms(terms)
    assert set(kept) == {"a", "b", "c", "d"} and report.dropped == 0 and report.describe() == ""


@pytest.mark.parametrize("weight", [math.nan, math.inf, -1.0])
def test_prune_rejects_bad_weights(weight):
    with pytest.raises(DataError, match="finite"):
        prune_terms({"dog": weight})


@pytest.mark.parametrize("weight", [1e4 * (1 + 1e-9), 3.5e38, 1e300])
def test_prune_rejects_weights_the_engine_would_overflow(weight):
    with pytest.raises(DataError, match="above the 10000 that sparse-mm sends"):
        prune_terms({"dog": 1.0, "cat": weight})


def test_prune_drops_weights_that_underflow_float32():
    kept, report = prune_terms({"dog": 1e4, "cat": 2.0**-126, "cow": 1e-39, "eel": 5e-324})
    assert kept == {"dog": 1e4, "cat": 2.0**-126} and report.dropped == 0


@pytest.mark.parametrize(
    ("vector", "fragment"),
    [([0.0, 0.0], "all zeros"), ([1.0, math.nan], "NaN"), ([math.inf, 0.0], "infinite")],
)
def test_dense_and_hybrid_queries_refuse_vectors_without_a_cosine(vector, fragment):
    with pytest.raises(DataError, match=fragment):
        dense_query(vector)
    with pytest.raises(DataError, match=fragment):
        hybrid_query(vector, {"dog": 1.0}, w1=1.0, w2=1.0)


def test_sparse_query_needs_terms():
    with pytest.raises(DataError, match="no terms"):
        sparse_query({})


def test_hybrid_query_shape_boosts_and_fields():
    body = hybrid_query([0.6, 0.8], {"u.s.": 2.0}, w1=0.1, w2=0.3, k=5, window=50)
    text = json.dumps(body)
    assert f'"{SPARSE_FIELD}.u%2Es%2E"' in text
    assert body["rescore"]["window_size"] == 50
    # Candidates: one flat disjunction ranked like w1 * (1 + cos) + w2 * sparse, divided by w2.
    knn, *clauses = body["query"]["bool"]["should"]
    assert knn["knn"]["dense"]["k"] == 50
    assert knn["knn"]["dense"]["boost"] == pytest.approx(2 * 0.1 / 0.3)
    assert [c["rank_feature"]["boost"] for c in clauses] == [2.0]
    # The exact rescore: dense script boosted 2 * w1 and the sparse clauses in a bool boosted w2.
    script, sparse = body["rescore"]["query"]["rescore_query"]["bool"]["should"]
    assert script["script_score"]["boost"] == pytest.approx(0.2)
    assert sparse["bool"]["boost"] == 0.3 and sparse["bool"]["should"] == clauses
    exact = hybrid_query([0.6, 0.8], {"dog": 1.0}, w1=0.1, w2=0.3, exact=True)
    assert "rescore" not in exact and '"knn": {' not in json.dumps(exact)


def test_model_score_inverts_engine_scoring():
    assert model_score(0.8, "dense", 0.1) == pytest.approx(0.6)
    assert model_score(0.35, "hybrid", 0.1) == pytest.approx(0.25)
    assert model_score(1.5, "sparse", 0.1) == 1.5

"""Search filters' pure logic: parsing, resolving against a mapping, the query clauses, the
in-memory predicate, and where each engine's query bodies put them."""

from __future__ import annotations

import pytest

from indexing.elasticsearch import queries as es
from indexing.filters import SearchFilter, parse_condition, parse_filter
from indexing.metadata import meta_properties
from indexing.opensearch import queries as os_q
from sparse_mm.errors import ConfigError, DataError

PROPERTIES = {
    "id": {"type": "keyword"},
    "split": {"type": "keyword"},
    "filename": {"type": "keyword"},
    **meta_properties({"licence": "keyword", "year": "long", "score": "double", "ok": "boolean"}),
}
V = [0.6, 0.8]


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("split=test", ("split", "=", "test")),
        ("year>=2020", ("year", ">=", "2020")),
        ("year > 2020", ("year", ">", "2020")),
        ("score<0.5", ("score", "<", "0.5")),
        ("licence=cc by=sa", ("licence", "=", "cc by=sa")),  # the value may hold '='
    ],
)
def test_conditions_parse(spec, parsed):
    c = parse_condition(spec)
    assert (c.field, c.op, c.value) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("split", "expected FIELD=VALUE"),
        ("split=", "expected FIELD=VALUE"),
        ("=test", "expected FIELD=VALUE"),
        ("a.b=1", "not a field name"),
        ("year=>3", "expected FIELD=VALUE"),
    ],
)
def test_malformed_conditions_are_one_line(spec, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_condition(spec)
    assert "\n" not in str(caught.value)


def test_an_unknown_field_names_the_fields_there_are():
    with pytest.raises(DataError, match="no field 'licnce'") as caught:
        parse_filter(["licnce=cc-by"]).resolve(PROPERTIES)
    assert "licence" in str(caught.value) and "year" in str(caught.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("year=recent", "holds numbers"),
        ("year=2020.5", "whole numbers"),
        ("score>=nan", "finite number"),
        ("ok=yes", "true or false"),
        ("ok>=true", "true or false"),
    ],
)
def test_values_must_fit_the_fields_type(spec, message):
    with pytest.raises(DataError, match=message):
        parse_filter([spec]).resolve(PROPERTIES)


def test_clauses_group_one_fields_values_and_bounds():
    resolved = parse_filter(
        ["licence=cc-by", "licence=cc0", "year>=2000", "year<2010", "split=test"], ["7", "9"]
    ).resolve(PROPERTIES)
    assert resolved.clauses() == [
        {"terms": {"meta.licence": ["cc-by", "cc0"]}},
        {"terms": {"split": ["test"]}},
        {"range": {"meta.year": {"gte": 2000, "lt": 2010}}},
        {"ids": {"values": ["7", "9"]}},
    ]
    with pytest.raises(ConfigError, match="two >= bounds"):
        parse_filter(["year>=1", "year>=2"]).resolve(PROPERTIES)


def _doc(i, licence, year, **more):
    return {"id": str(i), "split": "test", "meta": {"licence": licence, "year": year, **more}}


def test_the_predicate_has_the_engines_semantics():
    docs = [
        _doc(0, "cc-by", 1999),
        _doc(1, "cc0", 2005),
        _doc(2, ["cc0", "mit"], [1990, 2003]),  # multi-valued
        _doc(3, "mit", 2015),
        {"id": "4", "split": "test", "meta": {}},  # no metadata: fails every condition on it
    ]
    f = parse_filter(["licence=cc0", "licence=cc-by", "year>=2000", "year<2010"])
    assert [f.resolve(PROPERTIES).matches(d) for d in docs] == [False, True, True, False, False]
    # one range, satisfied whole by one value: [1990, 2025] has none in [2000, 2001)
    narrow = parse_filter(["year>=2000", "year<2001"]).resolve(PROPERTIES)
    assert not narrow.matches(_doc(5, "x", [1990, 2025]))
    only = parse_filter([], ["3", "4"]).resolve(PROPERTIES)
    assert only.mask(docs).tolist() == [False, False, False, True, True]
    # text compares as text: "10" < "9"
    assert parse_filter(["id<9"]).resolve(PROPERTIES).matches({"id": "10"})
    assert not SearchFilter() and parse_filter(["split=test"])
    assert parse_filter(["split=test"], ["1"]).describe() == "split=test and 1 ids"


def test_opensearch_applies_the_filter_in_every_phase():
    filters = parse_filter(["year>=2000"]).resolve(PROPERTIES).clauses()
    knn = os_q.dense_query(V, k=5, ef_search=100, filters=filters)["query"]["knn"]["dense"]
    assert knn["filter"] == {"bool": {"filter": filters}}  # pre-filtered k-NN
    sparse = os_q.sparse_query({"dog": 1.0}, filters=filters)["query"]["bool"]
    # a filter makes `should` optional: at least one term must match, or every filtered
    # document would come back with score 0
    assert sparse["filter"] == filters and sparse["minimum_should_match"] == 1
    hybrid = os_q.hybrid_query(V, {"dog": 1.0}, w1=0.1, w2=0.2, k=5, window=50, filters=filters)
    candidates = hybrid["query"]["bool"]
    assert candidates["filter"] == filters and candidates["minimum_should_match"] == 1
    assert candidates["should"][0]["knn"]["dense"]["filter"] == {"bool": {"filter": filters}}
    rescore = hybrid["rescore"]["query"]["rescore_query"]["bool"]
    assert rescore["filter"] == filters
    exact = os_q.hybrid_query(V, {"dog": 1.0}, w1=0.1, w2=0.2, exact=True, filters=filters)
    script = exact["query"]["bool"]["should"][0]["script_score"]
    assert script["query"] == {"bool": {"filter": filters}}  # brute force over the filtered set
    plain = os_q.hybrid_query(V, {"dog": 1.0}, w1=0.1, w2=0.2, k=5, window=50)
    assert plain["query"]["bool"].keys() == {"should"}


def test_elasticsearch_applies_the_filter_in_every_phase():
    filters = parse_filter(["licence=cc0"]).resolve(PROPERTIES).clauses()
    knn = es.dense_query(V, k=5, filters=filters)["query"]["knn"]
    assert knn["filter"] == filters
    sparse = es.sparse_query({"dog": 1.0}, filters=filters)["query"]["bool"]
    assert sparse["filter"] == filters and "sparse_vector" in sparse["must"][0]
    first = es.candidates_query(V, {"dog": 1.0}, w1=0.1, w2=0.2, window=50, filters=filters)
    query = first["query"]["bool"]
    assert query["filter"] == filters and query["minimum_should_match"] == 1
    assert query["should"][0]["knn"]["filter"] == filters
    assert es.all_ids_query(10, filters)["query"] == {"bool": {"filter": filters}}

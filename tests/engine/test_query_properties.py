"""Property: whatever a query holds (any tokens, any weights, any dense vector, any weights w1
and w2, k, window and ef_search the CLI lets through), sparse-mm either refuses it with a clear
error before sending anything or sends a query the real engine accepts, and that query reaches
no field but the index's own dense and sparse fields. An ordinary query (a non-zero vector, term
weights in range, and for sparse mode a term to search with) is never refused: it is answered
with exactly the hits the index holds for it. On each engine."""

from __future__ import annotations

import math
import uuid

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from indexing.codec import decode_term
from indexing.engine import as_engine
from indexing.layout import DENSE_FIELD, SPARSE_FIELD, IndexSettings
from indexing.query_terms import MAX_QUERY_WEIGHT, MIN_QUERY_WEIGHT
from indexing.search import QueryVectors, SearchOptions, search
from sparse_mm.errors import EngineError, SparseMMError
from tests.engines import each_engine  # noqa: F401  (every test here runs on both engines)

DIM = 4
N_DOCS = 12
TOKENS = ["dog", "beach", "u.s.", "%2E", '"}}{{', "##s"]
WITH_TERMS = {str(i) for i in range(N_DOCS) if i % 3}  # the documents that have sparse terms


@pytest.fixture(scope="module")
def small_index(engine):
    from indexing.codec import encode_term

    client = engine.client
    name = f"test-query-properties-{uuid.uuid4().hex[:8]}"
    body = as_engine(client).index_body(DIM, IndexSettings(), None)
    client.indices.create(index=name, body=body)
    for i in range(N_DOCS):
        vector = [math.cos(i + j) for j in range(DIM)]
        terms = {encode_term(t): 0.25 + (i * (j + 1)) % 5 for j, t in enumerate(TOKENS)
                 if str(i) in WITH_TERMS}  # fmt: skip
        client.index(index=name, id=str(i), body={"id": str(i), DENSE_FIELD: vector,
                                                   SPARSE_FIELD: terms})  # fmt: skip
    client.indices.refresh(index=name)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


class Recording:
    """The real client, remembering the search bodies it sent (anything else goes through)."""

    def __init__(self, client) -> None:
        self.client, self.bodies = client, []

    def search(self, **kwargs):
        self.bodies.append(kwargs["body"])
        return self.client.search(**kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


def fields_reached(node, found: list[str]) -> list[str]:
    """Every field a query body names: `field` values, OpenSearch's k-NN clause keys,
    Elasticsearch's sparse_vector features as `field.feature`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "field" and isinstance(value, str):
                found.append(value)
            elif key == "knn" and isinstance(value, dict) and "field" not in value:
                found.extend(value)  # OpenSearch: {"knn": {field: {...}}}
            elif key == "sparse_vector" and isinstance(value, dict):
                found.extend(f"{value['field']}.{f}" for f in value["query_vector"])
                continue
            fields_reached(value, found)
    elif isinstance(node, list):
        for item in node:
            fields_reached(item, found)
    return found


def ordinary(terms: dict[str, float], vector: list[float], mode: str) -> bool:
    """A query any model could make: sparse-mm must accept it."""
    in_range = all(0 <= w <= MAX_QUERY_WEIGHT for w in terms.values())
    searchable = any(w >= MIN_QUERY_WEIGHT for w in terms.values())
    return in_range and (searchable if mode == "sparse" else any(vector))


def expected_ids(terms: dict[str, float], mode: str) -> set[str]:
    """Every document the query matches: all of them by their vector, or those sharing a term."""
    if mode != "sparse":
        return {str(i) for i in range(N_DOCS)}
    shared = any(t in TOKENS and w >= MIN_QUERY_WEIGHT for t, w in terms.items())
    return WITH_TERMS if shared else set()


tokens = st.one_of(st.sampled_from(TOKENS), st.text(min_size=1, max_size=12))
# Weights as models make them, plus at most one term with a weight at an edge of what the
# engine computes with: 0, subnormal, float32's limits, beyond them, up to float64's.
weights = st.floats(min_value=0, max_value=50)
EDGES = [0.0, 5e-324, 1e-45, 1e-39, 2.0**-126, 1e4, 10001.0, 3.4028235e38, 1e39, 1.7e308]
edge_terms = st.one_of(st.none(), st.tuples(tokens, st.sampled_from(EDGES)))
positive = st.floats(min_value=1e-12, max_value=1e12)
component = st.one_of(st.floats(1e-3, 1e3), st.floats(-1e3, -1e-3), st.just(0.0))
# One vector in ten is all zeros.
vectors = st.integers(0, 9).flatmap(
    lambda i: st.just([0.0] * DIM) if i == 0 else st.lists(component, min_size=DIM, max_size=DIM)
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    terms=st.dictionaries(tokens, weights, max_size=8),
    edge=edge_terms,
    vector=vectors,
    mode=st.sampled_from(["hybrid", "sparse", "dense"]),
    exact=st.booleans(),
    w1=positive,
    w2=positive,
    k=st.integers(1, 10_000),
    window=st.integers(1, 10_000),
    ef_search=st.one_of(st.none(), st.integers(1, 10_000)),
)
def test_queries_are_refused_clearly_or_accepted_and_stay_on_their_fields(
    client, small_index, terms, edge, vector, mode, exact, w1, w2, k, window, ef_search
):
    terms = terms if edge is None else {**terms, edge[0]: edge[1]}
    recording = Recording(client)
    adapter = type(as_engine(client))(recording)  # the engine's adapter over the recording
    options = SearchOptions(mode=mode, k=k, window=window, ef_search=ef_search, exact=exact)
    try:
        response = search(adapter, small_index, QueryVectors(vector, terms), options, w1, w2)
    except EngineError as exc:
        pytest.fail(f"the engine rejected a query sparse-mm built: {exc}")
    except SparseMMError as exc:
        if ordinary(terms, vector, mode):
            pytest.fail(f"an ordinary {mode} query was refused: {exc}")
        event("refused: " + str(exc).split("'")[0][:40])
        assert not recording.bodies, "refused after sending"
        assert "\n" not in str(exc) and str(exc)
        return
    event(f"accepted: {mode}")
    matched = expected_ids(terms, mode)
    got = [hit.id for hit in response.hits]
    assert len(got) == min(k, len(matched)), (got, sorted(matched))
    assert set(got) <= matched
    for hit in response.hits:
        assert math.isfinite(hit.score)
    assert len(recording.bodies) == response.round_trips
    for name in fields_reached(recording.bodies, []):
        if name == DENSE_FIELD:
            continue
        prefix, _, feature = name.partition(".")
        assert prefix == SPARSE_FIELD, name
        assert decode_term(feature) in terms, name

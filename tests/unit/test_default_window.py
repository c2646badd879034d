"""The hybrid candidate window is 600 by default everywhere a default is taken: the library's
options, the CLI, both engines' query builders, OpenSearch's stored search template and the
benchmark's grid (at 1M images of the demo model 200 left 8.5% of top-10s short of exact, 400
2%, 600 none: bench/results/model_1m and the runs behind commit b907f1c)."""

from __future__ import annotations

from bench.run import GridPoint
from indexing.cli import query
from indexing.elasticsearch.queries import candidates_query
from indexing.opensearch.assets import ASSETS_VERSION, hybrid_template_source, template_request
from indexing.opensearch.queries import hybrid_query
from indexing.query_terms import DEFAULT_WINDOW
from indexing.search import SearchOptions

VECTOR, TERMS = [0.6, 0.8], {"dog": 1.0}


def test_the_default_window_is_600_in_the_library_and_the_cli():
    assert DEFAULT_WINDOW == 600
    assert SearchOptions().window == 600
    (option,) = [p for p in query.params if p.name == "window"]
    assert option.default == 600
    assert GridPoint("hybrid").window == 600


def test_both_engines_query_builders_default_to_600_candidates():
    body = hybrid_query(VECTOR, TERMS, w1=0.1, w2=0.3)
    assert body["rescore"]["window_size"] == 600
    (knn,) = [c["knn"] for c in body["query"]["bool"]["should"] if "knn" in c]
    assert next(iter(knn.values()))["k"] == 600
    body = candidates_query(VECTOR, TERMS, w1=0.1, w2=0.3)
    assert body["size"] == 600
    assert body["query"]["bool"]["should"][0]["knn"]["k"] == 600


def test_the_stored_template_defaults_to_600_and_its_version_says_it_changed():
    source = hybrid_template_source(0.1, 0.3)
    assert "{{window}}{{^window}}600{{/window}}" in source
    assert "{{^window}}100{{/window}}" not in source
    assert "{{^window}}200{{/window}}" not in source
    assert template_request("i", VECTOR, TERMS)["params"]["window"] == 600
    # versions 1 and 2 stored templates whose default window was 100 and 200: an install over
    # them updates them
    assert ASSETS_VERSION == 3

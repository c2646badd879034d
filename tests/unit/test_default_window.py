"""The hybrid's candidates have two defaults, `indexing.query_terms.DEFAULT_WINDOW` (rescored
exactly) and `DEFAULT_KNN_K` (how many of them the k-NN clause adds), and every place a default
is taken reads them: the library's options, the CLI's help, both engines' query builders,
OpenSearch's stored search template and the benchmark's grid. (1000 and 50: at 1M documents,
with 50 neighbours, the smallest window exact on both seeds' grids, bench/results/choice_1m_seed7
and choice_1m_seed11; the k-NN clause asking for the whole window was not exact.)"""

from __future__ import annotations

import json
import subprocess
import sys

from indexing.opensearch.assets import ASSETS_VERSION
from indexing.query_terms import DEFAULT_KNN_K, DEFAULT_WINDOW, candidate_window

# The stored template's default window (and k-NN neighbours) of each assets version: a new
# default needs a new version (an install over an older template then updates it).
TEMPLATE_DEFAULTS_OF_VERSION = {
    1: (100, None),
    2: (200, None),
    3: (600, None),
    4: (600, None),
    5: (200, 50),
    6: (1000, 50),
}

# With the constants changed before anything else reads them, every default must follow: a
# default written as a literal anywhere stays behind and fails.
_PROBE = """
import json
import indexing.query_terms as query_terms
query_terms.DEFAULT_WINDOW, query_terms.DEFAULT_KNN_K = 37, 13
from bench.run import GridPoint
from indexing.cli import query
from indexing.elasticsearch.queries import candidates_query
from indexing.opensearch.assets import hybrid_template_source, template_request
from indexing.opensearch.queries import hybrid_query
from indexing.search import SearchOptions, resolved
vector, terms = [0.6, 0.8], {"dog": 1.0}
os_body = hybrid_query(vector, terms, w1=0.1, w2=0.3)
(os_knn,) = [c["knn"] for c in os_body["query"]["bool"]["should"] if "knn" in c]
es_body = candidates_query(vector, terms, w1=0.1, w2=0.3)
(window,) = [p for p in query.params if p.name == "window"]
(knn,) = [p for p in query.params if p.name == "knn_k"]
request = template_request("i", vector, terms)["params"]
source = hybrid_template_source(0.1, 0.3)
print(json.dumps({
    "window": {
        "SearchOptions": resolved(SearchOptions()).window,
        "cli --window help": 37 if "37 at k = 10" in window.help else window.help,
        "bench GridPoint": GridPoint("hybrid").window,
        "opensearch rescore window": os_body["rescore"]["window_size"],
        "elasticsearch candidates": es_body["size"],
        "template request": request["window"],
        "stored template": 37 if "{{^window}}37{{/window}}" in source else None,
    },
    "knn_k": {
        "SearchOptions": resolved(SearchOptions()).knn_k,
        "cli --knn-k help": 13 if "13 at k = 10" in knn.help else knn.help,
        "opensearch knn k": next(iter(os_knn.values()))["k"],
        "elasticsearch knn k": es_body["query"]["bool"]["should"][0]["knn"]["k"],
        "template request": request["knn_k"],
        "stored template": 13 if "{{^knn_k}}13{{/knn_k}}" in source else None,
    },
}))
"""


def test_every_default_takes_its_value_from_the_constants():
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["window"] == dict.fromkeys(found["window"], 37)
    assert found["knn_k"] == dict.fromkeys(found["knn_k"], 13)
    assert (len(found["window"]), len(found["knn_k"])) == (7, 6)


def test_the_shipped_constants_are_the_measured_choice():
    assert (DEFAULT_WINDOW, DEFAULT_KNN_K) == (1000, 50)


def test_the_candidates_grow_with_k_and_beyond_the_measured_size():
    assert candidate_window(10) == candidate_window(10, 1_000_000) == (1000, 50)
    assert candidate_window(5) == (1000, 50)  # never fewer than at k = 10
    assert candidate_window(50) == (5000, 250)
    assert candidate_window(10, 5_000_000) == (2000, 100)  # not measured: wider, to be safe
    assert candidate_window(10, 20_000_000) == (4000, 200)


def test_the_default_window_stays_within_the_engines_limit():
    # both engines refuse a rescore window / knn num_candidates above 10,000 by default
    assert candidate_window(100) == (10_000, 500)
    assert candidate_window(50, 50_000_000) == (10_000, 1000)
    assert candidate_window(20_000) == (20_000, 20_000)  # never fewer than k (refused later)


def test_the_assets_version_changed_with_the_templates_defaults():
    assert TEMPLATE_DEFAULTS_OF_VERSION[ASSETS_VERSION] == (DEFAULT_WINDOW, DEFAULT_KNN_K)
    assert max(TEMPLATE_DEFAULTS_OF_VERSION) == ASSETS_VERSION

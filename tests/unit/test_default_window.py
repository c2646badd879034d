"""The hybrid candidate window has one default, `indexing.query_terms.DEFAULT_WINDOW`, and every
place a default is taken reads it: the library's options, the CLI, both engines' query
builders, OpenSearch's stored search template and the benchmark's grid. (600: at 1M images of
the demo model 200 left 8.5% of top-10s short of exact, 400 2%, 600 none: bench/results/model_1m
and the runs behind commit b907f1c.)"""

from __future__ import annotations

import json
import subprocess
import sys

from indexing.opensearch.assets import ASSETS_VERSION
from indexing.query_terms import DEFAULT_WINDOW

# The stored template's default window of each assets version: a new default window needs a
# new version (an install over an older template then updates it).
TEMPLATE_WINDOW_OF_VERSION = {1: 100, 2: 200, 3: 600, 4: 600}

# With the constant changed before anything else reads it, every default must follow it: a
# default written as a literal anywhere stays behind and fails.
_PROBE = """
import json
import indexing.query_terms as query_terms
query_terms.DEFAULT_WINDOW = 37
from bench.run import GridPoint
from indexing.cli import query
from indexing.elasticsearch.queries import candidates_query
from indexing.opensearch.assets import hybrid_template_source, template_request
from indexing.opensearch.queries import hybrid_query
from indexing.search import SearchOptions
vector, terms = [0.6, 0.8], {"dog": 1.0}
os_body = hybrid_query(vector, terms, w1=0.1, w2=0.3)
(os_knn,) = [c["knn"] for c in os_body["query"]["bool"]["should"] if "knn" in c]
es_body = candidates_query(vector, terms, w1=0.1, w2=0.3)
(option,) = [p for p in query.params if p.name == "window"]
print(json.dumps({
    "SearchOptions": SearchOptions().window,
    "cli --window": option.default,
    "bench GridPoint": GridPoint("hybrid").window,
    "opensearch rescore window": os_body["rescore"]["window_size"],
    "opensearch knn k": next(iter(os_knn.values()))["k"],
    "elasticsearch candidates": es_body["size"],
    "elasticsearch knn k": es_body["query"]["bool"]["should"][0]["knn"]["k"],
    "template request": template_request("i", vector, terms)["params"]["window"],
    "stored template": "{{^window}}37{{/window}}" in hybrid_template_source(0.1, 0.3),
}))
"""


def test_every_default_takes_its_value_from_the_one_constant():
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    defaults = json.loads(out.stdout.strip().splitlines()[-1])
    assert defaults.pop("stored template") is True
    assert defaults == dict.fromkeys(defaults, 37)
    assert len(defaults) == 8


def test_the_shipped_constant_is_the_measured_choice():
    assert DEFAULT_WINDOW == 600


def test_the_assets_version_changed_with_the_templates_default_window():
    assert TEMPLATE_WINDOW_OF_VERSION[ASSETS_VERSION] == DEFAULT_WINDOW
    assert max(TEMPLATE_WINDOW_OF_VERSION) == ASSETS_VERSION

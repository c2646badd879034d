"""The test/dev engine choice (indexing/engine_choice.py): explicit choices are honoured or fail
with one line; the automatic choice prefers a running engine, then Docker, then the managed
node."""

from __future__ import annotations

import pytest

from indexing.engine_choice import choose_engine, http_answers
from sparse_mm.errors import EngineError
from tests.demo_check import compare, parse_hits


def decide(env, answering=(), docker=False):
    return choose_engine(env, lambda url: url in answering, lambda: docker)


def test_auto_reuses_an_engine_already_answering_on_the_port():
    choice = decide({"SPARSE_MM_PORT": "9300"}, answering={"http://127.0.0.1:9300"}, docker=True)
    assert (choice.kind, choice.url) == ("url", "http://127.0.0.1:9300")


def test_auto_prefers_docker_to_the_managed_node_when_nothing_answers():
    assert decide({}, docker=True).kind == "docker"
    choice = decide({}, docker=False)
    assert (choice.kind, choice.url) == ("managed", "http://127.0.0.1:9200")


def test_an_opensearch_url_is_honoured_or_fails_never_replaced():
    url = "http://10.0.0.5:9200"
    assert decide({"OPENSEARCH_URL": url}, answering={url}).url == url
    with pytest.raises(EngineError, match="does not answer"):
        decide({"OPENSEARCH_URL": url}, answering={"http://127.0.0.1:9200"}, docker=True)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPARSE_MM_ENGINE": "url"}, "needs OPENSEARCH_URL"),
        ({"SPARSE_MM_ENGINE": "url", "OPENSEARCH_URL": "http://x:1"}, "nothing answers"),
        ({"SPARSE_MM_ENGINE": "docker"}, "no Docker daemon answers"),
        ({"SPARSE_MM_ENGINE": "podman"}, "not one of managed, docker, url"),
        ({"SPARSE_MM_PORT": "ninety"}, "not a port number"),
    ],
)
def test_an_explicit_choice_that_cannot_be_honoured_is_one_error(env, message):
    with pytest.raises(EngineError, match=message):
        decide(env, answering={"http://127.0.0.1:9200"}, docker=False)


def test_explicit_managed_ignores_a_running_engine_and_docker():
    choice = decide({"SPARSE_MM_ENGINE": "managed", "SPARSE_MM_PORT": "9250"}, docker=True)
    assert (choice.kind, choice.url) == ("managed", "http://127.0.0.1:9250")
    assert "SPARSE_MM_ENGINE=managed" in choice.describe()


def test_explicit_docker_and_url():
    assert decide({"SPARSE_MM_ENGINE": "docker"}, docker=True).kind == "docker"
    url = "http://127.0.0.1:9999"
    env = {"SPARSE_MM_ENGINE": "url", "OPENSEARCH_URL": url}
    assert decide(env, answering={url}).url == url


def test_http_probe_says_no_for_a_closed_port():
    assert http_answers("http://127.0.0.1:9", timeout=1) is False


_TABLE = """rank  id            score    dense   sparse  caption   top terms (q x d)
------------------------------------------------------------
   1  547          0.7401   0.0573   0.6828  a dog on the beach   statue 2.03x1.70
   2  35           0.7254   0.0514   0.6740  a dog in the beach   statue 2.03x1.69
hybrid: 2 hits, engine took 18 ms, round trip 28 ms
"""


def test_demo_check_parses_the_query_table_and_finds_differences():
    hits = parse_hits(_TABLE)
    assert hits == [("547", 0.7401), ("35", 0.7254)]
    assert compare(hits, [("547", 0.74012), ("35", 0.72538)]) == []
    assert compare(hits, [("35", 0.7401), ("547", 0.7254)])  # swapped ids, unequal scores
    assert compare(hits, [("547", 0.7401), ("35", 0.7300)])  # a score off by 5e-3
    assert compare(hits[:1], [("547", 0.7401), ("35", 0.7254)])  # a hit missing
    # ids may swap only between hits whose exact scores tie
    assert compare([("a", 0.5), ("b", 0.5)], [("b", 0.5), ("a", 0.5)]) == []


def _image_problem(present):
    return lambda image: None if image in present else f"the image {image} is not present"


def test_auto_takes_docker_only_when_the_image_is_there_and_says_why_it_went_on():
    official = "opensearchproject/opensearch:3.4.0"
    choice = choose_engine({}, lambda url: False, lambda: True, "opensearch", _image_problem(()))
    assert choice.kind == "managed"
    assert "Docker answers but the image opensearchproject/opensearch:3.4.0" in choice.reason
    choice = choose_engine(
        {}, lambda u: False, lambda: True, "opensearch", _image_problem({official})
    )
    assert (choice.kind, choice.image) == ("docker", official)
    local = {"SPARSE_MM_OPENSEARCH_IMAGE": "sparse-mm/opensearch:3.4.0"}
    probe = _image_problem({"sparse-mm/opensearch:3.4.0"})
    choice = choose_engine(local, lambda u: False, lambda: True, "opensearch", probe)
    assert (choice.kind, choice.image) == ("docker", "sparse-mm/opensearch:3.4.0")
    assert "image sparse-mm/opensearch:3.4.0" in choice.describe()


def test_explicit_docker_without_its_image_is_one_error_naming_the_variable():
    env = {"SPARSE_MM_ENGINE": "docker"}
    with pytest.raises(EngineError, match="SPARSE_MM_ELASTICSEARCH_IMAGE") as caught:
        choose_engine(env, lambda u: False, lambda: True, "elasticsearch", _image_problem(()))
    assert "\n" not in str(caught.value)
    assert "sparse-mm image build --engine elasticsearch" in str(caught.value)

"""`sparse-mm serve`'s API on each engine, served for real (uvicorn on a free loopback port in a
thread, real HTTP with httpx): /api/search answers what `sparse-mm query --json` prints (same
ids, scores within 1e-6) in each mode, concurrent requests answer what serial ones do, health,
images (a traversal attempt included), bad input, the engine down (503) and the API key."""

from __future__ import annotations

import json
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from indexing.client import ConnectionOptions
from indexing.engine import connect
from indexing.searcher import Searcher
from service.app import ServiceConfig, create_app
from service.server import running
from tests.cli_run import one_line_error, run
from tests.engines import (
    each_engine,  # noqa: F401  (every test here runs on both engines)
    remove_prefixed,
)

QUERIES = ("a dog on the beach", "a red car in the snow", "a cat on the grass")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return tmp_path_factory.mktemp("serve-images")


@pytest.fixture(scope="module")
def service(engine, cli_index, trained_model, images):
    """The base URL of the service over the module's ingested index, with an image folder."""
    name, ingest = cli_index
    assert ingest.exit_code == 0, ingest.output
    searcher = Searcher(trained_model, name, engine.client)
    with running(create_app(searcher, ServiceConfig(images=images))) as url:
        yield url


def _query_json(engine, trained_model, index, text, mode, k=10) -> dict:
    result = run("query", text, "--model", trained_model.path, "--index", index,
                 "--engine", engine.name, "--url", engine.url, "--mode", mode, "-k", k,
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("mode", ["hybrid", "sparse", "dense"])
def test_search_answers_what_query_json_prints(engine, cli_index, trained_model, service, mode):
    name, _ = cli_index
    for text in QUERIES:
        answer = httpx.get(f"{service}/api/search", params={"q": text, "mode": mode, "k": 10})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        expected = _query_json(engine, trained_model, name, text, mode)
        assert body["mode"] == mode and len(body["hits"]) == 10
        assert [h["id"] for h in body["hits"]] == [h["id"] for h in expected["hits"]]
        for got, want in zip(body["hits"], expected["hits"], strict=True):
            for key in ("score", "dense_part", "sparse_part"):
                assert got[key] == pytest.approx(want[key], abs=1e-6), (key, got["id"])
            assert got["captions"] == want["captions"] and got["filename"] == want["filename"]
            assert [m["term"] for m in got["matches"]] == [m["term"] for m in want["matches"]]
        assert body["query"] == {"q": text, "mode": mode, "k": 10}
        timings = body["timings"]
        assert timings["engine_ms"] == body["took_ms"]
        assert 0 <= timings["encode_ms"] <= timings["total_ms"]
        assert timings["round_trip_ms"] <= timings["total_ms"]


def test_concurrent_requests_answer_what_serial_ones_do(service):
    cases = [(q, m) for q in QUERIES for m in ("hybrid", "sparse", "dense")] * 3

    def ids(case):
        q, mode = case
        answer = httpx.get(f"{service}/api/search", params={"q": q, "mode": mode}, timeout=60)
        assert answer.status_code == 200, answer.text
        return [h["id"] for h in answer.json()["hits"]]

    serial = [ids(case) for case in cases]
    with ThreadPoolExecutor(16) as pool:
        concurrent = list(pool.map(ids, cases))
    assert concurrent == serial


def test_health_names_the_engine_and_the_index(engine, cli_index, service, images):
    answer = httpx.get(f"{service}/api/health")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ok" and body["engine"] == engine.name
    assert body["index"] == cli_index[0] and body["documents"] > 0
    assert body["images"] == str(images)


def test_health_says_what_is_wrong_with_a_missing_index(engine, trained_model):
    searcher = Searcher(trained_model, f"test-missing-{uuid.uuid4().hex[:8]}", engine.client)
    with running(create_app(searcher)) as url:
        answer = httpx.get(f"{url}/api/health")
        search = httpx.get(f"{url}/api/search", params={"q": "a dog"})
    assert answer.status_code == 503
    assert "does not exist" in answer.json()["detail"]
    assert search.status_code == 503 and "does not exist" in search.json()["detail"]


def test_images_are_served_from_the_folder_and_nothing_outside(service, images):
    hits = httpx.get(f"{service}/api/search", params={"q": QUERIES[0], "k": 3}).json()["hits"]
    for i, hit in enumerate(hits[:2]):
        Image.new("RGB", (8 + i, 8), (200, 30 * i, 10)).save(images / hit["filename"])
    first = httpx.get(f"{service}/api/images/{hits[0]['id']}")
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert first.content == (images / hits[0]["filename"]).read_bytes()
    missing = httpx.get(f"{service}/api/images/{hits[2]['id']}")  # no file for the third
    assert missing.status_code == 404 and hits[2]["id"] in missing.json()["detail"]
    assert httpx.get(f"{service}/api/images/no-such-id").status_code == 404
    for attempt in ("..%2F..%2Fetc%2Fpasswd", "%2E%2E/%2E%2E/etc/passwd", "../../etc/passwd"):
        answer = httpx.get(f"{service}/api/images/{attempt}")
        assert answer.status_code == 404 and b"root:" not in answer.content


def test_a_stored_filename_that_leaves_the_folder_is_not_served(engine, trained_model, tmp_path):
    """A document whose stored filename climbs out of the image folder (or a link inside it that
    points out): 404, though the file it names exists and is an image."""
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "outside.png")
    (folder / "link.png").symlink_to(tmp_path / "outside.png")
    Image.new("RGB", (4, 4)).save(folder / "inside.png")
    name = f"test-serve-files-{uuid.uuid4().hex[:8]}"
    docs = {"up": "../outside.png", "abs": str(tmp_path / "outside.png"), "link": "link.png",
            "ok": "inside.png"}  # fmt: skip
    try:
        for doc_id, filename in docs.items():
            engine.client.index(index=name, id=doc_id, body={"filename": filename}, refresh=True)
        searcher = Searcher(trained_model, name, engine.client)
        with running(create_app(searcher, ServiceConfig(images=folder))) as url:
            status = {d: httpx.get(f"{url}/api/images/{d}").status_code for d in docs}
    finally:
        engine.client.indices.delete(index=name, ignore_unavailable=True)
    assert status == {"up": 404, "abs": 404, "link": 404, "ok": 200}


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"q": ""}, "the query q is empty"),
        ({"q": "   "}, "the query q is empty"),
        ({}, "the query q is empty"),
        ({"q": "dog " * 200}, "at most 500"),
        ({"q": "a dog", "k": "0"}, "between 1 and 100"),
        ({"q": "a dog", "k": "101"}, "between 1 and 100"),
        ({"q": "a dog", "k": "ten"}, "whole number"),
        ({"q": "a dog", "k": "nan"}, "whole number"),
        ({"q": "a dog", "mode": "fuzzy"}, "unknown mode 'fuzzy'"),
        ({"q": "a dog", "size": "3"}, "unknown parameter 'size'"),
        ({"q": "a dog", "filter": "colour=red"}, "no field 'colour'"),
        ({"q": "a dog", "filter": "split"}, "expected FIELD=VALUE"),
        ({"q": "zzzqqq xxyyzz"}, "no known words"),
    ],
)
def test_bad_input_is_a_400_in_one_line(service, params, fragment):
    answer = httpx.get(f"{service}/api/search", params=params)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == 400 and fragment in body["detail"]
    assert "\n" not in body["detail"] and "Traceback" not in answer.text


def test_requests_over_the_limits_are_refused_unread(service):
    long_url = httpx.get(f"{service}/api/search", params={"q": "a" * 5000})
    assert long_url.status_code == 414 and "at most 4096" in long_url.json()["detail"]
    body = httpx.post(f"{service}/api/search", content=b"x" * 5000)
    assert body.status_code == 413
    assert httpx.post(f"{service}/api/search").status_code == 405
    assert httpx.get(f"{service}/api/nothing").status_code == 404


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_engine_down_is_a_503_with_the_reason(engine, trained_model):
    down = connect(
        ConnectionOptions(url=f"http://127.0.0.1:{_closed_port()}", timeout=5, max_retries=0),
        engine=engine.name,
        check=False,
    )
    with running(create_app(Searcher(trained_model, "sparse-mm", down))) as url:
        search = httpx.get(f"{url}/api/search", params={"q": "a dog"}, timeout=60)
        health = httpx.get(f"{url}/api/health", timeout=60)
        page = httpx.get(f"{url}/")
    for answer in (search, health):
        assert answer.status_code == 503, answer.text
        detail = answer.json()["detail"]
        assert f"{down.label} at 127.0.0.1:" in detail and "does not answer" in detail
        assert "Traceback" not in answer.text
    assert page.status_code == 200 and "<form" in page.text  # the page still loads


def test_the_api_key_is_required_on_the_api_only(engine, cli_index, trained_model):
    searcher = Searcher(trained_model, cli_index[0], engine.client)
    with running(create_app(searcher, ServiceConfig(api_key="s3cret-key"))) as url:
        params = {"q": "a dog"}
        none = httpx.get(f"{url}/api/search", params=params)
        wrong = httpx.get(f"{url}/api/search", params=params, headers={"X-API-Key": "s3cret"})
        bearer = httpx.get(
            f"{url}/api/search", params=params, headers={"Authorization": "Bearer s3cret-key"}
        )
        header = httpx.get(f"{url}/api/health", headers={"X-API-Key": "s3cret-key"})
        page = httpx.get(f"{url}/")
    assert none.status_code == wrong.status_code == 401
    assert "API key" in none.json()["detail"]
    assert bearer.status_code == 200 and len(bearer.json()["hits"]) == 10
    assert header.status_code == 200 and page.status_code == 200


def test_serve_refuses_an_index_that_is_not_the_models(engine, trained_model, index_name):
    engine.client.indices.create(index=index_name)
    result = run("serve", "--model", trained_model.path, "--index", index_name,
                 "--engine", engine.name, "--url", engine.url, "--port", "0")  # fmt: skip
    one_line_error(result, f"index {index_name!r} is not a sparse-mm index")


def test_serve_says_in_one_line_that_its_port_is_taken(engine, cli_index, trained_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run("serve", "--model", trained_model.path, "--index", cli_index[0],
                     "--engine", engine.name, "--url", engine.url, "--port", port)  # fmt: skip
    one_line_error(result, f"cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize("follow", [True, False], ids=["follow-model", "no-follow-model"])
def test_a_new_model_behind_the_alias_is_followed_or_refused(
    engine, meta_corpus, trained_model, other_model, tmp_path, follow
):
    from indexing.bulk import BulkOptions
    from indexing.engine import as_engine
    from indexing.ingest import IngestOptions, source_from_dataset
    from indexing.versions import ingest_alias

    alias = f"test-serve-alias-{uuid.uuid4().hex[:8]}"
    source = source_from_dataset(meta_corpus, "test")
    options = IngestOptions(bulk=BulkOptions(rejects_path=tmp_path / "rejects.jsonl"))
    adapter = as_engine(engine.client)
    try:
        ingest_alias(adapter, trained_model, source, options, alias, progress=False)
        searcher = Searcher(trained_model, alias, engine.client, follow=follow)
        searcher.bind()
        with running(create_app(searcher)) as url:
            before = httpx.get(f"{url}/api/search", params={"q": "a dog on a beach"})
            assert before.status_code == 200
            new = ingest_alias(adapter, other_model, source, options, alias, progress=False)
            after = httpx.get(f"{url}/api/search", params={"q": "a dog on a beach"})
            health = httpx.get(f"{url}/api/health")
        if follow:  # answered by the new model, from the new index, without a restart
            assert after.status_code == 200, after.text
            assert {h["index"] for h in after.json()["hits"]} == {new.index}
            expected = Searcher(other_model, new.index, engine.client).search("a dog on a beach")
            assert [h["id"] for h in after.json()["hits"]] == [h.id for h in expected.response.hits]
            from indexing.binding import model_binding

            assert health.status_code == 200, health.text
            assert health.json()["model_sha256"] == model_binding(other_model)["weights_sha256"]
        else:
            assert after.status_code == 503, after.text
            assert "is bound to model" in after.json()["detail"]
            assert health.status_code == 503
    finally:
        remove_prefixed(engine, alias)

"""OpenSearch's engine-side assets: ingest installs both, and the stored search template (mustache,
which Elasticsearch's minimal distribution lacks) runs the integrated-score query with only the
vector and the terms. The index template on both engines: test_index_template.py."""

from __future__ import annotations

import random

import pytest

from indexing.ingest import IngestOptions, ingest, model_meta, source_from_dataset
from indexing.layout import IndexSettings
from indexing.opensearch.assets import (
    ASSETS_VERSION,
    hybrid_template_source,
    install_assets,
    search_template_id,
    template_name,
    template_request,
)
from indexing.opensearch.queries import hybrid_query
from indexing.search import SearchOptions, search, vectors_from_embedding
from sparse_mm.data import load_dataset


@pytest.fixture(scope="module")
def indexed(engine, corpus, trained_model):
    import uuid

    client, name = engine.client, f"test-assets-{uuid.uuid4().hex[:8]}"
    report = ingest(
        client, trained_model, source_from_dataset(corpus, "test"), IngestOptions(index=name),
        progress=False,
    )  # fmt: skip
    yield client, name, report
    client.indices.delete(index=name, ignore_unavailable=True)
    client.indices.delete_index_template(name=template_name(name), ignore=[404])
    client.delete_script(id=search_template_id(name), ignore=[404])


def _queries(corpus, model, n, seed):
    ds = load_dataset(corpus, splits=["test"])
    rows = random.Random(seed).sample(range(len(ds.splits["test"].text_rows)), n)
    emb = ds.texts.emb[ds.splits["test"].text_rows[rows]]
    return [vectors_from_embedding(model, emb[i : i + 1]) for i in range(n)]


def _install_as_ingest_did(client, name, model):
    """Install the assets exactly as `ingest` did for this module's index (same meta)."""
    w1, w2 = model.serving_weights()
    dim = model.config.heads.dense_dim
    return install_assets(client, name, dim, IndexSettings(), w1, w2, model_meta(model))


def test_ingest_installs_both_assets_once(indexed, trained_model):
    client, name, report = indexed
    assert (report.assets.index_template, report.assets.search_template) == ("created", "created")
    template = client.indices.get_index_template(name=template_name(name))["index_templates"][0]
    assert template["index_template"]["version"] == ASSETS_VERSION
    assert template["index_template"]["index_patterns"] == [name]
    again = _install_as_ingest_did(client, name, trained_model)
    assert (again.index_template, again.search_template) == ("unchanged", "unchanged")


def test_reinstall_is_idempotent_and_a_change_updates(indexed, trained_model):
    client, name, _ = indexed
    args = (client, name, trained_model.config.heads.dense_dim, IndexSettings())
    meta = {"model": "m", "w1": 0.1, "w2": 0.1}
    try:
        install_assets(*args, 0.1, 0.1, meta)
        assert (
            install_assets(*args, 0.1, 0.1, meta)
            .describe()
            .endswith("index template unchanged, search template unchanged")
        )
        changed = install_assets(*args, 0.2, 0.1, meta)
        assert (changed.index_template, changed.search_template) == ("updated", "updated")
    finally:  # the module's other tests share these assets: put back what ingest installed
        restored = _install_as_ingest_did(client, name, trained_model)
    assert (restored.index_template, restored.search_template) == ("updated", "updated")


def test_template_renders_the_query_sparse_mm_sends(indexed, corpus, trained_model):
    client, name, _ = indexed
    q = _queries(corpus, trained_model, 1, seed=3)[0]
    request = template_request(name, q.dense, q.terms, k=7, window=50)
    rendered = client.render_search_template(body=request)["template_output"]
    cfg = trained_model.config
    expected = hybrid_query(q.dense, q.terms, w1=cfg.w1, w2=cfg.w2, k=7, window=50)
    # the template ends its clause lists with a no-op clause (mustache has no separators)
    candidates = rendered["query"]["bool"]["should"]
    exact_sparse = rendered["rescore"]["query"]["rescore_query"]["bool"]["should"][1]
    for clauses in (candidates, exact_sparse["bool"]["should"]):
        assert clauses.pop() == {"match_none": {}}
    assert rendered.pop("_source") == ["filename", "captions"]
    assert rendered == expected


def test_search_template_gives_the_integrated_scores(indexed, corpus, trained_model):
    client, name, _ = indexed
    cfg = trained_model.config
    for q in _queries(corpus, trained_model, 10, seed=4):
        ours = search(client, name, q, SearchOptions(explain=False), cfg.w1, cfg.w2)
        theirs = client.search_template(index=name, body=template_request(name, q.dense, q.terms))[
            "hits"
        ]["hits"]
        assert [h["_id"] for h in theirs] == [h.id for h in ours.hits]
        for hit, raw in zip(ours.hits, theirs, strict=True):
            assert raw["_score"] - cfg.w1 == pytest.approx(hit.score, rel=1e-6)


def test_template_source_is_valid_mustache_for_any_weights():
    source = hybrid_template_source(0.25, 0.75)
    assert "{{#terms}}" in source and "{{#toJson}}vector{{/toJson}}" in source
    assert '"boost": 0.5' in source and '"boost": 0.75' in source  # 2 * w1, w2

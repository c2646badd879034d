"""The index template `sparse-mm-<index>` that ingest installs, on each engine: created once,
unchanged when installed again, updated when the model's weights change, never downgraded, and
an index created by any client under that name gets sparse-mm's layout. (OpenSearch's stored
search template, which Elasticsearch's minimal distribution cannot hold: test_assets.py.)"""

from __future__ import annotations

import contextlib

import pytest

from indexing.engine import as_engine
from indexing.layout import DENSE_FIELD, SPARSE_FIELD, IndexSettings
from sparse_mm.errors import EngineError
from tests.engines import each_engine  # noqa: F401  (every test here runs on both engines)

DIM = 8
META = {"model": "m", "w1": 0.1, "w2": 0.1}


@pytest.fixture
def installed(engine, index_name):
    """Install the assets for `index_name` as ingest does (w1 = w2 = 0.1), remove them after."""
    adapter = as_engine(engine.client)
    report = adapter.install_assets(index_name, DIM, IndexSettings(), 0.1, 0.1, META)
    yield adapter, index_name, report
    _, not_found = adapter.request_errors()
    with contextlib.suppress(not_found):
        engine.client.indices.delete_index_template(name=f"sparse-mm-{index_name}")
    if engine.name == "opensearch":
        from indexing.opensearch.assets import search_template_id

        engine.client.delete_script(id=search_template_id(index_name), ignore=[404])


def _stored(adapter, index: str) -> dict:
    found = adapter.client.indices.get_index_template(name=f"sparse-mm-{index}")
    return found["index_templates"][0]["index_template"]


def test_created_once_unchanged_again_updated_on_a_new_weight(installed):
    adapter, name, report = installed
    assert report.index_template == "created"
    again = adapter.install_assets(name, DIM, IndexSettings(), 0.1, 0.1, META)
    assert again.index_template == "unchanged"
    changed = adapter.install_assets(name, DIM, IndexSettings(), 0.2, 0.1, META)
    assert changed.index_template == "updated"
    stored = _stored(adapter, name)
    assert stored["index_patterns"] == [name] and stored["version"] == report.version
    assert (stored["_meta"]["w1"], stored["_meta"]["w2"]) == (0.2, 0.1)


def test_any_client_creating_the_index_gets_the_layout(installed):
    adapter, name, _ = installed
    adapter.client.indices.create(index=name)  # no body: the template supplies everything
    got = adapter.index_mapping(name)["properties"]
    wanted = adapter.index_body(DIM, IndexSettings(), None)["mappings"]["properties"]
    for field in (DENSE_FIELD, SPARSE_FIELD):
        assert got[field]["type"] == wanted[field]["type"], field
    assert adapter.dense_dim(got) == DIM


def test_newer_assets_are_not_downgraded(installed):
    adapter, name, report = installed
    newer = {"index_patterns": [name], "version": report.version + 1, "template": {}}
    adapter.client.indices.put_index_template(name=f"sparse-mm-{name}", body=newer)
    with pytest.raises(EngineError, match="newer sparse-mm"):
        adapter.install_assets(name, DIM, IndexSettings(), 0.1, 0.1, META)
    assert _stored(adapter, name)["version"] == report.version + 1  # left as it was

"""Engine-side assets: an index template and a stored search template for the hybrid query.

With them in the engine, any OpenSearch client reproduces sparse-mm's indices and its
integrated score without sparse-mm:
- index template `sparse-mm-<index>` (pattern: the index name): the settings and mapping that
  `sparse-mm ingest` creates, so a re-created or restored index gets the same layout;
- stored search template `sparse-mm-hybrid-<index>` (mustache): the hybrid query of
  `indexing.opensearch.queries`, with the model's w1 and w2 built in. Parameters: `vector` (the
  query's unit dense vector), `terms` (a list of {"feature": name, "weight": w}, feature names
  encoded as `indexing.codec` does: '%' -> '%25', '.' -> '%2E'), optional `k` (default 10),
  `window` (default query_terms.DEFAULT_WINDOW; at least k) and `knn_k` (the neighbours the
  k-NN clause adds to the candidates, default query_terms.DEFAULT_KNN_K; at most the window).
  A hit's integrated score is its `_score` minus w1.

Both carry `ASSETS_VERSION`; installing is idempotent (unchanged assets are not rewritten) and
refuses to downgrade assets written by a newer sparse-mm.
"""

from __future__ import annotations

import contextlib
import json

from indexing.codec import encode_term
from indexing.engine import AssetsReport
from indexing.layout import IndexSettings
from indexing.opensearch.mapping import index_body
from indexing.opensearch.queries import hybrid_body, sparse_clauses
from indexing.query_terms import DEFAULT_KNN_K, DEFAULT_WINDOW
from sparse_mm.errors import EngineError

# 2: the stored template's default window went from 100 to 200 (query_terms.DEFAULT_WINDOW)
# 3: and from 200 to 600
# 4: no hit count (track_total_hits false), so Lucene skips from the first hit on
# 5: the window 200 and the k-NN clause's neighbours apart from it, 50 (knn_k)
# 6: the window 1000 (seed 11's grid at 1M: 200 missed 0.5% of top-10 hits)
ASSETS_VERSION = 6
DEFAULT_K = 10
SHOWN_FIELDS = ["filename", "captions"]
_PRIORITY = 500  # above OpenSearch's built-in templates


def template_name(index: str) -> str:
    return f"sparse-mm-{index}"


def search_template_id(index: str) -> str:
    return f"sparse-mm-hybrid-{index}"


def hybrid_template_source(w1: float, w2: float) -> str:
    """The mustache source of the stored hybrid query (see the module doc for parameters)."""
    # Built from the query builder itself, with placeholders that are then swapped for mustache
    # tags, so the template cannot drift from what `sparse-mm query` sends.
    clause = json.dumps(sparse_clauses({"@feature@": 0.0})[0]).replace(
        '"boost": 0.0', '"boost": @w@'
    )
    loop = "{{#terms}}" + clause + ",{{/terms}}" + '{"match_none": {}}'
    body = hybrid_body(
        "@vector@", ["@terms@"], w1=w1, w2=w2, k="@k@", window="@window@", knn_k="@knn_k@",
        ef_search="@knn_k@",  # the k-NN clause searches as wide as its neighbours, as query does
    )  # fmt: skip
    body["_source"] = SHOWN_FIELDS
    source = json.dumps(body)
    for placeholder, tag in (
        ('"@terms@"', loop),
        ('"@vector@"', "{{#toJson}}vector{{/toJson}}"),
        ('"@k@"', f"{{{{k}}}}{{{{^k}}}}{DEFAULT_K}{{{{/k}}}}"),
        ('"@window@"', f"{{{{window}}}}{{{{^window}}}}{DEFAULT_WINDOW}{{{{/window}}}}"),
        ('"@knn_k@"', f"{{{{knn_k}}}}{{{{^knn_k}}}}{DEFAULT_KNN_K}{{{{/knn_k}}}}"),
        ("@feature@", "{{feature}}"),
        ("@w@", "{{weight}}"),
    ):
        if placeholder not in source:
            raise AssertionError(f"hybrid template: placeholder {placeholder} not found")
        source = source.replace(placeholder, tag)
    return source


def template_request(
    index: str,
    vector: list[float],
    terms: dict[str, float],
    *,
    k: int = DEFAULT_K,
    window: int = DEFAULT_WINDOW,
    knn_k: int = DEFAULT_KNN_K,
) -> dict:
    """The body of `POST <index>/_search/template` for a query's dense vector and term weights
    (tokens as in the vocabulary; encoded here)."""
    window = max(window, k)
    params = {
        "vector": list(vector),
        "terms": [{"feature": encode_term(t), "weight": w} for t, w in terms.items()],
        "k": k,
        "window": window,
        "knn_k": min(knn_k, window),
    }
    return {"id": search_template_id(index), "params": params}


def install_assets(
    client, index: str, dense_dim: int, settings: IndexSettings, w1: float, w2: float, meta: dict
) -> AssetsReport:
    """Install or update both assets for `index`; see the module doc."""
    from opensearchpy.exceptions import NotFoundError

    body = index_body(dense_dim, settings, meta)
    wanted = {
        "index_patterns": [index],
        "priority": _PRIORITY,
        "version": ASSETS_VERSION,
        "template": body,
        "_meta": {"managed_by": "sparse-mm", "w1": w1, "w2": w2},
    }
    name = template_name(index)
    try:
        found = client.indices.get_index_template(name=name)["index_templates"][0]
        current = found["index_template"]
    except NotFoundError:
        current = None
    state_index = _put_state(current, wanted, f"index template {name}")
    if state_index != "unchanged":
        client.indices.put_index_template(name=name, body=wanted)

    return AssetsReport(state_index, install_search_template(client, index, w1, w2), ASSETS_VERSION)


def install_search_template(client, name: str, w1: float, w2: float) -> str:
    """The stored hybrid template for index or alias `name` with these weights: "created",
    "updated" or "unchanged"."""
    from opensearchpy.exceptions import NotFoundError

    script_id = search_template_id(name)
    source = hybrid_template_source(w1, w2)
    try:
        stored = client.get_script(id=script_id)["script"]["source"]
    except NotFoundError:
        stored = None
    if stored is None:
        state = "created"
    elif stored == source:
        state = "unchanged"
    else:
        state = "updated"
    if state != "unchanged":
        client.put_script(id=script_id, body={"script": {"lang": "mustache", "source": source}})
    return state


def delete_assets(client, index: str) -> None:
    """Remove `index`'s index template and stored search template (absent ones are fine)."""
    from opensearchpy.exceptions import NotFoundError

    for remove in (
        lambda: client.indices.delete_index_template(name=template_name(index)),
        lambda: client.delete_script(id=search_template_id(index)),
    ):
        with contextlib.suppress(NotFoundError):
            remove()


def _put_state(current: dict | None, wanted: dict, what: str) -> str:
    if current is None:
        return "created"
    version = current.get("version")
    if isinstance(version, int) and version > ASSETS_VERSION:
        raise EngineError(
            f"{what} has version {version}, written by a newer sparse-mm (this one writes "
            f"{ASSETS_VERSION}); upgrade sparse-mm or use another --index"
        )
    same = (
        version == ASSETS_VERSION
        and current.get("index_patterns") == wanted["index_patterns"]
        and current.get("_meta") == wanted["_meta"]
        and _normal(current.get("template", {})) == _normal(wanted["template"])
    )
    return "unchanged" if same else "updated"


def _normal(template: dict) -> str:
    """A comparable form of a template body: the engine returns settings as strings, nested."""

    def flat(value, prefix=""):
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                out.update(flat(item, f"{prefix}{key}."))
            return out
        return {prefix.rstrip("."): str(value).lower() if not isinstance(value, list) else value}

    settings = flat(template.get("settings", {}))
    settings = {k.removeprefix("index."): v for k, v in settings.items()}
    return json.dumps([settings, template.get("mappings", {})], sort_keys=True)

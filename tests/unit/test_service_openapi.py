"""The service's OpenAPI schema is the contract: every API route is in it, with its parameters,
and the hit's fields are those `sparse-mm query --json` prints."""

from __future__ import annotations

import dataclasses

from starlette.routing import Route

from indexing.search import Hit
from service.app import create_app
from service.openapi import schema
from service.params import KNOWN


def test_every_api_route_is_in_the_schema():
    app = create_app(searcher=None)  # the searcher is only used when a request comes
    routes = {r.path for r in app.routes if isinstance(r, Route) and r.path.startswith("/api/")}
    paths = set(schema(500, 100)["paths"])
    assert routes - {"/api/openapi.json"} == paths


def test_the_search_parameters_and_hit_fields_match_the_code():
    spec = schema(500, 100)
    params = {p["name"] for p in spec["paths"]["/api/search"]["get"]["parameters"]}
    assert params == set(KNOWN)
    hit = set(spec["components"]["schemas"]["Hit"]["properties"])
    # response_dict replaces `source` by filename, captions and meta
    fields = {f.name for f in dataclasses.fields(Hit)} - {"source"}
    assert fields | {"filename", "captions", "meta"} == hit

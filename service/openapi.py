"""The API's contract, served at /api/openapi.json (OpenAPI 3.1). Written out rather than
generated: it is short, and tests/unit/test_service.py checks that it names every API route."""

from __future__ import annotations

from sparse_mm import __version__

_PROBLEM = {"$ref": "#/components/responses/Problem"}
_NUMBER_OR_NULL = {"type": ["number", "null"]}


def _get(summary: str, parameters: list, ok: dict, errors: tuple[int, ...]) -> dict:
    responses = {"200": ok} | {str(code): _PROBLEM for code in (401, *errors)}
    return {"get": {"summary": summary, "parameters": parameters, "responses": responses}}


def json_of(ref: str) -> dict:
    return {
        "description": "OK",
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _query(name: str, schema: dict, description: str, required: bool = False) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


def schema(max_query_chars: int, max_k: int) -> dict:
    hit = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "score": {"type": "number", "description": "the model's score for the mode"},
            "dense_part": _NUMBER_OR_NULL,
            "sparse_part": _NUMBER_OR_NULL,
            "matches": {"type": "array", "items": {"$ref": "#/components/schemas/Match"}},
            "filename": {"type": ["string", "null"]},
            "captions": {"type": "array", "items": {"type": "string"}},
            "index": {"type": "string", "description": "the concrete index that answered"},
            "meta": {"type": "object", "description": "the collection's own metadata fields"},
        },
    }
    match = {
        "type": "object",
        "properties": {
            name: {"type": "string" if name == "term" else "number"}
            for name in ("term", "query_weight", "doc_weight", "contribution")
        },
    }
    timings = {
        "type": "object",
        "properties": {
            name: {"type": "number"}
            for name in ("encode_ms", "engine_ms", "round_trip_ms", "total_ms")
        },
    }
    answer = {
        "type": "object",
        "description": "the JSON of `sparse-mm query --json`, plus the request and timings",
        "properties": {
            "mode": {"type": "string"},
            "took_ms": {"type": "integer"},
            "client_ms": {"type": "number"},
            "round_trips": {"type": "integer"},
            "unknown_words": {"type": "array", "items": {"type": "string"}},
            "word_pieces": {"type": "object"},
            "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
            "query": {"type": "object"},
            "timings": {"$ref": "#/components/schemas/Timings"},
        },
    }
    search = [
        _query("q", {"type": "string", "maxLength": max_query_chars}, "query text", True),
        _query("mode", {"enum": ["hybrid", "sparse", "dense"], "default": "hybrid"}, "score"),
        _query("k", {"type": "integer", "minimum": 1, "maximum": max_k, "default": 10}, "hits"),
        _query(
            "filter",
            {"type": "array", "items": {"type": "string"}},
            "FIELD=VALUE, FIELD>=X, FIELD>X, FIELD<=X or FIELD<X (repeatable: different fields "
            "must all hold, one field repeated is any of its values); every mode, every phase",
        ),
    ]
    image_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "sparse-mm serve", "version": __version__},
        "paths": {
            "/api/search": _get("Search the index", search, json_of("Answer"), (400, 503)),
            "/api/health": _get(
                "Engine reachable, index present and fit", [], json_of("Health"), (503,)
            ),
            "/api/images/{id}": _get(
                "The image file of a hit",
                image_id,
                {"description": "the image", "content": {"image/*": {}}},
                (404, 503),
            ),
        },
        "components": {
            "schemas": {
                "Answer": answer,
                "Hit": hit,
                "Match": match,
                "Timings": timings,
                "Health": {"type": "object"},
            },
            "responses": {
                "Problem": {
                    "description": "problem details: one line in `detail`",
                    "content": {"application/problem+json": {"schema": {"type": "object"}}},
                }
            },
        },
    }

"""The Starlette application: GET /api/search, /api/health, /api/images/{id},
/api/openapi.json, and the static page at /. It owns no retrieval logic: every search goes
through `indexing.searcher.Searcher`, the path `sparse-mm query` takes.

The searcher's calls block (torch, the engine's synchronous client): they run in anyio's thread
pool, so the event loop keeps serving; the searcher's lock keeps the encoder to one thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from importlib.resources import files
from pathlib import Path

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from indexing.render import response_dict
from indexing.searcher import Searcher
from service.binding import check_model, search_filters
from service.guard import Guard
from service.images import image_path
from service.openapi import schema
from service.params import Limits, parse_search
from service.problems import Problem, one_line, problem_response
from sparse_mm.errors import EngineError, ModelMismatchError, SparseMMError

log = logging.getLogger("sparse_mm.serve")
STATIC = Path(str(files("service") / "static"))


@dataclass(frozen=True)
class ServiceConfig:
    images: Path | None = None  # where the documents' filenames are; None: no image files
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)


async def blocking(searcher: Searcher, fn, *args, client_status: int = 400, **kwargs):
    """`fn(*args, **kwargs)` in the thread pool, its failures as Problems: the engine down or
    refusing -> 503 with the reason, another one-line error -> `client_status`."""
    engine = searcher.engine
    try:
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))
    except engine.connection_errors as exc:
        reason = one_line(str(exc))[:200]
        raise Problem(
            503, f"{engine.label} at {engine.address()} does not answer: {reason}"
        ) from exc
    except (EngineError, ModelMismatchError) as exc:  # the service cannot answer right now
        raise Problem(503, str(exc)) from exc
    except SparseMMError as exc:
        raise Problem(client_status, str(exc)) from exc


def create_app(searcher: Searcher, config: ServiceConfig = ServiceConfig()) -> Starlette:
    """The service over `searcher` (its model, index and connected engine)."""
    limits = config.limits

    async def search(request):
        params = parse_search(request.query_params, limits)
        try:
            filters = search_filters(list(params.filters))
        except SparseMMError as exc:
            raise Problem(400, str(exc)) from exc
        answer = await blocking(searcher, searcher.search, params.q, filters,
                                mode=params.mode, k=params.k)  # fmt: skip
        body = response_dict(answer.response)
        body["query"] = {"q": params.q, "mode": params.mode, "k": params.k}
        body["timings"] = answer.timings.as_dict()
        return JSONResponse(body)

    async def health(request):
        try:
            body = await blocking(searcher, _health, searcher, config, client_status=503)
        except Problem as problem:
            return problem_response(503, f"unhealthy: {problem.detail}")
        return JSONResponse(body)

    async def image(request):
        if config.images is None:
            raise Problem(404, "this service has no image folder (start it with --images DIR)")
        doc_id = request.path_params["id"]
        fields = await blocking(
            searcher, searcher.engine.document_fields, searcher.index, doc_id, ["filename"]
        )
        path = image_path(config.images, (fields or {}).get("filename"))
        if path is None:
            raise Problem(404, f"no image file for id {doc_id!r} in {config.images}")
        return FileResponse(path)

    async def openapi(request):
        return JSONResponse(schema(limits.max_query_chars, limits.max_k))

    async def page(request):
        return FileResponse(STATIC / "index.html")

    routes = [
        Route("/", page),
        Route("/api/search", search),
        Route("/api/health", health),
        Route("/api/images/{id}", image),
        Route("/api/openapi.json", openapi),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(Guard, limits=limits, api_key=config.api_key)]
    if config.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.cors_origins),
                allow_methods=["GET"],
                allow_headers=["Authorization", "X-API-Key"],
            )
        )
    handlers = {Problem: _problem, HTTPException: _http_error, Exception: _unexpected}
    return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)


def _health(searcher: Searcher, config: ServiceConfig) -> dict:
    engine = searcher.engine
    version = engine.version()
    note = check_model(searcher)
    return {
        "status": "ok",
        "engine": engine.name,
        "version": version,
        "address": engine.address(),
        "index": searcher.index,
        "documents": engine.count(searcher.index),
        "model": str(searcher.model.path),
        "model_sha256": searcher.binding["weights_sha256"],
        "binding": note or "fit for the model",
        "images": str(config.images) if config.images else None,
    }


async def _problem(request, exc: Problem):
    return problem_response(exc.status, exc.detail)


async def _http_error(request, exc: HTTPException):
    detail = {404: f"no such path {request.url.path!r}", 405: f"{request.method} is not served"}
    return problem_response(exc.status_code, detail.get(exc.status_code, str(exc.detail)))


async def _unexpected(request, exc: Exception):
    # the client gets one line; the log gets the traceback
    log.exception("unexpected error on %s", request.url.path)
    return problem_response(500, f"internal error ({type(exc).__name__}); see the service's log")

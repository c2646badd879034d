"""`sparse-mm serve`: the HTTP API and search page over one index (entry point
`sparse_mm.commands`)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from indexing.engine_options import connect_engine, engine_options
from sparse_mm.cli_support import load_model, model_option
from sparse_mm.errors import ConfigError, EngineError

KEY_VARIABLE = "SPARSE_MM_API_KEY"


@click.command()
@model_option
@click.option("--index", default="sparse-mm", show_default=True, help="Index (or alias) to search.")
@engine_options
@click.option(
    "--images",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder holding the images the documents' filenames name, served at /api/images/ID "
    "[default: none; the page shows caption cards].",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
    help="Port to listen on (0: any free port).",
)  # fmt: skip
@click.option(
    "--api-key",
    envvar=KEY_VARIABLE,
    show_envvar=True,
    default=None,
    help="Require this key on /api/ ('Authorization: Bearer KEY' or 'X-API-Key: KEY').",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="Allow browser pages of this origin (repeatable) to call the API [default: none].",
)
@click.option("--max-k", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="Largest k a request may ask for.")  # fmt: skip
@click.option(
    "--follow-model/--no-follow-model",
    default=True,
    show_default=True,
    help="When the index (an alias) moves to an index bound to another model (`sparse-mm "
    "ingest --alias`), load that model from the path its binding records, checksums checked, "
    "and answer with it; --no-follow-model answers 503 instead.",
)
def serve(
    model_dir, index, engine, url, images, host, port, api_key, cors_origins, max_k, follow_model
) -> None:
    """Serve the search API and the search page at http://HOST:PORT/ (Ctrl-C stops it).

    GET /api/search?q=TEXT&mode=hybrid|sparse|dense&k=10 answers the JSON of `sparse-mm
    query --json` plus timings; /api/health, /api/images/ID and /api/openapi.json too.
    """
    _require_extra()
    from indexing.searcher import Searcher
    from service.app import ServiceConfig, create_app
    from service.params import Limits
    from service.server import bind, is_loopback, server

    if images is not None and not images.is_dir():
        raise ConfigError(f"--images {images} is not a folder")
    if api_key is not None and not api_key.strip():
        raise ConfigError(f"--api-key (or ${KEY_VARIABLE}) is empty")
    for origin in cors_origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(f"--cors-origin {origin!r} is not an origin like https://host:port")
    model = load_model(model_dir)
    client = connect_engine(url, engine, check=False)
    searcher = Searcher(model, index, client, follow=follow_model)
    _check_engine(searcher)
    searcher.load_encoder()  # now, not on the first request
    config = ServiceConfig(images, api_key, tuple(cors_origins), Limits(max_k=max_k))
    sock = bind(host, port)
    if not is_loopback(host):
        click.echo(
            f"warning: listening on {host}, reachable from other machines"
            + ("" if api_key else "; set --api-key"),
            err=True,
        )
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"serving {index} at http://{shown}:{sock.getsockname()[1]}/", err=True)
    logging.basicConfig(level=logging.INFO)
    for library in ("opensearch", "elastic_transport"):  # a line per engine request is noise
        logging.getLogger(library).setLevel(logging.WARNING)
    server(create_app(searcher, config), sock).run(sockets=[sock])


def _require_extra() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"sparse-mm serve needs the serve extra ({exc.name} is missing): "
            "pip install 'sparse-mm[serve]'"
        ) from None


def _check_engine(searcher) -> None:
    """Refuse an index that cannot serve the model; only warn when the engine does not answer
    yet or the index does not exist yet (/api/health says so until they do)."""
    from service.binding import check_model

    engine = searcher.engine
    try:
        note = check_model(searcher)
    except engine.connection_errors:
        note = f"{engine.label} at {engine.address()} does not answer yet"
    except EngineError as exc:
        note = str(exc)
    if note:
        click.echo(f"warning: {note}; /api/health says so until it is fixed", err=True)


COMMANDS = [serve]

"""Connection options shared by every command that talks to the engine: `connection_options`
adds them to a click command, `connect_engine` builds the checked client from them."""

from __future__ import annotations

from pathlib import Path

import click

from indexing.client import DEFAULT_TIMEOUT
from sparse_mm.cli_support import FiniteFloat


def _remember(ctx: click.Context, param: click.Parameter, value):
    ctx.meta[f"sparse_mm.{param.name}"] = value
    return value


def connection_options(f):
    """The connection's options (timeout, TLS, credentials, headers), remembered for
    `connect_engine`."""
    options = [
        click.option(
            "--timeout",
            type=FiniteFloat(min=0, min_open=True),
            default=DEFAULT_TIMEOUT,
            show_default=True,
            expose_value=False,
            callback=_remember,
            help="Seconds to wait for each request to the engine.",
        ),
        click.option(
            "--header",
            "headers",
            multiple=True,
            expose_value=False,
            callback=_remember,
            help="Extra request header 'Name: value' (repeatable), e.g. an API key.",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            expose_value=False,
            callback=_remember,
            help="Do not verify the engine's TLS certificate (throwaway clusters only).",
        ),
        click.option(
            "--ca-certs",
            type=click.Path(path_type=Path),
            envvar="OPENSEARCH_CA_CERTS",
            expose_value=False,
            callback=_remember,
            help="CA bundle that signed the engine's certificate (or $OPENSEARCH_CA_CERTS).",
        ),
        click.option(
            "--password-file",
            type=click.Path(path_type=Path),
            expose_value=False,
            callback=_remember,
            help="File whose first line is the password [default: $OPENSEARCH_PASSWORD].",
        ),
        click.option(
            "--user",
            envvar="OPENSEARCH_USER",
            expose_value=False,
            callback=_remember,
            help="Basic-auth user (or $OPENSEARCH_USER).",
        ),
    ]
    for option in options:
        f = option(f)
    return f


def connect_engine(url: str, engine: str = "opensearch"):
    """A checked client of `engine` (its official client) for `url` with the command's
    connection options."""
    from indexing.client import ConnectionOptions, connect, parse_headers, read_password

    meta = click.get_current_context().meta
    ca_certs = meta.get("sparse_mm.ca_certs")
    options = ConnectionOptions(
        url=url,
        timeout=meta.get("sparse_mm.timeout", DEFAULT_TIMEOUT),
        user=meta.get("sparse_mm.user"),
        password=read_password(meta.get("sparse_mm.password_file")),
        ca_certs=str(ca_certs) if ca_certs else None,
        verify=not meta.get("sparse_mm.insecure", False),
        headers=parse_headers(tuple(meta.get("sparse_mm.headers") or ())),
    )
    return connect(options, engine=engine)

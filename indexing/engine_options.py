"""The options every command that talks to an engine shares, defined once: `engine_option`
(--engine, its choices read from the registry when the command runs), `url_option` (--url, the
chosen engine's URL), `connection_options` (timeout, TLS, credentials, headers); and
`connect_engine`, which builds the checked client from them.

Credentials and the CA bundle come from the option, else from the chosen engine's own
variables (`EngineSpec.user_variable`, `password_variable`, `ca_variable`): an Elasticsearch
command never reads `$OPENSEARCH_USER`.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from indexing.client import DEFAULT_TIMEOUT
from indexing.registry import DEFAULT_ENGINE, engine_names, specs
from sparse_mm.cli_support import FiniteFloat


class EngineName(click.Choice):
    """The registered engines (indexing.registry.ENGINES) as they are when the command runs,
    plus `extra` choices (e.g. bench's "both")."""

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        self.extra = extra
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        return (*engine_names(), *self.extra)

    @choices.setter
    def choices(self, _value) -> None:  # click.Choice.__init__ assigns it
        pass


def engine_option(f, *, extra: tuple[str, ...] = (), help: str | None = None):
    """--engine, one of the registered engines (default the first)."""
    return click.option(
        "--engine",
        type=EngineName(extra),
        default=DEFAULT_ENGINE,
        show_default=True,
        help=help or "Which search engine serves the index.",
    )(f)


def _variables(attribute: str) -> str:
    """'$OPENSEARCH_USER, $ELASTICSEARCH_USER' for `user_variable`, from the registry."""
    return ", ".join(f"${getattr(s, attribute)}" for s in specs())


def url_option(f):
    """--url, the chosen engine's URL; without it the URL rule (indexing.registry)."""
    return click.option(
        "--url",
        default=None,
        help="The chosen engine's URL; https:// for TLS [default: the engine's URL variable "
        f"({_variables('url_variable')}), else http://127.0.0.1:PORT with its port variable "
        f"({_variables('port_variable')}), else its default port].",
    )(f)


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
            expose_value=False,
            callback=_remember,
            help="CA bundle that signed the engine's certificate [default: the engine's "
            f"variable: {_variables('ca_variable')}].",
        ),
        click.option(
            "--password-file",
            type=click.Path(path_type=Path),
            expose_value=False,
            callback=_remember,
            help="File whose first line is the password [default: the engine's variable: "
            f"{_variables('password_variable')}].",
        ),
        click.option(
            "--user",
            expose_value=False,
            callback=_remember,
            help="Basic-auth user [default: the engine's variable: "
            f"{_variables('user_variable')}].",
        ),
    ]
    for option in options:
        f = option(f)
    return f


def engine_options(f):
    """--engine, --url and the connection's options."""
    return engine_option(url_option(connection_options(f)))


def connect_engine(
    url: str | None, engine: str = DEFAULT_ENGINE, *, option: str = "--url", check: bool = True
):
    """A client of `engine` (its official client) for `url` (None: the URL rule, and the URL
    used is said on stderr once the engine answered) with the command's connection options;
    checked unless `check` is False (a service that must start while its engine is down)."""
    from indexing.client import ConnectionOptions, parse_headers, read_password
    from indexing.engine import connect
    from indexing.registry import engine_spec, url_source

    spec = engine_spec(engine)
    source = None
    if url is None:
        url, source = url_source(os.environ, engine)
    meta = click.get_current_context().meta
    ca_certs = meta.get("sparse_mm.ca_certs") or os.environ.get(spec.ca_variable)
    user = meta.get("sparse_mm.user") or os.environ.get(spec.user_variable)
    options = ConnectionOptions(
        url=url,
        timeout=meta.get("sparse_mm.timeout", DEFAULT_TIMEOUT),
        user=user or None,
        password=read_password(meta.get("sparse_mm.password_file"), spec.password_variable),
        ca_certs=str(ca_certs) if ca_certs else None,
        verify=not meta.get("sparse_mm.insecure", False),
        headers=parse_headers(tuple(meta.get("sparse_mm.headers") or ())),
    )
    adapter = connect(options, engine=engine, check=check)
    if source is not None:
        click.echo(f"{spec.label} at {options.safe_url} ({source}; {option} to choose)", err=True)
    return adapter.client

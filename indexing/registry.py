"""The engine registry: each engine's name -> its adapter, and what varies by engine (`EngineSpec`).

Every caller that needs to know what engines exist (the CLI's `--engine` choices and its
per-engine `start|stop|status` groups, the engine choice of the tests and `dev.sh`, the bench,
the test fixtures) reads it here, so that a third engine is one new adapter package and one
line in `ENGINES`. Reading a spec imports the adapter's module only: adapters import their
client library, torch and their node inside their methods, so `--help` stays instant.

The URL rule, for every engine command, `dev.sh` and the tests (`engine_url`): `--url`, else
the engine's URL variable, else `http://127.0.0.1:<port>` with the port from the engine's port
variable, else (an engine other than the first) `$SPARSE_MM_PORT` + the engine's offset, else
its default port.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sparse_mm.errors import ConfigError, EngineError

if TYPE_CHECKING:
    from indexing.engine import Engine

# name -> "module:class" of the adapter; the first is the default engine.
ENGINES = {
    "opensearch": "indexing.opensearch.adapter:OpenSearchEngine",
    "elasticsearch": "indexing.elasticsearch.adapter:ElasticsearchEngine",
}
DEFAULT_ENGINE = "opensearch"
BASE_PORT_VARIABLE = "SPARSE_MM_PORT"  # the first engine's port; the others follow it
BASE_PORT = 9200


@dataclass(frozen=True)
class EngineSpec:
    """What varies by engine, besides the adapter's methods."""

    name: str  # as on the command line: "opensearch"
    label: str  # as in messages: "OpenSearch"
    libraries: tuple[str, ...]  # top-level modules of the official clients it wraps
    client_module: str  # the module that builds its client: `connect(options, check=...)`
    default_port: int  # its managed node's and compose service's port on 127.0.0.1
    port_variable: str  # e.g. SPARSE_MM_PORT
    url_variable: str  # e.g. OPENSEARCH_URL
    user_variable: str  # basic-auth user
    password_variable: str  # basic-auth password (or --password-file)
    ca_variable: str  # CA bundle that signed the engine's certificate
    home_variable: str  # its managed nodes' home
    node: str  # "module:class" of its managed local node (indexing.local_node.LocalNode)
    node_summary: str  # the `sparse-mm <name>` group's help
    image_variable: str  # the Docker image to run instead of the compose file's
    compose_service: str  # docker-compose.yml's service, whose image is the default
    container: str  # "module:class" of its testcontainers container
    stored_template: bool  # hybrid as a stored search template (one request for any client)
    one_request_hybrid: bool  # the hybrid query (candidates + exact rescore) is one request
    query_profile: bool  # bench.profile's query-body variants are this engine's bodies
    # the hybrid's k-NN clause searches max(window, the index's ef_search) candidates (else
    # the window itself)
    knn_searches_ef_search: bool
    # `sparse-mm <name> start` flags beyond --port/--home/--heap/--timeout: (name, help), each
    # passed to the node class as a keyword (OpenSearch: secure)
    node_flags: tuple[tuple[str, str], ...] = ()
    # the test container: keyword arguments of `container` beyond the image, and environment
    container_kwargs: tuple[tuple[str, object], ...] = ()
    container_env: tuple[tuple[str, str], ...] = ()
    # the path the test container's readiness wait asks (None: the testcontainers module's own
    # wait); Elasticsearch's minimal distribution answers 405 to `GET /`
    container_health_path: str | None = None

    @property
    def port_offset(self) -> int:
        return self.default_port - BASE_PORT

    def node_class(self) -> type:
        return _load(self.node)

    def container_class(self) -> type:
        return _load(self.container)


def engine_names() -> tuple[str, ...]:
    """The registered engines, the default first."""
    return tuple(ENGINES)


def engine_class(name: str) -> type[Engine]:
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; expected one of {', '.join(ENGINES)}")
    return _load(ENGINES[name])


def engine_spec(name: str) -> EngineSpec:
    return engine_class(name).spec


def specs() -> tuple[EngineSpec, ...]:
    return tuple(engine_spec(name) for name in ENGINES)


def spec_for_library(library: str) -> EngineSpec | None:
    """The engine whose official client lives in the top-level module `library`."""
    return next((s for s in specs() if library in s.libraries), None)


def port_from(env: Mapping[str, str], engine: str = DEFAULT_ENGINE) -> int:
    """The engine's local port: its port variable; else, for an engine other than the first,
    $SPARSE_MM_PORT + its offset (Elasticsearch: + 1); else its default port."""
    spec = engine_spec(engine)
    if env.get(spec.port_variable):
        return _port(env, spec.port_variable)
    if spec.port_variable != BASE_PORT_VARIABLE and env.get(BASE_PORT_VARIABLE):
        return _port(env, BASE_PORT_VARIABLE) + spec.port_offset
    return spec.default_port


def port_rule(engine: str = DEFAULT_ENGINE) -> str:
    """The port rule in words, for --help: "$SPARSE_MM_ES_PORT, else $SPARSE_MM_PORT + 1, else
    9201"."""
    spec = engine_spec(engine)
    steps = [f"${spec.port_variable}"]
    if spec.port_variable != BASE_PORT_VARIABLE:
        steps.append(f"${BASE_PORT_VARIABLE} + {spec.port_offset}")
    return ", else ".join([*steps, str(spec.default_port)])


def url_source(env: Mapping[str, str], engine: str = DEFAULT_ENGINE) -> tuple[str, str]:
    """(URL, where it came from) by the URL rule, when no --url was given."""
    spec = engine_spec(engine)
    if env.get(spec.url_variable):
        return env[spec.url_variable], f"${spec.url_variable}"
    port = port_from(env, engine)
    local = f"http://127.0.0.1:{port}"
    if env.get(spec.port_variable):
        return local, f"${spec.port_variable}={env[spec.port_variable]}"
    if spec.port_variable != BASE_PORT_VARIABLE and env.get(BASE_PORT_VARIABLE):
        return local, f"${BASE_PORT_VARIABLE}={env[BASE_PORT_VARIABLE]} + {spec.port_offset}"
    return local, f"its default port; no ${spec.url_variable} or ${spec.port_variable}"


def engine_url(url: str | None, env: Mapping[str, str], engine: str = DEFAULT_ENGINE) -> str:
    """--url, else the URL rule (`url_source`)."""
    return url or url_source(env, engine)[0]


def _port(env: Mapping[str, str], variable: str) -> int:
    text = env[variable]
    try:
        port = int(text)
    except ValueError:
        raise EngineError(f"{variable}={text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise EngineError(f"{variable}={text!r} is not a port number")
    return port


def _load(target: str):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def variables_table() -> str:
    """The Markdown table of every engine's variables (docs/configuration.md holds it as
    rendered here; tests/unit/test_engine_registry.py checks it)."""
    rows = [
        ("URL", "`--url`", lambda s: f"`{s.url_variable}`"),
        ("port, without a URL", "", lambda s: re.sub(r"\$(\w+)", r"`\1`", port_rule(s.name))),
        ("basic-auth user", "`--user`", lambda s: f"`{s.user_variable}`"),
        ("password", "`--password-file`", lambda s: f"`{s.password_variable}`"),
        ("CA bundle", "`--ca-certs`", lambda s: f"`{s.ca_variable}`"),
        ("managed nodes' home", "`--home`", lambda s: f"`{s.home_variable}`"),
        ("Docker image", "", lambda s: f"`{s.image_variable}`"),
    ]
    all_specs = specs()
    lines = [
        "| | option | " + " | ".join(s.label for s in all_specs) + " |",
        "|---|---|" + "---|" * len(all_specs),
    ]
    for what, option, cell in rows:
        lines.append(f"| {what} | {option} | " + " | ".join(cell(s) for s in all_specs) + " |")
    return "\n".join(lines)

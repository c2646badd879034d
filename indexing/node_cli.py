"""`sparse-mm <engine> start|stop|status`: one command group per registered engine, generated
from its `EngineSpec` (indexing/registry.py), so every engine's managed node is run the same way.

Ports: `--port`, else the engine's port rule (`indexing.registry.port_from`: its port variable,
e.g. `$SPARSE_MM_PORT`, else its default), the same rule `ingest` and `query` find it by.
`stop` without `--port` stops only the nodes that the home's registry says this user started,
and lists them; `status` without `--port` says the state of every node recorded there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from indexing.registry import EngineSpec, engine_names, engine_spec, port_from, port_rule
from sparse_mm.cli_support import CommandGroup, FiniteFloat


def _home_option(spec: EngineSpec):
    return click.option(
        "--home",
        type=click.Path(path_type=Path, file_okay=False),  # a folder, made when missing
        default=None,
        help=f"Node home and cache directory [default: ${spec.home_variable}, else "
        f"~/.cache/sparse-mm/{spec.name}; for root /var/cache/sparse-mm/root/{spec.name}].",
    )


def _port_option(spec: EngineSpec, help: str):
    return click.option("--port", type=click.IntRange(1, 65535), default=None, help=help)


def _make_node(spec: EngineSpec, home: Path | None, port: int, **options):
    return spec.node_class()(home=home, port=port, **options)


def _default_home(spec: EngineSpec, home: Path | None) -> Path:
    from indexing.local_node import cache_home

    return (home or cache_home(spec.name)).expanduser().resolve()


def start_command(spec: EngineSpec) -> click.Command:
    def start(port: int | None, home: Path | None, heap: str, timeout: float, **flags) -> None:
        port = port or port_from(os.environ, spec.name)
        node = _make_node(spec, home, port, heap=heap, **flags)
        info = node.start(timeout=timeout, progress=lambda msg: click.echo(msg, err=True))
        click.echo(info.describe())

    port_help = f"HTTP port on 127.0.0.1 [default: {port_rule(spec.name)}]."
    options = [
        _port_option(spec, port_help),
        _home_option(spec),
        click.option("--heap", default="1g", show_default=True, help="JVM heap (-Xms and -Xmx)."),
        click.option(
            "--timeout",
            type=FiniteFloat(),
            default=180.0,
            show_default=True,
            help="Seconds to wait for the node.",
        ),
        *(click.option(f"--{name}", is_flag=True, help=text) for name, text in spec.node_flags),
    ]
    for option in reversed(options):
        start = option(start)
    return click.command(
        "start", help="Assemble (once) and start a local node; reuse it if one is already running."
    )(start)


def stop_command(spec: EngineSpec) -> click.Command:
    @click.command("stop")
    @_port_option(spec, "Only the node on this port [default: every node this user started "
                  "under --home].")  # fmt: skip
    @_home_option(spec)
    def stop(port: int | None, home: Path | None) -> None:
        from indexing.local_node import ports_started_by, recorded_ports

        if port:
            click.echo(_make_node(spec, home, port).stop())
            return
        root = _default_home(spec, home)
        ports = ports_started_by(root, os.geteuid())
        others = [p for p in recorded_ports(root) if p not in ports]
        if not ports:
            click.echo(f"no {spec.label} node that this user started is recorded under {root}")
        else:
            listed = ", ".join(map(str, ports))
            click.echo(f"stopping the {spec.label} nodes this user started under {root}: {listed}")
        for p in ports:
            click.echo(_make_node(spec, home, p).stop())
        if others:
            click.echo(
                f"left alone, not recorded as this user's: {', '.join(map(str, others))} "
                "(stop one with --port PORT)"
            )

    stop.help = f"Stop the node(s) started by `sparse-mm {spec.name} start`."
    return stop


def status_command(spec: EngineSpec) -> click.Command:
    @click.command("status")
    @_port_option(spec, "Only the node on this port [default: every node recorded under --home, "
                  "else the engine's port rule].")  # fmt: skip
    @_home_option(spec)
    def status(port: int | None, home: Path | None) -> None:
        from indexing.local_node import recorded_ports

        ports = [port] if port else recorded_ports(_default_home(spec, home))
        ports = ports or [port_from(os.environ, spec.name)]
        statuses = [_make_node(spec, home, p).status() for p in ports]
        for found in statuses:
            click.echo(found.describe())
        if not any(s.running for s in statuses):
            sys.exit(1)

    status.help = (
        "Say whether the managed node runs, where, and where its log is. Exit 1 if none does."
    )
    return status


def node_group(spec: EngineSpec) -> click.Group:
    group = CommandGroup(spec.name, help=spec.node_summary)
    for make in (start_command, stop_command, status_command):
        group.add_command(make(spec))
    return group


def node_groups() -> list[click.Group]:
    """One `sparse-mm <engine>` group per engine registered now."""
    return [node_group(engine_spec(name)) for name in engine_names()]

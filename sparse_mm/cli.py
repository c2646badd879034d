"""The `sparse-mm` command line: parse, build a config, call a library function, print.

Heavy imports (torch, opensearch-py) happen inside the commands so that `--help` stays instant.
Every `SparseMMError` becomes a one-line message on stderr and a non-zero exit status.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sparse_mm import __version__
from sparse_mm.errors import SparseMMError


class _Group(click.Group):
    """A click group that reports library errors in one line instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SparseMMError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sparse-mm")
def main() -> None:
    """Learned sparse + dense text-image retrieval, trained jointly and served by OpenSearch."""


# --------------------------------------------------------------------------------------------
# sparse-mm opensearch start|stop|status
# --------------------------------------------------------------------------------------------
_HOME_HELP = (
    "Node home and cache directory [default: $SPARSE_MM_HOME or ~/.cache/sparse-mm/opensearch]."
)


@main.group(cls=_Group)
def opensearch() -> None:
    """Run a real local OpenSearch node (no Docker needed), assembled from Maven Central."""


@opensearch.command("start")
@click.option("--port", default=9200, show_default=True, help="HTTP port on 127.0.0.1.")
@click.option("--home", type=click.Path(path_type=Path), default=None, help=_HOME_HELP)
@click.option("--heap", default="1g", show_default=True, help="JVM heap (-Xms and -Xmx).")
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for the node.")
def opensearch_start(port: int, home: Path | None, heap: str, timeout: float) -> None:
    """Assemble (once) and start a local node; reuse it if one is already running."""
    from indexing.node import ManagedNode

    node = ManagedNode(home=home, port=port, heap=heap)
    info = node.start(timeout=timeout, progress=lambda msg: click.echo(msg, err=True))
    click.echo(info.describe())


_PORT_HELP = "Only the node on this port [default: every node started under --home]."


@opensearch.command("stop")
@click.option("--port", type=int, default=None, help=_PORT_HELP)
@click.option("--home", type=click.Path(path_type=Path), default=None, help=_HOME_HELP)
def opensearch_stop(port: int | None, home: Path | None) -> None:
    """Stop the node(s) started by `sparse-mm opensearch start`."""
    from indexing.node import ManagedNode, managed_ports

    ports = [port] if port else managed_ports(home) or [9200]
    for p in ports:
        click.echo(ManagedNode(home=home, port=p).stop())


@opensearch.command("status")
@click.option("--port", type=int, default=None, help=_PORT_HELP)
@click.option("--home", type=click.Path(path_type=Path), default=None, help=_HOME_HELP)
def opensearch_status(port: int | None, home: Path | None) -> None:
    """Say whether the managed node runs, where, and where its log is. Exit 1 if none does."""
    from indexing.node import ManagedNode, managed_ports

    ports = [port] if port else managed_ports(home) or [9200]
    statuses = [ManagedNode(home=home, port=p).status() for p in ports]
    for status in statuses:
        click.echo(status.describe())
    if not any(s.running for s in statuses):
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()

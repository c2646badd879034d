"""`sparse-mm image build`: local images of the managed engines."""

from __future__ import annotations

import click

from sparse_mm.cli_support import CommandGroup


def _image_engines() -> tuple[str, ...]:
    """The registered engines that have an image recipe (indexing.images.spec.SPECS)."""
    from indexing.images.spec import SPECS
    from indexing.registry import engine_names

    return tuple(name for name in engine_names() if name in SPECS)


@click.group(cls=CommandGroup)
def image() -> None:
    """Container images of the engines, built locally (no registry needed)."""


@image.command("build")
@click.option(
    "--engine",
    type=click.Choice((*_image_engines(), "both")),
    default="both",
    show_default=True,
    help="Which engine's image.",
)
@click.option(
    "--base",
    default=None,
    metavar="IMAGE",
    help="Base image (bash and curl needed) [default: sparse-mm/base:<codename>, made by "
    "debootstrap from this system's apt source when absent; root only].",
)
def image_build(engine: str, base: str | None) -> None:
    """Build sparse-mm/opensearch:<version> and sparse-mm/elasticsearch:<version> from the
    same pinned artifacts and Java runtime as the managed nodes; an image already built from
    the same inputs is reused.

    Use them with docker compose and the tests through SPARSE_MM_OPENSEARCH_IMAGE and
    SPARSE_MM_ELASTICSEARCH_IMAGE.

    \b
    Example:
      sparse-mm image build
      export SPARSE_MM_OPENSEARCH_IMAGE=sparse-mm/opensearch:3.4.0
      docker compose up -d --wait
    """
    from indexing.images.build import build_image
    from indexing.images.spec import SPECS

    names = list(SPECS) if engine == "both" else [engine]
    for name in names:
        built = build_image(SPECS[name], base, lambda msg: click.echo(msg, err=True))
        click.echo(built.describe())


COMMANDS = (image,)

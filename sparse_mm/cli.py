"""The root `sparse-mm` command: assembles the commands each package owns and owns `data synth`.

Every package keeps its own commands (`training.cli`, `indexing.cli`, `bench.cli`); every
`SparseMMError` becomes a one-line message on stderr and a non-zero exit status
(`sparse_mm.cli_support.CommandGroup`).
"""

from __future__ import annotations

from pathlib import Path

import click

from sparse_mm import __version__
from sparse_mm.cli_support import CommandGroup


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sparse-mm")
def main() -> None:
    """Learned sparse + dense text-image retrieval, trained jointly and served by OpenSearch."""


# --------------------------------------------------------------------------------------------
# sparse-mm data synth
# --------------------------------------------------------------------------------------------
@main.group(cls=CommandGroup)
def data() -> None:
    """Datasets in the reference layout: a synthetic corpus, the own-images example, what
    the demo corpus contains."""


@data.command("synth")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write.")
@click.option(
    "--images", default=20000, show_default=True, help="Number of images (5 captions each)."
)
@click.option("--seed", default=0, show_default=True, help="Same seed, same corpus.")
def data_synth(out: Path, images: int, seed: int) -> None:
    """Write a SYNTHETIC corpus (embeddings, captions, vocabulary, initial projection).

    It stands in for a real backbone's embeddings in tests, demos and benchmarks; nothing in
    it comes from a real vision-language model.
    """
    from sparse_mm.synth import SynthParams, synthesize

    if images < 10:
        raise click.BadParameter("use at least 10 images", param_hint="--images")
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} is a file; give a folder to write", param_hint="--out")
    summary = synthesize(out, SynthParams(seed=seed, n_images=images), progress=True)
    click.echo(summary.describe())


@data.command("example")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write.")
@click.option(
    "--images", type=click.IntRange(10, 100_000), default=200, show_default=True,
    help="Images to draw (a tenth test, a tenth val, the rest train).",
)  # fmt: skip
@click.option("--seed", default=0, show_default=True, help="Same seed, same example.")
def data_example(out: Path, images: int, seed: int) -> None:
    """Write the inputs of the README's "Your own images": a tiny RANDOM BLIP checkpoint
    (blip/), drawn images (images/), their captions (meta.json) and a training config
    (tiny.json). Needs the blip extra.

    A random backbone aligns nothing: retrieval on it stays at chance; the example shows the
    commands working. Then, in OUT: sparse-mm embed --backbone blip --images images --meta
    meta.json --out data
    """
    from sparse_mm.example import write_example

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise click.BadParameter(f"{out} exists and is not an empty folder", param_hint="--out")
    click.echo(write_example(out, images, seed).describe())


@data.command("world")
def data_world() -> None:
    """List what the demo corpus contains: its objects, places, attributes and actions, and
    the other words a query may use (read from sparse_mm/synth_words.py)."""
    import shutil

    from sparse_mm.synth_words import describe_world

    click.echo(describe_world(shutil.get_terminal_size((100, 24)).columns))


def _assemble() -> None:
    from bench.cli import bench
    from indexing.cli import COMMANDS as indexing_commands
    from sparse_mm.model_cli import COMMANDS as model_commands
    from training.cli import COMMANDS as training_commands

    for command in (*model_commands, *training_commands, *indexing_commands, bench):
        main.add_command(command)


_assemble()


if __name__ == "__main__":  # pragma: no cover
    main()

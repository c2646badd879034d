"""The root `sparse-mm` command: finds the commands each package owns and owns `data synth`.

Every package keeps its own commands (`training.cli`, `indexing.cli`, `bench.cli`) and declares
them in pyproject.toml's entry point group `sparse_mm.commands`; the root imports none of them
(the core never imports the packages that build on it): it loads the entry points when a
command is looked up. Every `SparseMMError` becomes a one-line message on stderr and a non-zero
exit status (`sparse_mm.cli_support.CommandGroup`).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path

import click

from sparse_mm import __version__
from sparse_mm.cli_support import CommandGroup

GROUP = "sparse_mm.commands"
# What pyproject.toml declares, for an install whose metadata predates the entry points (an
# editable install not reinstalled since): the same providers, found the same way.
_DECLARED = (
    "sparse_mm.model_cli:COMMANDS",
    "training.cli:COMMANDS",
    "indexing.cli:commands",
    "bench.cli:bench",
    "service.cli:COMMANDS",
)


def _provided(value) -> list[click.Command]:
    """An entry point's object: a command, a sequence of them, or a function returning them."""
    if callable(value) and not isinstance(value, click.Command):
        value = value()
    return [value] if isinstance(value, click.Command) else list(value)


def package_commands() -> dict[str, click.Command]:
    """name -> command, from every entry point of `GROUP` (loaded now, not at import)."""
    found = [e.value for e in entry_points(group=GROUP)] or list(_DECLARED)
    commands: dict[str, click.Command] = {}
    for target in found:
        module, _, attr = target.partition(":")
        for command in _provided(getattr(import_module(module), attr)):
            commands[command.name] = command
    return commands


class RootGroup(CommandGroup):
    """The root group: its own commands plus the packages' (`package_commands`), found when
    `commands` is read (by click, or by a test walking every command), not at import."""

    @property
    def commands(self) -> dict[str, click.Command]:
        return {**package_commands(), **self._own}

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:  # click.Group.__init__
        self._own = dict(value)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        self._own[name or cmd.name] = cmd


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sparse-mm")
def main() -> None:
    """Learned sparse + dense text-image retrieval, trained jointly and served by OpenSearch or
    Elasticsearch."""


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


if __name__ == "__main__":  # pragma: no cover
    main()

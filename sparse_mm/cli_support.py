"""What every package's commands share: the error-reporting group, the model and data options.

Each package owns its click commands (`training.cli`, `indexing.cli`, `bench.cli`); the root
command in `sparse_mm.cli` only assembles them. Heavy imports (torch, engine clients) happen
inside the commands so that `--help` stays instant.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import click

from sparse_mm.errors import ConfigError, DataError, SparseMMError

ErrorTranslator = Callable[[Exception], "str | None"]


class CommandGroup(click.Group):
    """A click group that reports library errors in one line instead of a traceback.

    `SparseMMError` is always one line; other exceptions go through `translators` (packages add
    theirs, e.g. the engine adapters turn a 401/403 into one line) and are raised as they are
    when no translator claims them.
    """

    translators: ClassVar[list[ErrorTranslator]] = []

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SparseMMError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            message = next(filter(None, (t(exc) for t in self.translators)), None)
            if message is None:
                raise
            click.echo(f"error: {message}", err=True)
            ctx.exit(1)


class FiniteFloat(click.FloatRange):
    """A float option that refuses NaN and infinities (which pass click's range checks: every
    comparison with NaN is false) before applying its range."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)

    def _describe_range(self) -> str:
        if self.min is None and self.max is None:
            return ""  # no bounds beyond finiteness (click would print "x<=None")
        return super()._describe_range()


PORT = click.IntRange(1, 65535)  # a TCP port


def check_width(model, width: int, where) -> None:
    """One line, not a shape error from deep inside torch, when data's embeddings (`width`
    columns, read from `where`) are not the width the model was trained on."""
    expected = model.config.heads.in_dim
    if width != expected:
        raise DataError(
            f"{where}: embeddings are {width}-d but the model {model.path} takes {expected}-d: "
            "give data embedded by the backbone it was trained on"
        )


def model_option(f):
    return click.option(
        "--model",
        "model_dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Model directory [default: the bundled demo model].",
    )(f)


def data_option(f):
    return click.option(
        "--data",
        "data_dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Dataset folder in the seed layout [default: the bundled demo corpus].",
    )(f)


def device_option(f):
    return click.option(
        "--device",
        default=None,
        help="cpu, cuda, cuda:1 ... [default: cuda when a GPU is visible, else cpu].",
    )(f)


def resolve_device(device: str | None, *, announce: bool = True) -> str:
    """The --device value, or cuda when torch sees a GPU, else cpu; printed on stderr unless
    the caller reports it itself (`announce=False`)."""
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if announce:
        click.echo(f"device: {device}", err=True)
    return device


def load_model(model_dir: Path | None):
    from sparse_mm.checkpoint import load_model as load
    from sparse_mm.demo import demo_model_dir

    return load(model_dir or demo_model_dir())


def data_root(data_dir: Path | None) -> Path:
    from sparse_mm.demo import demo_data_dir

    return data_dir or demo_data_dir()


def check_writable(path: Path | None, option: str) -> None:
    """Raise a one-line ConfigError unless a file can be written at `path` (its folder exists
    and is writable, and it is not itself a folder). Commands call it before any slow or remote
    work, so that a typo in an output path is not found after an hour of ingest."""
    if path is None:
        return
    folder = path.parent
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    if not folder.is_dir():
        raise ConfigError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{option} {path} is not writable")

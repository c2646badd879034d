"""Running `sparse-mm` commands in tests as users run them (click's runner, in-process), and the
check that a misuse ends in one clear line and a non-zero exit."""

from __future__ import annotations

from click.testing import CliRunner, Result

from sparse_mm.cli import main


def run(*args, env: dict | None = None) -> Result:
    """`sparse-mm ARGS...` (each argument str()-ed); stdout and stderr kept apart."""
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def one_line_error(result: Result, *fragments: str, code: int | None = None) -> None:
    """The command failed (with exit status `code`, if given) and said why in one line (click's
    usage errors may put their usage lines first), containing every fragment."""
    assert result.exit_code != 0 if code is None else result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    message = lines[-1]
    assert len(lines) == 1 or lines[0].startswith("Usage:"), result.stderr
    for fragment in fragments:
        assert fragment in message, message

"""Running `sparse-mm` commands in tests as users run them (click's runner, in-process), and the
check that a misuse ends in one clear line and a non-zero exit."""

from __future__ import annotations

import re

from click.testing import CliRunner, Result

from sparse_mm.cli import main


def run(*args, env: dict | None = None) -> Result:
    """`sparse-mm ARGS...` (each argument str()-ed); stdout and stderr kept apart."""
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


# The line a command prints once the engine answered, when the URL came from the URL rule
# rather than --url: "OpenSearch at http://127.0.0.1:9200 ($OPENSEARCH_URL; --url to choose)".
URL_NOTE = re.compile(r"^\S.* at \S+ \(.+; --[\w-]+ to choose\)$")


def error_lines(stderr: str) -> list[str]:
    """stderr's lines without the URL rule's note: what the command said went wrong."""
    return [line for line in stderr.strip().splitlines() if not URL_NOTE.match(line)]


def one_line_error(result: Result, *fragments: str, code: int | None = None) -> None:
    """The command failed (with exit status `code`, if given) and said why in one line (click's
    usage errors may put their usage lines first; the URL rule's note on where the engine is may
    come before it), containing every fragment."""
    assert result.exit_code != 0 if code is None else result.exit_code == code, result.output
    lines = error_lines(result.stderr)
    message = lines[-1]
    assert len(lines) == 1 or lines[0].startswith("Usage:"), result.stderr
    for fragment in fragments:
        assert fragment in message, message

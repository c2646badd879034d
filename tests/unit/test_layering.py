"""Dependencies point one way (ARCHITECTURE.md): the core's root command imports none of the
packages that build on it (it finds their commands through entry points), `--help` imports no
torch, and indexing's neutral connection options do not import the adapter interface."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("training", "indexing", "bench", "service")


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_root_command_imports_no_package_built_on_the_core():
    loaded = _python(
        "import sys, sparse_mm.cli\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(PACKAGES)!r}))"
    )
    assert loaded == "[]"


@pytest.mark.parametrize(
    "args", [["--help"], ["ingest", "--help"], ["bench", "--help"], ["opensearch", "--help"],
             ["train", "--help"], ["serve", "--help"]],
)  # fmt: skip
def test_help_imports_no_torch(args):
    loaded = _python(
        "import sys\nfrom sparse_mm.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    assert loaded.splitlines()[-1] == "False"


def test_the_root_finds_every_packages_commands_through_its_entry_points():
    import tomllib

    from sparse_mm.cli import _DECLARED, GROUP, package_commands

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert set(declared[GROUP]) == {"model", "training", "indexing", "bench", "service"}
    # the fallback for an install whose metadata predates the entry points names the same
    assert sorted(_DECLARED) == sorted(declared[GROUP].values())
    names = set(package_commands())
    assert {"import", "embed", "train", "eval", "ingest", "query", "bench", "serve"} <= names
    assert {"opensearch", "elasticsearch"} <= names


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_connection_options_do_not_import_the_adapter_interface():
    assert "indexing.engine" not in _imports(ROOT / "indexing" / "client.py")
    for name in ("cli.py", "cli_support.py", "__init__.py"):
        assert not any(m.split(".")[0] in PACKAGES for m in _imports(ROOT / "sparse_mm" / name))


def test_indexing_and_the_core_never_import_the_service():
    """service/ builds on indexing (one search path, `indexing.searcher`); never the reverse."""
    for package in ("sparse_mm", "training", "indexing"):
        for path in (ROOT / package).rglob("*.py"):
            found = {m.split(".")[0] for m in _imports(path)}
            assert "service" not in found, path

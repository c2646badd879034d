"""Every command of the CLI, walked from the root group, with the common mistakes: missing or
wrong paths, a file where a folder belongs, data of another width, malformed URLs, an
unreachable engine, an unknown engine, NaN where a number is read. Each ends in one line on
stderr and a non-zero exit, never a traceback. A command added without its mistakes listed
here fails `test_every_command_has_its_mistakes_listed`."""

from __future__ import annotations

import json

import click
import pytest

from sparse_mm.cli import main
from sparse_mm.synth import SynthParams, synthesize
from tests.cli_run import one_line_error, run

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing answers there
BAD_PORT = "http://127.0.0.1:abc"

# command -> [(arguments, fragments of the one line)]; {tmp}: a fresh folder, {corpus}: a
# 768-d synthetic corpus, {narrow}: a 48-d one, {file}: a regular file
MISTAKES: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "train": [
        (("--data", "{tmp}/nope", "--out", "{tmp}/m"), ("nope", "does not exist")),
        (("--data", "{file}", "--out", "{tmp}/m"), ("is a file, not a dataset folder",)),
        (("--data", "{corpus}", "--out", "{tmp}/m", "--lr", "nan"), ("--lr", "not a finite")),
        (("--data", "{corpus}", "--out", "{tmp}/m", "--config", "{tmp}/no.json"), ("no.json",)),
        (("--data", "{narrow}", "--out", "{tmp}/m", "--config", "{wide_config}"), ("hidden_dim",)),
    ],
    "eval": [
        (("--data", "{narrow}"), ("48-d", "768-d")),
        (("--data", "{file}"), ("is a file, not a dataset folder",)),
        (("--model", "{tmp}/nope", "--data", "{corpus}"), ("nope", "does not exist")),
        (("--data", "{corpus}", "--json", "{tmp}/no-dir/m.json"), ("--json", "no-dir")),
        (("--data", "{corpus}", "--split", "nope"), ("no split 'nope'",)),
    ],
    "tune-weights": [
        (("--model", "{demo_model}", "--data", "{narrow}"), ("48-d", "768-d")),
        (("--model", "{tmp}/nope", "--data", "{corpus}"), ("nope", "does not exist")),
        (("--model", "{demo_model}", "--data", "{file}"), ("is a file",)),
    ],
    "ingest": [
        (("--data", "{file}", "--url", CLOSED), ("is a file, not a dataset folder",)),
        (("--data", "{narrow}", "--url", CLOSED), ("48-d", "768-d")),
        (("--url", BAD_PORT), ("port 'abc'",)),
        (("--url", "localhost:9200"), ("must look like http://HOST:PORT",)),
        (("--url", CLOSED), ("cannot reach OpenSearch at " + CLOSED,)),
        (("--engine", "elasticsearch", "--url", CLOSED), ("cannot reach Elasticsearch",)),
        (("--engine", "solr"), ("'solr' is not one of",)),
        (("--doc-min-weight", "nan", "--url", CLOSED), ("--doc-min-weight", "not a finite")),
        (("--timeout", "nan", "--url", CLOSED), ("--timeout", "not a finite")),
    ],
    "query": [
        (("a dog", "--url", BAD_PORT), ("port 'abc'",)),
        (("a dog", "--url", CLOSED), ("cannot reach OpenSearch at " + CLOSED,)),
        (("a dog", "--engine", "elasticsearch", "--url", CLOSED), ("cannot reach Elasticsearch",)),
        (("a dog", "--engine", "solr"), ("'solr' is not one of",)),
        (("xyzzy", "--url", CLOSED), ("no known words in query",)),
        (("a dog", "--query-min-weight", "inf", "--url", CLOSED), ("--query-min-weight", "inf")),
        (("a dog", "--model", "{tmp}/nope"), ("nope", "does not exist")),
        (("--caption-id", "1", "--data", "{file}", "--url", CLOSED), ("is a file",)),
    ],
    "serve": [  # each fails before the service listens (a mistake that did not would hang)
        (("--url", BAD_PORT), ("port 'abc'",)),
        (("--url", "localhost:9200"), ("must look like http://HOST:PORT",)),
        (("--engine", "solr"), ("'solr' is not one of",)),
        (("--model", "{tmp}/nope", "--url", CLOSED), ("nope", "does not exist")),
        (("--images", "{tmp}/nope", "--url", CLOSED), ("--images", "is not a folder")),
        (("--images", "{file}", "--url", CLOSED), ("--images", "is not a folder")),
        (("--api-key", "", "--url", CLOSED), ("--api-key", "is empty")),
        (("--cors-origin", "example.com", "--url", CLOSED), ("is not an origin",)),
        (("--port", "70000"), ("70000 is not in the range",)),
        (("--timeout", "nan", "--url", CLOSED), ("--timeout", "not a finite")),
    ],
    "delete": [
        (("--index", "x", "--url", CLOSED), ("--id ID... or --ids FILE",)),
        (
            ("--index", "x", "--ids", "{tmp}/none.txt", "--url", CLOSED),
            ("none.txt", "does not exist"),
        ),
        (("--index", "x", "--ids", "{tmp}", "--url", CLOSED), ("is a folder",)),
        (("--index", "x", "--id", "1", "--url", CLOSED), ("cannot reach OpenSearch at " + CLOSED,)),
        (("--index", "x", "--id", "1", "--url", BAD_PORT), ("port 'abc'",)),
        (("--id", "1", "--engine", "solr"), ("'solr' is not one of",)),
    ],
    "indices": [
        (("--url", CLOSED), ("cannot reach OpenSearch at " + CLOSED,)),
        (("--engine", "elasticsearch", "--url", CLOSED), ("cannot reach Elasticsearch",)),
        (("--url", "localhost:9200"), ("must look like http://HOST:PORT",)),
    ],
    "bench": [
        (("--data", "{file}", "--url", CLOSED, "--queries", "5"), ("--data", "not a folder")),
        (("--data", "{narrow}", "--url", CLOSED, "--queries", "5"), ("768", "48")),
        (("--url", BAD_PORT, "--queries", "5"), ("port 'abc'",)),
        (("--url", CLOSED, "--queries", "5"), ("cannot reach OpenSearch at " + CLOSED,)),
        (("--engine", "solr"), ("'solr' is not one of",)),
        (("--qps-seconds", "nan", "--url", CLOSED), ("--qps-seconds",)),
    ],
    "embed": [
        (
            (
                "--backbone",
                "nope-blip",
                "--images",
                "{tmp}",
                "--meta",
                "{meta}",
                "--out",
                "{tmp}/o",
            ),
            ("nope-blip does not exist",),
        ),
        (
            ("--backbone", "{file}", "--images", "{tmp}", "--meta", "{meta}", "--out", "{tmp}/o"),
            ("is a file",),
        ),
        (
            ("--backbone", "x", "--images", "{file}", "--meta", "{meta}", "--out", "{tmp}/o"),
            ("image folder", "is a file"),
        ),
        (
            ("--backbone", "x", "--images", "{tmp}", "--meta", "{tmp}/no.json", "--out", "{tmp}/o"),
            ("no.json", "does not exist"),
        ),
    ],
    "import": [
        (("{tmp}/no.ckpt", "--vocab", "{file}", "--out", "{tmp}/m"), ("no.ckpt", "does not exist")),
        (("{file}", "--vocab", "{file}", "--out", "{tmp}/m"), ("not a readable PyTorch",)),
        (("{file}", "--vocab", "{file}", "--out", "{tmp}"), ("exists; use --overwrite",)),
    ],
    "data synth": [
        (("--out", "{file}", "--images", "10"), ("is a file",)),
        (("--out", "{tmp}/s", "--images", "5"), ("at least 10 images",)),
        (("--out", "{tmp}/s", "--images", "nan"), ("'nan' is not a valid integer",)),
    ],
    "data example": [
        (("--out", "{file}"), ("is not an empty folder",)),
        (("--out", "{tmp}/e", "--images", "5"), ("5 is not in the range",)),
    ],
    "image build": [
        (("--engine", "solr"), ("'solr' is not one of",)),
        (("--base",), ("--base", "requires an argument")),
    ],
    "data world": [
        (("objects",), ("unexpected extra argument",)),
    ],
    **{
        f"{engine} {action}": [
            (("--port", "abc"), ("'abc' is not a valid integer",)),
            (("--port", "70000"), ("--port", "70000 is not in the range")),
            (("--home", "{file}"), ("--home", "is a file")),
        ]
        for engine in ("opensearch", "elasticsearch")
        for action in ("start", "stop", "status")
    },
}


def leaf_commands(group: click.Group, prefix: str = "") -> list[str]:
    """Every runnable command under `group`, as typed after `sparse-mm`."""
    names = []
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            names += leaf_commands(command, path + " ")
        else:
            names.append(path)
    return names


def test_every_command_has_its_mistakes_listed():
    assert sorted(leaf_commands(main)) == sorted(MISTAKES)


@pytest.fixture(scope="module")
def places(mini_corpus, tmp_path_factory):
    base = tmp_path_factory.mktemp("mistakes")
    narrow = base / "narrow"
    synthesize(narrow, SynthParams(seed=5, n_images=60, dim=48, dense_dim=16))
    (base / "file.txt").write_text("not a folder, not a checkpoint\n")
    (base / "meta.jsonl").write_text('{"image": "a.jpg", "caption": "a dog"}\n')
    (base / "wide.json").write_text(json.dumps({"hidden_dim": 768, "epochs": 1}))
    from sparse_mm.demo import demo_model_dir

    return {
        "corpus": mini_corpus,
        "narrow": narrow,
        "file": base / "file.txt",
        "meta": base / "meta.jsonl",
        "wide_config": base / "wide.json",
        "demo_model": demo_model_dir(),
    }


CASES = [(name, args, fragments) for name, cases in MISTAKES.items() for args, fragments in cases]


@pytest.mark.parametrize(
    ("command", "args", "fragments"), CASES, ids=[f"{c[0]}:{' '.join(c[1])}" for c in CASES]
)
def test_a_mistake_is_one_line(places, tmp_path, command, args, fragments):
    values = [a.format(tmp=tmp_path, **places) for a in args]
    result = run(*command.split(), *values)
    one_line_error(result, *fragments)
    assert result.stderr.strip().splitlines()[-1].startswith(("error: ", "Error: "))

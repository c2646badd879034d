"""Commands check their local inputs before contacting the engine: with the engine unreachable,
a wrong path, split, output file or caption id is reported as itself (one line, non-zero exit),
never as "cannot reach OpenSearch". Also: --template-request refuses search-only options."""

from __future__ import annotations

import pytest

from tests.cli_run import one_line_error, run

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing answers there


def assert_one_line_error(result, *fragments: str) -> None:
    one_line_error(result, *fragments)
    assert result.stderr.strip().splitlines()[-1].startswith(("error: ", "Error: "))
    assert "cannot reach OpenSearch" not in result.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--data", "{tmp}/nonexistent"), ("dataset folder", "nonexistent", "does not exist")),
        (("--data", "{corpus}", "--split", "nope"), ("no split 'nope'",)),
        (("--data", "{corpus}", "--model", "{tmp}/no-model"), ("no-model", "does not exist")),
        (("--data", "{corpus}", "--rejects", "{tmp}/no-dir/r.jsonl"), ("--rejects", "no-dir")),
        (("--data", "{corpus}", "--rejects", "{tmp}"), ("--rejects", "is a folder")),
    ],
)
def test_ingest_checks_local_inputs_before_the_engine(mini_corpus, tmp_path, args, fragments):
    values = [a.format(tmp=tmp_path, corpus=mini_corpus) for a in args]
    result = run("ingest", *values, "--url", UNREACHABLE)
    assert_one_line_error(result, *fragments)


def test_ingest_with_good_inputs_does_reach_for_the_engine(mini_corpus, tmp_path):
    result = run(
        "ingest", "--data", mini_corpus, "--rejects", tmp_path / "r.jsonl", "--url", UNREACHABLE
    )
    assert result.exit_code != 0
    assert f"cannot reach OpenSearch at {UNREACHABLE}" in result.stderr.strip().splitlines()[-1]


def test_query_checks_the_caption_id_before_the_engine(mini_corpus):
    result = run("query", "--caption-id", "no-such-caption", "--data", mini_corpus,
                 "--url", UNREACHABLE)  # fmt: skip
    assert_one_line_error(result, "no caption with id 'no-such-caption'")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--data", "{tmp}/nonexistent"), ("--data", "nonexistent", "is not a folder")),
        (("--data", "{corpus}", "--split", "nope"), ("no split 'nope'",)),
        (("--json", "{tmp}/no-dir/out.json"), ("--json", "no-dir", "does not exist")),
        (("--model", "{tmp}/no-model"), ("no-model", "does not exist")),
        (("--clients", "1,x"), ("--clients", "comma-separated integers")),
    ],
)
def test_bench_checks_local_inputs_before_the_engine(mini_corpus, tmp_path, args, fragments):
    values = [a.format(tmp=tmp_path, corpus=mini_corpus) for a in args]
    result = run("bench", *values, "--url", UNREACHABLE, "--queries", "5")
    assert_one_line_error(result, *fragments)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (("--mode", "sparse"), "--mode"),
        (("--exact",), "--exact"),
        (("--json",), "--json"),
        (("--url", "http://127.0.0.1:9"), "--url"),
        (("--timeout", "5"), "--timeout"),
        (("--mode", "dense", "--exact"), "--mode, --exact"),
    ],
)
def test_template_request_refuses_search_only_options(extra, named):
    result = run("query", "a dog on the beach", "--template-request", *extra)
    assert result.exit_code == 2, result.output
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: --template-request") and named in message, message
    assert result.stdout == ""  # nothing printed that a script could mistake for the request


def test_template_request_alone_is_printed_without_an_engine(monkeypatch):
    monkeypatch.setenv("OPENSEARCH_URL", UNREACHABLE)  # from the environment: not refused
    result = run("query", "a dog on the beach", "--template-request", "--window", "50")
    assert result.exit_code == 0, result.output
    assert '"window": 50' in result.stdout

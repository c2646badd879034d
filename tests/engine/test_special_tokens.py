"""A vocabulary of tokens made of every special character, end to end: the same model with its
tokens renamed is ingested and queried through the CLI and the stored search template, and
must give exactly the hits, scores and matching terms of the original (renamed)."""

from __future__ import annotations

import json
import shutil
import string
import uuid

import pytest
from click.testing import CliRunner

from sparse_mm.checkpoint import load_model
from sparse_mm.cli import main
from sparse_mm.vocab import Vocabulary
from tests.engines import (
    each_engine,  # noqa: F401  (every test here runs on both engines)
    send_template_request,
)

QUERIES = ("a dog on the beach", "a red car in the street", "two people playing football")
# Every ASCII punctuation character, JSON's and mustache's syntax, the codec's own escapes,
# whitespace and control characters, and unicode that is easy to mangle.
ODD = [
    *string.punctuation,
    "..", "%", "%2E", "%25", "%%2E", "{{", "}}", "{{feature}}", "{{/terms}}", "{{{weight}}}",
    '"}', '\\"', "\\", "\\u0000", " ", "  a b  ", "\t", "\x00", "\x1f", "\x7f", "\x85",
    "é", "中文", "🐕", "e\u0301", "\u200d", "\u2028", "\ufeff", "\u202e", "[CLS]", "##s",
    "u.s.", "<b>", "&amp;", "$", "null", "true",
]  # fmt: skip


def renamed(n: int) -> list[str]:
    tokens = list(dict.fromkeys(ODD))
    i = 0
    while len(tokens) < n:
        tokens.append(f"{ODD[i % len(ODD)]}{i}{ODD[(i * 7) % len(ODD)]}")
        i += 1
    return tokens[:n]


def run(*args):
    """The command's result; its JSON is on stdout (a query's unknown words warn on stderr)."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def pair(engine, corpus, trained_model, tmp_path_factory):
    """(original model, renamed model, their indices) ingested from the same split."""
    odd_dir = tmp_path_factory.mktemp("odd-vocab") / "model"
    shutil.copytree(trained_model.path, odd_dir)
    tokens = renamed(len(trained_model.vocab))
    Vocabulary(tokens).save(odd_dir / trained_model.config.vocab_file)
    odd = load_model(odd_dir)
    assert odd.vocab.tokens == tuple(tokens)
    names = [f"test-odd-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    rejects = tmp_path_factory.mktemp("rejects")
    for model, name in zip((trained_model, odd), names, strict=True):
        run("ingest", "--model", model.path, "--data", corpus, "--index", name,
            "--engine", engine.name, "--url", engine.url,
            "--rejects", rejects / f"{name}.jsonl")  # fmt: skip
    yield trained_model, odd, names
    for name in names:
        engine.client.indices.delete(index=name, ignore_unavailable=True)


@pytest.mark.parametrize("mode", ["hybrid", "sparse"])
def test_renamed_tokens_give_the_same_hits_scores_and_terms(engine, pair, mode):
    original, odd, (plain_index, odd_index) = pair
    rename = dict(zip(original.vocab.tokens, odd.vocab.tokens, strict=True))
    shown: set[str] = set()
    for text in QUERIES:
        answers = [
            json.loads(run("query", text, "--model", model.path, "--index", name,
                           "--engine", engine.name, "--url", engine.url, "--mode", mode,
                           "--json").stdout)["hits"]
            for model, name in ((original, plain_index), (odd, odd_index))
        ]  # fmt: skip
        plain, renamed_hits = answers
        assert [h["id"] for h in renamed_hits] == [h["id"] for h in plain], text
        assert [h["score"] for h in renamed_hits] == pytest.approx([h["score"] for h in plain])
        for a, b in zip(plain, renamed_hits, strict=True):
            assert [rename[m["term"]] for m in a["matches"]] == [m["term"] for m in b["matches"]]
            shown.update(m["term"] for m in b["matches"])
    assert shown & set(ODD), "no query matched through a purely special token"


def test_the_template_request_handles_every_special_token(engine, pair):
    _, odd, (_, odd_index) = pair
    for text in QUERIES:
        common = ("--model", odd.path, "--index", odd_index, "--engine", engine.name)
        request = json.loads(run("query", text, *common, "--template-request", "-k", "5").stdout)
        raw = send_template_request(engine, odd_index, request)
        ours = json.loads(run("query", text, *common, "--url", engine.url, "--json", "-k", "5")
                          .stdout)["hits"]  # fmt: skip
        assert [h["_id"] for h in raw] == [h["id"] for h in ours]
        w1 = odd.config.w1
        assert [h["_score"] - w1 for h in raw] == pytest.approx(
            [h["score"] for h in ours], rel=1e-6
        )

"""A query's words that the model's vocabulary lacks are named on stderr (and in --json), never
dropped silently; the exit status is unchanged."""

from __future__ import annotations

import json

from indexing.render import render_json
from indexing.search import SearchResponse, encode_query
from sparse_mm.checkpoint import load_model
from sparse_mm.demo import demo_model_dir
from sparse_mm.encoders import UnknownWord, describe_unknown, load_query_encoder
from tests.cli_run import run


def test_the_demo_encoder_names_the_words_it_leaves_out():
    model = load_model(demo_model_dir())
    encoder = load_query_encoder(model)
    vectors = encode_query(model, encoder, "a dgo on a baech, a dgo xyzzy")
    assert [w.word for w in vectors.unknown_words] == ["dgo", "baech", "xyzzy"]
    assert all(w.pieces == () for w in vectors.unknown_words)
    assert encode_query(model, encoder, "a dog on a beach").unknown_words == ()


def test_the_query_command_warns_and_keeps_its_exit_status():
    result = run("query", "a dgo on a baech xyzzy", "--template-request")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)  # the request is still printed
    assert result.stderr.strip().splitlines() == [
        "warning: words not in the model's vocabulary, left out of the query: dgo, baech, xyzzy"
    ]
    clean = run("query", "a dog on a beach", "--template-request")
    assert clean.exit_code == 0 and clean.stderr == ""


def test_word_pieces_are_described_and_listed_in_json():
    words = (UnknownWord("dgo", ("dg", "##o")), UnknownWord("qq"))
    assert describe_unknown(list(words)) == (
        "warning: words not in the model's vocabulary, left out of the query: qq; "
        "encoded as word pieces: dgo (dg ##o)"
    )
    response = SearchResponse("hybrid", [], 1, 2.0, unknown_words=words)
    out = json.loads(render_json(response))
    assert out["unknown_words"] == ["dgo", "qq"] and out["word_pieces"] == {"dgo": ["dg", "##o"]}

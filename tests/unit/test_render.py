"""The query output: the table's columns and the JSON's keys, on hand-made hits."""

from __future__ import annotations

import json

from indexing.render import render_json, render_table
from indexing.search import Hit, Match, SearchResponse


def _response() -> SearchResponse:
    long = "a very long caption about a dog that runs along the beach at dawn"
    hits = [
        Hit(
            "547",
            0.7401,
            0.0573,
            0.6828,
            [Match("dog", 2.03, 1.70, 0.345), Match("beach", 1.73, 1.88, 0.325)],
            {"filename": "a.jpg", "captions": [long, "another"]},
        ),
        Hit("9", 0.5, 0.1, 0.4, [], {"filename": "b.jpg"}),
    ]
    return SearchResponse("hybrid", hits, 6, 11.4)


def test_table_shows_parts_caption_and_terms():
    lines = render_table(_response(), width=105).splitlines()
    assert lines[0].split()[:6] == ["rank", "id", "score", "dense", "sparse", "caption"]
    first = lines[2]
    assert first.split()[:5] == ["1", "547", "0.7401", "0.0573", "0.6828"]
    assert "a very long caption about..." in first  # cut to the column, marked
    assert all(len(line) <= 105 for line in lines)
    assert "dog 2.03x1.70, beach 1.73x1.88" in first
    assert lines[3].split()[5] == "-"  # no captions stored
    assert lines[-1] == "hybrid: 2 hits, engine took 6 ms, round trip 11 ms"


def test_the_caption_column_takes_the_width_it_is_given():
    wide = render_table(_response(), width=200).splitlines()
    assert "a very long caption about a dog that runs along the beach at dawn  dog" in wide[2]
    narrow = render_table(_response(), width=60).splitlines()  # never under 20 characters
    assert "a very long capti...  dog" in narrow[2]
    # the terminal's width when none is given (COLUMNS, as a terminal sets it)
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, {"COLUMNS": "200"}):
        assert render_table(_response()).splitlines() == wide


def test_single_modes_name_their_part_columns():
    response = _response()
    for mode, shown in (("dense", ["cos", "dot"]), ("sparse", ["cos", "dot"])):
        table = render_table(SearchResponse(mode, response.hits, 6, 11.4), width=100)
        header, _, first, *_ = table.splitlines()
        assert header.split()[3:5] == shown
        cos, dot = first.split()[3:5]
        assert (cos == "-") == (mode == "sparse") and (dot == "-") == (mode == "dense")


def test_empty_result_says_so():
    assert "(no hits)" in render_table(SearchResponse("sparse", [], 1, 2.0))


def test_json_has_the_documented_keys():
    out = json.loads(render_json(_response()))
    assert set(out) == {
        "mode", "took_ms", "client_ms", "round_trips", "unknown_words", "word_pieces", "hits"
    }  # fmt: skip
    hit = out["hits"][0]
    assert hit["filename"] == "a.jpg" and hit["captions"][1] == "another"
    assert hit["score"] == 0.7401 and hit["matches"][0]["term"] == "dog"
    assert out["hits"][1]["captions"] == []

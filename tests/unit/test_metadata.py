"""The collection's metadata fields: what the meta file's entries give, the types inferred, and
the one-line errors for what an index cannot take."""

from __future__ import annotations

import json

import pytest

from indexing.ingest import source_from_dataset
from indexing.layout import IndexSettings, index_body
from indexing.metadata import infer_fields, meta_properties, new_fields
from sparse_mm.data import entry_fields
from sparse_mm.errors import DataError
from sparse_mm.synth import SynthParams, synthesize


def test_an_entrys_own_fields_leave_out_what_sparse_mm_reads():
    entry = {
        "imgid": 3,
        "filename": "a.jpg",
        "split": "test",
        "sentences": [],
        "sentids": [1],
        "licence": "cc0",
        "cocoid": 17,
        "date": None,
    }
    assert entry_fields(entry) == {"licence": "cc0", "cocoid": 17}


def test_types_are_inferred_from_every_value():
    rows = [
        {"licence": "cc0", "year": 2001, "score": 1, "tags": ["a", "b"], "ok": True},
        {"licence": "mit", "year": 2003, "score": 0.5, "tags": [], "exif": {"iso": 100}},
    ]
    fields, left_out = infer_fields(rows)
    assert fields == {
        "licence": "keyword",
        "year": "long",
        "score": "double",  # whole and fractional numbers: double
        "tags": "keyword",
        "ok": "boolean",
    }
    assert left_out == ["exif"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"year": 2001}, {"year": "recent"}], "mixes keyword and long"),
        ([{"a.b": 1}], "cannot be indexed"),
        ([{"tags": ["x", 2]}], "mixes keyword and long"),
    ],
)
def test_what_an_index_cannot_take_is_one_line(rows, message):
    with pytest.raises(DataError, match=message) as caught:
        infer_fields(rows)
    assert "\n" not in str(caught.value)


def test_an_existing_index_takes_new_fields_but_never_another_type():
    have = meta_properties({"year": "long", "score": "double"})
    assert new_fields(have, {"year": "long", "licence": "keyword"}, "photos") == {
        "licence": "keyword"
    }
    assert new_fields(have, {"score": "long"}, "photos") == {}  # a double takes whole numbers
    with pytest.raises(DataError, match="holds metadata field 'year' as long"):
        new_fields(have, {"year": "double"}, "photos")  # a long would truncate 2.5


def test_the_mapping_declares_the_fields_under_meta():
    body = index_body({"type": "x"}, {"type": "y"}, IndexSettings(fields=(("year", "long"),)))
    assert body["mappings"]["properties"]["meta"] == {
        "properties": {"year": {"type": "long", "store": True}}
    }
    assert "meta" not in index_body({}, {}, IndexSettings())["mappings"]["properties"]


def test_a_datasets_fields_reach_its_documents(tmp_path):
    synthesize(tmp_path, SynthParams(seed=1, n_images=60))
    meta_path = tmp_path / "dataset_meta.json"
    meta = json.loads(meta_path.read_text())
    for n, entry in enumerate(meta["images"]):
        entry["licence"] = "cc0" if n % 2 else "mit"
        entry["year"] = 2000 + n
    meta_path.write_text(json.dumps(meta))
    source = source_from_dataset(tmp_path, "test")
    first = source.metadata[0]
    assert first["meta"]["licence"] in ("cc0", "mit") and isinstance(first["meta"]["year"], int)
    assert source.queries is not None and source.queries.shape[1] == source.emb.shape[1]
    assert 1 <= len(source.queries) <= 20


def test_shown_fields_from_stored_fields_take_the_sources_shape():
    from indexing.layout import shown_from_stored

    fields = {
        "filename": ["a.jpg"],
        "captions": ["a dog"],
        "meta.year": [2001],
        "meta.tags": ["even", "decade-2000s"],
    }
    assert shown_from_stored(fields) == {
        "filename": "a.jpg",
        "captions": ["a dog"],
        "meta": {"year": 2001, "tags": ["even", "decade-2000s"]},
    }
    assert shown_from_stored({}) == {}

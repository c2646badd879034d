"""Results files are written atomically: a writer that dies before its rename leaves the
previous complete file and no temporary beside it."""

from __future__ import annotations

import json
import os

import pytest

from sparse_mm.atomic import write_text_atomic
from sparse_mm.provenance import write_json


def test_a_rewrite_replaces_the_whole_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "sub" / "r.json"
    write_text_atomic(path, "first\n")
    write_text_atomic(path, "second\n")
    assert path.read_text() == "second\n"
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0o600


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_crash_before_the_rename_keeps_the_previous_results(tmp_path, monkeypatch, step):
    path = tmp_path / "opensearch.json"
    write_json({"runs": [{"n_docs": 10_000}]}, path)

    def crash(*_args, **_kwargs):
        raise OSError("killed mid-write")

    monkeypatch.setattr(os, step, crash)
    with pytest.raises(OSError, match="killed mid-write"):
        write_json({"runs": [{"n_docs": 10_000}, {"n_docs": 1_000_000}]}, path)
    assert json.loads(path.read_text()) == {"runs": [{"n_docs": 10_000}]}
    assert [p.name for p in tmp_path.iterdir()] == ["opensearch.json"]

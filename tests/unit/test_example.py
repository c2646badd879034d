"""`sparse-mm data example` makes the inputs of the README's "Your own images" section, and the
section's commands then run as printed, from inside that folder; `sparse-mm data world` lists
what the demo corpus contains, every word of it one the demo model knows."""

from __future__ import annotations

import json
import re

from sparse_mm.checkpoint import load_model
from sparse_mm.demo import demo_model_dir
from sparse_mm.encoders import load_query_encoder
from sparse_mm.synth_words import FILLER, concepts
from tests.cli_run import one_line_error, run


def test_the_example_runs_as_the_readme_prints_it(tmp_path, monkeypatch):
    made = run("data", "example", "--out", tmp_path / "own", "--images", "30")
    assert made.exit_code == 0, made.output
    assert "30 drawn images: 3 test, 3 val, 24 train" in made.stdout
    monkeypatch.chdir(tmp_path / "own")
    meta = json.loads((tmp_path / "own" / "meta.json").read_text())
    assert len(meta["images"]) == 30
    embedded = run("embed", "--backbone", "blip", "--images", "images", "--meta", "meta.json",
                   "--out", "data")  # fmt: skip
    assert embedded.exit_code == 0, embedded.output
    trained = run("train", "--data", "data", "--config", "tiny.json", "--out", "model")
    assert trained.exit_code == 0, trained.output
    # the tiny backbone is 32-d with 16-d projections: sizes from the data, said once
    assert "dense_dim 16 (init_projection.safetensors)" in trained.stderr
    assert "hidden_dim 32 (word_embeddings.safetensors)" in trained.stderr
    assert re.search(r"^validation metrics \(split val\) of the model, epoch \d+:$",
                     trained.stdout, re.M)  # fmt: skip
    evaluated = run("eval", "--model", "model", "--data", "data", "--json", "eval.json")
    assert evaluated.exit_code == 0, evaluated.output
    assert load_model("model").config.query_encoder["type"] == "blip"


def test_the_example_refuses_a_folder_that_holds_files(tmp_path):
    (tmp_path / "x").write_text("mine")
    one_line_error(run("data", "example", "--out", tmp_path), "is not an empty folder", code=2)


def test_the_world_lists_every_concept_and_the_demo_model_knows_its_words():
    shown = run("data", "world")
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    for kind, title in (("object", "objects"), ("scene", "places"), ("attribute", "attributes"),
                        ("action", "actions")):  # fmt: skip
        names = ["/".join([n, *s]) for k, n, s in concepts() if k == kind]
        assert f"{title} ({len(names)}): {', '.join(names)}" in text
    assert f"other words ({len(FILLER)}): {', '.join(FILLER)}" in text
    listed = re.findall(r"[a-z]+", text.split(". ", 2)[-1])
    encoder = load_query_encoder(load_model(demo_model_dir()))
    unknown = {w for w in listed if w not in encoder.word_id} - {
        "objects", "places", "attributes", "actions", "other", "words"
    }  # fmt: skip
    assert not unknown

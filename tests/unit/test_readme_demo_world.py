"""What README.md and docs/demo-corpus.md say the demo world contains is what the generator
makes: the concept counts and examples per kind, the probabilities of an image's parts, and the
quoted captions of the demo's image 1. (docs/demo-corpus.md's word lists are checked with the
measurement blocks, bench.readme_tables.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sparse_mm.synth_words import concepts

REPO = Path(__file__).resolve().parents[2]
PAGES = (REPO / "README.md", REPO / "docs" / "demo-corpus.md")
KINDS = {"objects": "object", "places (scenes)": "scene", "attributes": "attribute",
         "actions": "action"}  # fmt: skip
ROW = re.compile(r"^\| (?P<label>[a-z ()]+) \| (?P<count>\d+) \| (?P<examples>.+) \|$", re.M)
EXAMPLE = re.compile(r"(\w+)(?: \(([\w, ]+)\))?")


def _section(text: str) -> str:
    start = text.index("### The demo world")
    return text[start : text.index("\n## ", start)]


def _table(text: str) -> dict[str, tuple[int, list[tuple[str, list[str]]]]]:
    out = {}
    for m in ROW.finditer(_section(text)):
        examples = [(n, s.split(", ") if s else []) for n, s in EXAMPLE.findall(m["examples"])]
        out[m["label"]] = (int(m["count"]), examples)
    return out


def test_the_readme_table_counts_and_names_the_generators_concepts():
    table = _table(PAGES[0].read_text(encoding="utf-8"))
    assert set(table) == set(KINDS)
    for label, (count, examples) in table.items():
        kind = KINDS[label]
        named = {n: s for k, n, s in concepts() if k == kind}
        assert count == len(named), label
        assert examples, label
        for name, synonyms in examples:
            assert name in named, f"{name} is not a {kind} of the demo world"
            assert set(synonyms) <= set(named[name]), f"{name}: {synonyms} vs {named[name]}"


def test_the_probabilities_of_an_images_parts_are_the_generators():
    from sparse_mm.synth import _PRESENT

    second, place, attribute, action = (f"{100 * p:.0f}%" for p in _PRESENT[1:])
    phrase = (
        f"a second object ({second}), a place ({place}), an attribute ({attribute}) and an "
        f"action ({action})"
    )
    for page in PAGES:
        text = " ".join(page.read_text(encoding="utf-8").split())
        assert phrase in text, page.name


@pytest.fixture(scope="module")
def image_1_captions() -> list[str]:
    from sparse_mm.demo import DEMO_IMAGES, DEMO_SEED
    from sparse_mm.synth import BLOCK, SynthParams, World, generate_chunk

    world = World(SynthParams(seed=DEMO_SEED, n_images=DEMO_IMAGES))
    per = world.params.captions_per_image
    return generate_chunk(world, 0, BLOCK).captions[per : 2 * per]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_quoted_captions_are_the_demos_image_1(page, image_1_captions):
    text = " ".join(page.read_text(encoding="utf-8").split()).lower()
    quoted = ", ".join(f'"{c}"' for c in image_1_captions)
    assert f"image 1 of the demo corpus, for example: {quoted}" in text, page.name

"""README.md and docs/*.md hold together: every relative link resolves (the file exists, and a
`#fragment` names a heading of the page it points to), and the README links every docs page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = (README, *DOCS)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def links(text: str) -> list[str]:
    """Targets of the Markdown links outside code (fenced blocks and inline code)."""
    return LINK.findall(INLINE_CODE.sub("", FENCE.sub("", text)))


def anchors(text: str) -> set[str]:
    """The fragments GitHub gives a page's headings (lower case, punctuation dropped, spaces
    to hyphens, a repeated one numbered)."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", text).splitlines():
        if not line.startswith("#"):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken(page: Path) -> list[str]:
    out = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not relative
            continue
        path, _, fragment = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            out.append(f"{target}: no such file")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file.read_text()):
            out.append(f"{target}: no heading #{fragment} in {path or page.name}")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    assert not broken(page), f"{page.relative_to(REPO)}: {broken(page)}"


def test_the_readme_links_every_docs_page():
    linked = {(REPO / t.partition("#")[0]).resolve() for t in links(README.read_text())}
    unlinked = [p.name for p in DOCS if p.resolve() not in linked]
    assert DOCS and not unlinked, f"README.md links no {unlinked}"


def test_the_readme_fits_in_the_head():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 400


def test_a_broken_link_and_a_missing_heading_are_found(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n## Its part: `x --y`\n")
    page = tmp_path / "b.md"
    page.write_text(
        "[ok](a.md#its-part-x---y) [ok](a.md) [here](#b) [web](https://example.org/x)\n"
        "# B\n[gone](c.md) [no heading](a.md#nope) `[code](d.md)`\n```\n[code](e.md)\n```\n"
    )
    assert broken(page) == ["c.md: no such file", "a.md#nope: no heading #nope in a.md"]

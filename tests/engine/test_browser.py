"""The search page in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by selenium; no browser download) against `sparse-mm serve` run as users run it (a
subprocess on a free port) over a corpus of drawn image files: typing "a dog on a beach" shows
the API's 10 hits in its order, each with its image from /api/images; the mode switch shows the
sparse hits. A screenshot is saved ($SPARSE_MM_SCREENSHOT, else the test's folder).

Without chromium the test fails when SPARSE_MM_REQUIRE_ENGINE is set (CI), else it is skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.cli_run import run

QUERY = "a dog on a beach"
CHROMIUM = ("chromium", "chromium-browser")
DRIVER = "chromedriver"


def _browser() -> tuple[str, str]:
    found = [shutil.which(name) for name in CHROMIUM]
    browser, driver = next((b for b in found if b), None), shutil.which(DRIVER)
    if browser and driver:
        return browser, driver
    reason = "the browser test needs Debian's chromium and chromium-driver (apt-get install -y "
    reason += "chromium chromium-driver; .ci/run installs them)"
    if os.environ.get("SPARSE_MM_REQUIRE_ENGINE", "") not in ("", "0", "false"):
        pytest.fail(f"SPARSE_MM_REQUIRE_ENGINE is set and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def drawn(engine, tmp_path_factory):
    """(model dir, image folder, index): `sparse-mm data example`'s 200 drawn images embedded by
    its tiny BLIP, a model trained on them, the 20 test images ingested."""
    root = tmp_path_factory.mktemp("browser") / "own"
    assert run("data", "example", "--out", root, "--images", 200).exit_code == 0
    steps = [
        ("embed", "--backbone", root / "blip", "--images", root / "images",
         "--meta", root / "meta.json", "--out", root / "data", "--device", "cpu"),
        ("train", "--data", root / "data", "--config", root / "tiny.json", "--out", root / "model"),
    ]  # fmt: skip
    for step in steps:
        done = run(*step)
        assert done.exit_code == 0, done.output
    index = f"test-browser-{uuid.uuid4().hex[:8]}"
    ingest = run("ingest", "--model", root / "model", "--data", root / "data", "--index", index,
                 "--engine", engine.name, "--url", engine.url,
                 "--rejects", root / "rejects.jsonl")  # fmt: skip
    assert ingest.exit_code == 0, ingest.output
    yield root / "model", root / "images", index
    engine.client.indices.delete(index=index, ignore_unavailable=True)


@pytest.fixture(scope="module")
def served(engine, drawn):
    """The base URL of `sparse-mm serve` (a subprocess) over the drawn corpus."""
    model, images, index = drawn
    command = [sys.executable, "-m", "sparse_mm.cli", "serve", "--model", str(model),
               "--index", index, "--images", str(images), "--engine", engine.name,
               "--url", engine.url, "--port", "0"]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in process.stderr:
            found = re.match(r"serving \S+ at (http://\S+)/$", line.strip())
            if found:
                url = found.group(1)
                break
        assert url, f"sparse-mm serve did not start (exit {process.poll()})"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = _browser()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1200,900", "--disable-gpu"):  # fmt: skip
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    yield chrome
    chrome.quit()


def _shown(browser, count: int) -> list:
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(b):
        hits = b.find_elements("css selector", "#hits li.hit")
        images = b.find_elements("css selector", "#hits img.thumb")
        loaded = all(b.execute_script("return arguments[0].complete", i) for i in images)
        return hits if len(hits) == count and len(images) == count and loaded else False

    return WebDriverWait(browser, 60).until(ready)


def test_the_page_shows_the_apis_hits_and_their_images(browser, served, drawn, tmp_path):
    from selenium.webdriver.common.keys import Keys

    _, images, _ = drawn
    browser.get(f"{served}/")
    box = browser.find_element("id", "q")
    box.send_keys(QUERY, Keys.ENTER)  # typed, and submitted from the keyboard
    hits = _shown(browser, 10)
    api = httpx.get(f"{served}/api/search", params={"q": QUERY, "mode": "hybrid", "k": 10})
    expected = api.json()["hits"]
    assert [h.get_attribute("data-id") for h in hits] == [h["id"] for h in expected]
    for node, hit in zip(hits, expected, strict=True):
        img = node.find_element("css selector", "img.thumb")
        assert img.get_attribute("src") == f"{served}/api/images/{hit['id']}"
        assert img.get_attribute("alt") == hit["captions"][0]
        width = browser.execute_script("return arguments[0].naturalWidth", img)
        file = images / hit["filename"]
        assert width == Image.open(file).width  # the browser decoded the real file
        assert httpx.get(img.get_attribute("src")).content == file.read_bytes()
        text = node.text
        assert f"score {hit['score']:.4f}" in text
        assert (
            f"dense {hit['dense_part']:.4f}" in text and f"sparse {hit['sparse_part']:.4f}" in text
        )
    status = browser.find_element("id", "status").text
    assert status.startswith("10 hits (hybrid)")
    _screenshot(browser, tmp_path)

    browser.find_element("css selector", 'input[name="mode"][value="sparse"]').click()
    sparse = httpx.get(f"{served}/api/search", params={"q": QUERY, "mode": "sparse"}).json()

    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 60).until(
        lambda b: b.find_element("id", "status").text.startswith(
            f"{len(sparse['hits'])} hits (sparse)"
        )
    )
    shown = [h.get_attribute("data-id") for h in browser.find_elements("css selector", "li.hit")]
    assert shown == [h["id"] for h in sparse["hits"]]


def _screenshot(browser, tmp_path: Path) -> None:
    """The page as shown, as a small PNG: $SPARSE_MM_SCREENSHOT (the README's, re-made by the
    command docs/serve.md gives), else in the test's folder."""
    target = Path(os.environ.get("SPARSE_MM_SCREENSHOT") or tmp_path / "search-page.png")
    raw = tmp_path / "raw.png"
    assert browser.save_screenshot(str(raw))
    picture = Image.open(raw).convert("RGB").quantize(colors=128)
    picture.save(target, optimize=True)
    assert target.stat().st_size > 0

"""A real browser opens the built book: headless Chromium (Debian `chromium` +
`chromium-driver`, installed by `make browser`) loads each results page and checks that
its tables and images render (every image has a non-zero natural size), that no cell shows
an error, and that the provenance box is there with SYNTHETIC in large type (at least 1.5
times the body text); it saves a full-page screenshot of each as a test artefact in
artifacts/screenshots/.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from book_build import SCREENSHOTS, build_book
from tsfmicro import chapters

pytestmark = [pytest.mark.book, pytest.mark.slow]

# results page -> the fewest tables it must show (every results page shows figures); the pages are
# the chapter registry's, a chapter not named here must show no table
MIN_TABLES = {"00_datasets": 2, "01_main_results": 2, "02_fusion_ablation": 1, "03_confusion_matrices": 1,
              "04_gradcam": 0, "05_composite": 2, "06_cross_dataset": 3, "07_temporal_branch": 1,
              "08_annotation_sensitivity": 3, "09_class_imbalance": 3, "10_compute": 1}
RESULT_PAGES = {f"notebooks/{name}": MIN_TABLES.get(name, 0) for name in chapters.notebooks()}
OTHER_PAGES = ("intro", "method", "reproduce")


def _find(name: str, *fallbacks: str) -> str | None:
    for candidate in (name, *fallbacks):
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    import os

    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium = _find("chromium", "/usr/bin/chromium", "chromium-browser")
    chromedriver = _find("chromedriver", "/usr/bin/chromedriver")
    if not chromium or not chromedriver:
        pytest.fail("headless Chromium is missing (need `chromium` and `chromedriver` on PATH): "
                    "run `make browser` (installs the Debian packages chromium and chromium-driver)")
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    profile = tempfile.mkdtemp(prefix="tsfmicro-chromium-")
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                     "--hide-scrollbars", "--window-size=1280,1000", f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    build = build_book(tmp_path_factory.mktemp("book"))
    assert build.build_returncode == 0, "the book did not build:\n" + build.build_log[-4000:]
    return build.html


PAGE_STATE = """
const images = Array.from(document.querySelectorAll('main img, article img, .bd-article img'));
const fontPixels = element => element ? parseFloat(getComputedStyle(element).fontSize) : null;
return {
  title: document.title,
  images: images.length,
  broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
  unsized: Array.from(document.images).filter(i => !(i.naturalWidth > 0 && i.naturalHeight > 0))
                .map(i => (i.getAttribute('src') || '').slice(0, 80)),
  source_font: fontPixels(document.querySelector('.tsfmicro-source')),
  body_font: fontPixels(document.querySelector('article p, .bd-article p')),
  tables: Array.from(document.querySelectorAll('article table')).map(t => t.querySelectorAll('tr').length),
  errors: document.querySelectorAll('.output.traceback, .output.error, .output.stderr').length,
  traceback: document.body.innerText.includes('Traceback (most recent call last)'),
  source: (document.querySelector('.tsfmicro-source') || {}).innerText || null,
  height: document.documentElement.scrollHeight,
};
"""


def _open(driver, page: Path) -> dict:
    driver.set_window_size(1280, 1000)
    driver.get(page.as_uri())
    driver.execute_script("return document.fonts ? document.fonts.ready : true")
    return driver.execute_script(PAGE_STATE)


def _screenshot(driver, name: str, height: int) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(1280, min(max(height, 800), 12000))
    path = SCREENSHOTS / f"{name.replace('/', '_')}.png"
    assert driver.save_screenshot(str(path))
    return path


@pytest.mark.parametrize("page,min_tables", RESULT_PAGES.items())
def test_results_page_renders_in_chromium(browser, html, page, min_tables):
    state = _open(browser, html / f"{page}.html")
    shot = _screenshot(browser, page, state["height"])
    where = f"{page}.html (screenshot {shot})"
    assert state["source"] == "SYNTHETIC", f"{where}: provenance box missing or wrong: {state['source']!r}"
    assert state["body_font"] and state["source_font"] >= 1.5 * state["body_font"], (
        f"{where}: SYNTHETIC is set in {state['source_font']} px, the body text in {state['body_font']} px")
    assert state["images"] >= 1, f"{where}: no figure"
    assert not state["broken"], f"{where}: broken images {state['broken']}"
    assert not state["unsized"], f"{where}: images of zero natural size {state['unsized']}"
    assert len(state["tables"]) >= min_tables, f"{where}: {len(state['tables'])} tables, expected {min_tables}+"
    assert all(rows >= 2 for rows in state["tables"][:min_tables]), f"{where}: empty table {state['tables']}"
    assert state["errors"] == 0 and not state["traceback"], f"{where}: an output cell shows an error"


@pytest.mark.parametrize("page", OTHER_PAGES)
def test_text_pages_render_in_chromium(browser, html, page):
    state = _open(browser, html / f"{page}.html")
    shot = _screenshot(browser, page, state["height"])
    assert not state["broken"], f"{page}.html: broken images {state['broken']} (screenshot {shot})"
    assert not state["unsized"], f"{page}.html: images of zero natural size {state['unsized']} (screenshot {shot})"
    assert state["errors"] == 0 and not state["traceback"]
    if page == "method":
        assert state["images"] >= 1, "the architecture diagram is missing"

"""A real browser opens the built book: headless Chromium (Debian `chromium` +
`chromium-driver`, installed by `make browser`) loads each results page and checks that
its tables and images render (every image has a non-zero natural size), that no cell shows
an error, and that the provenance box is there with SYNTHETIC in large type (at least 1.5
times the body text); it saves a full-page screenshot of each as a test artefact in
artifacts/screenshots/.

The browser has no network (every http(s) request goes to a closed local port): the book must
work offline. At 1400 px wide, no page shows a table clipped behind a sideways scroll, no page
logs a console error, the Method page's formulas are typeset (MathJax from the book's own
files), every figure of a results page has a numbered caption ("Figure 1.2"), papermill's
injected-parameters cell is hidden and the provenance box keeps its details behind a toggle.
"""
from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from book_build import SCREENSHOTS, build_book
from tsfmicro import chapters

pytestmark = [pytest.mark.book, pytest.mark.slow]

# results page -> the fewest tables it must show (every results page shows figures); the pages are
# the chapter registry's, a chapter not named here must show no table
MIN_TABLES = {"00_datasets": 2, "01_main_results": 2, "02_fusion_ablation": 1, "03_confusion_matrices": 1,
              "04_gradcam": 0, "05_composite": 2, "06_cross_dataset": 3, "07_temporal_branch": 1,
              "08_annotation_sensitivity": 3, "09_class_imbalance": 3, "10_compute": 1,
              "11_baselines": 3, "12_spatial_branch": 2, "13_long_videos": 3,
              "14_transfer": 4}
RESULT_PAGES = {f"notebooks/{name}": MIN_TABLES.get(name, 0) for name in chapters.notebooks()}
OTHER_PAGES = ("intro", "method", "datasets", "reproduce", "api", "api/display")
WIDTH = 1400  # the window width the tables must fit


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
                     "--hide-scrollbars", f"--window-size={WIDTH},1000", f"--user-data-dir={profile}",
                     # no network: http(s) goes to a closed port (file:// pages still load)
                     "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
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
  // a table wider than a box that clips or scrolls it sideways (or than the article)
  clipped: Array.from(document.querySelectorAll('article table')).filter(t => {
    const article = t.closest('article').getBoundingClientRect();
    if (t.getBoundingClientRect().right > article.right + 2) return true;
    for (let box = t.parentElement; box && box.tagName !== 'ARTICLE'; box = box.parentElement) {
      const overflow = getComputedStyle(box).overflowX;
      if (overflow !== 'visible' && box.scrollWidth > box.clientWidth + 2) return true;
    }
    return false;
  }).map(t => ((t.querySelector('caption') || t).innerText || '').slice(0, 80)),
  // words broken inside in a table that fits the page with whole words (book/_static/tsfmicro.js
  // lets only a table marked tsfmicro-tight break inside words); a hyphen is a break between words
  broken_words: (() => {
    const measure = document.createElement('canvas').getContext('2d');
    const found = [];
    for (const cell of document.querySelectorAll('article table:not(.tsfmicro-tight) td, article table:not(.tsfmicro-tight) th')) {
      const style = getComputedStyle(cell);
      measure.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
      const inner = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      for (const word of cell.innerText.split(/[\s-]+/))
        if (word && measure.measureText(word).width > inner + 1) { found.push(word); break; }
    }
    return found;
  })(),
  // every figure image (article images outside the provenance box) with its caption
  figures: images.filter(i => !i.closest('.tsfmicro-provenance')).map(i => {
    const figure = i.closest('figure');
    const caption = figure && figure.querySelector('figcaption');
    return caption ? caption.innerText.slice(0, 60) : '';
  }),
  injected_shown: Array.from(document.querySelectorAll('.tag_injected-parameters'))
                       .filter(e => e.offsetParent !== null).length,
  details: document.querySelectorAll('.tsfmicro-provenance details').length,
  box_height: (document.querySelector('.tsfmicro-provenance') || {offsetHeight: 0}).offsetHeight,
};
"""

MATH_STATE = """
return {typeset: document.querySelectorAll('mjx-container').length,
        raw: document.querySelectorAll('.math:not(:has(mjx-container))').length};
"""


def _open(driver, page: Path) -> dict:
    driver.set_window_size(WIDTH, 1000)
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(page.as_uri())
    driver.execute_script("return document.fonts ? document.fonts.ready : true")
    state = driver.execute_script(PAGE_STATE)
    state["console"] = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return state


def _common_checks(state: dict, where: str) -> None:
    assert not state["clipped"], f"{where}: tables clipped at {WIDTH} px: {state['clipped']}"
    assert not state["console"], f"{where}: console errors {state['console']}"


def _screenshot(driver, name: str, height: int) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(WIDTH, min(max(height, 800), 12000))
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
    _common_checks(state, where)
    # the notebooks' tables (a text page's table is the theme's: a long variable name may break)
    assert not state["broken_words"], f"{where}: words broken inside at {WIDTH} px: {state['broken_words'][:8]}"
    unnumbered = [caption for caption in state["figures"] if not re.match(r"Figure \d+\.\d+", caption)]
    assert not unnumbered, f"{where}: figures without a numbered caption: {unnumbered}"
    assert state["injected_shown"] == 0, f"{where}: papermill's injected-parameters cell is shown"
    assert state["details"] == 1 and state["box_height"] < 260, (
        f"{where}: the provenance box is {state['box_height']} px high, {state['details']} toggles")


@pytest.mark.parametrize("page", OTHER_PAGES)
def test_text_pages_render_in_chromium(browser, html, page):
    state = _open(browser, html / f"{page}.html")
    shot = _screenshot(browser, page, state["height"])
    assert not state["broken"], f"{page}.html: broken images {state['broken']} (screenshot {shot})"
    assert not state["unsized"], f"{page}.html: images of zero natural size {state['unsized']} (screenshot {shot})"
    assert state["errors"] == 0 and not state["traceback"]
    _common_checks(state, f"{page}.html (screenshot {shot})")
    if page == "method":
        assert state["images"] >= 1, "the architecture diagram is missing"
        # MathJax typesets asynchronously; it comes from the book's _static/ (no network here)
        for _ in range(40):
            math = browser.execute_script(MATH_STATE)
            if math["typeset"] and not math["raw"]:
                break
            time.sleep(0.25)
        assert math["typeset"] > 0 and math["raw"] == 0, f"method.html: formulas not typeset offline: {math}"


def test_one_page_is_called_datasets(html):
    titles = {}
    for page in html.rglob("*.html"):
        text = page.read_text(encoding="utf-8", errors="replace")
        found = re.search(r"<title>(.*?)</title>", text, re.S)
        if found and not page.name.startswith(("genindex", "search", "py-modindex")):
            titles.setdefault(found.group(1).split("&#8212;")[0].split(" — ")[0].strip(), []).append(page.name)
    assert len(titles.get("Datasets", [])) == 1, titles.get("Datasets")

"""The book: notebook conventions, and the built pages in a real (headless) browser.

The browser test builds the book with book/build.sh into a temporary folder, or reuses an existing
build when GMGAN_BOOK_HTML points at its ``_build/html`` folder (CI builds once and passes it). It
serves the pages on 127.0.0.1, opens the first notebook in Debian's Chromium through Playwright, drags
the before/after divider, presses keys on the slider and checks that the split moved, that the
saved ipywidgets rendered without a kernel, and that the console shows no JavaScript error.
"""
from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("GMGAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SLIDER_PAGE = "notebooks/01_degradation.html"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _stamp_module():
    spec = importlib.util.spec_from_file_location("stamp_notebooks", ROOT / "book" / "stamp_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


# --------------------------------------------------------------------------------------------------
# Conventions (fast, no browser)

def test_config_sets_the_repository_and_colab_once():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"].startswith("https://github.com/")
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["execute"]["execute_notebooks"] == "off"
    # the URL appears in no notebook except through the stamped install cell
    for path in _notebooks():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells[1:]:
            assert config["repository"]["url"] not in cell.source, f"{path.name}: repository URL outside the install cell"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_install_cell_matches_config(path):
    stamp = _stamp_module()
    url, branch = stamp.repository()
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "code" and first.get("id") == "install", f"{path.name}: first cell is not the install cell"
    assert f"git+{url}@{branch}" in first.source, f"{path.name}: install cell does not use {url}@{branch}"
    assert stamp.is_current(nb, url, branch), f"{path.name}: run python book/stamp_notebooks.py"


def test_install_cell_follows_a_changed_url(tmp_path):
    """The stamp script really rewrites the cell from the configuration (not a fixed string)."""
    stamp = _stamp_module()
    src = _notebooks()[0]
    copy = tmp_path / src.name
    shutil.copy(src, copy)
    assert stamp.stamp(copy, "https://example.org/fork/gmgan", "dev") is True
    nb = nbformat.read(copy, as_version=4)
    assert "gmgan @ git+https://example.org/fork/gmgan@dev" in nb.cells[0].source
    assert not stamp.is_current(nb, *stamp.repository())
    assert len(nb.cells) == len(nbformat.read(src, as_version=4).cells)  # replaced, not inserted


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_conventions(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[1].metadata.get("tags", []), f"{path.name}: second code cell is not tagged 'parameters'"
    assert "preset" in code[1].source, f"{path.name}: the parameters cell has no preset"
    assert all(c.execution_count is not None for c in code[1:]), f"{path.name}: not fully executed"
    for c in code:
        for out in c.get("outputs", []):
            assert out.output_type != "error", f"{path.name}: stored output holds an error"
            assert not (out.output_type == "stream" and out.name == "stderr"), f"{path.name}: stderr output"
    uses_widgets = any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                       for c in code for o in c.get("outputs", []))
    if uses_widgets:
        state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state")
        assert state, f"{path.name}: widget outputs but no saved widget state (execute with nbconvert/papermill)"


def test_toc_lists_every_notebook():
    toc = (ROOT / "_toc.yml").read_text()
    for path in _notebooks():
        assert f"file: notebooks/{path.stem}" in toc, f"{path.name} is missing from _toc.yml"


# --------------------------------------------------------------------------------------------------
# Built book in a browser

@pytest.fixture(scope="module")
def book_html(tmp_path_factory) -> Path:
    given = os.environ.get("GMGAN_BOOK_HTML")
    if given:
        html = Path(given)
        if not (html / SLIDER_PAGE).is_file():
            pytest.fail(f"GMGAN_BOOK_HTML={given} has no {SLIDER_PAGE}; build the book first (bash book/build.sh)")
        return html
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium); not building the book for nothing")
    out = tmp_path_factory.mktemp("book")
    env = dict(os.environ, BOOK_BUILD_ARGS=f"--path-output {out}", PYTHON=sys.executable,
               JUPYTER_BOOK=str(Path(sys.executable).with_name("jupyter-book")))
    run = subprocess.run(["bash", str(ROOT / "book" / "build.sh")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900, check=False)
    if run.returncode != 0:
        pytest.fail(f"book/build.sh failed ({run.returncode}):\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}")
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def server(book_html):
    handler = functools.partial(_QuietHandler, directory=str(book_html))
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # The browser drops connections it no longer needs (page changes); that is not a failure.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.errors, pg.outside = [], []
    pg.on("console", lambda msg: pg.errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: pg.errors.append(f"pageerror: {exc}"))
    host = urlparse(server).netloc

    def route(r):
        # Offline book: anything that is not our server is recorded and refused.
        url = urlparse(r.request.url)
        if url.scheme in ("http", "https") and url.netloc != host:
            pg.outside.append(r.request.url)
            return r.abort()
        return r.continue_()

    pg.route("**/*", route)
    yield pg
    context.close()


def _split_state(page, block: str) -> dict:
    return page.evaluate("""(sel) => {
        const root = document.querySelector(sel);
        const stage = root.querySelector('.gmgan-ba-stage').getBoundingClientRect();
        const div = root.querySelector('.gmgan-ba-divider').getBoundingClientRect();
        return {fraction: (div.left + div.width / 2 - stage.left) / stage.width,
                clip: getComputedStyle(root.querySelector('img.gmgan-ba-left')).clipPath,
                range: root.querySelector('.gmgan-ba-split').value,
                stageLeft: stage.left, stageTop: stage.top, stageWidth: stage.width, stageHeight: stage.height,
                transform: root.querySelector('.gmgan-ba-inner').style.transform,
                readout: root.querySelector('.gmgan-ba-metrics').textContent,
                left: root.querySelector('img.gmgan-ba-left').alt};
    }""", block)


def test_slider_page_works_without_a_kernel(page, server, capsys):
    page.goto(server + SLIDER_PAGE, wait_until="load")
    block = ".gmgan-ba[data-ready]"
    page.wait_for_selector(block, timeout=15000)
    page.locator(block).first.scroll_into_view_if_needed()
    before = _split_state(page, block)
    assert abs(before["fraction"] - 0.5) < 0.02 and "50%" in before["clip"]

    # drag the divider from the middle to 20% of the width
    y = before["stageTop"] + before["stageHeight"] / 2
    page.mouse.move(before["stageLeft"] + 0.5 * before["stageWidth"], y)
    page.mouse.down()
    page.mouse.move(before["stageLeft"] + 0.35 * before["stageWidth"], y, steps=5)
    page.mouse.move(before["stageLeft"] + 0.2 * before["stageWidth"], y, steps=5)
    page.mouse.up()
    dragged = _split_state(page, block)
    assert abs(dragged["fraction"] - 0.2) < 0.02, dragged
    assert "80%" in dragged["clip"] and dragged["range"] == "200", dragged

    # keyboard: the range input moves the split too
    page.locator(f"{block} .gmgan-ba-split").first.focus()
    for _ in range(50):
        page.keyboard.press("ArrowRight")
    keyed = _split_state(page, block)
    assert keyed["fraction"] > dragged["fraction"] + 0.03, keyed

    # another image and a zoom: the picture and the metrics change
    page.locator(f"{block} button[data-image]").nth(1).click()
    other = _split_state(page, block)
    assert other["left"] != keyed["left"] and other["readout"] != keyed["readout"]
    page.locator(f'{block} button[data-zoom="4x"]').click()
    zoomed = _split_state(page, block)
    assert "scale(4)" in zoomed["transform"], zoomed

    # the ipywidgets rendered from the state saved in the notebook, with no kernel
    page.wait_for_selector(".jupyter-widgets .widget-slider", timeout=20000)
    n_sliders = page.locator(".widget-slider").count()
    n_widgets = page.locator(".jupyter-widgets").count()
    assert n_sliders >= 3 and page.locator(".widget-dropdown").count() >= 3
    assert page.locator(".widget-image").count() >= 1
    # MathJax (served locally) typeset the formulas
    page.wait_for_selector("mjx-container", timeout=20000)

    assert page.errors == [], page.errors
    assert page.outside == [], f"requests outside the book: {page.outside}"
    with capsys.disabled():
        print(f"\n[browser] split {before['fraction']:.3f} -> drag {dragged['fraction']:.3f} "
              f"(clip-path {dragged['clip']}) -> keys {keyed['fraction']:.3f}; zoom transform "
              f"{zoomed['transform']!r}; {n_widgets} widget elements, {n_sliders} widget sliders; "
              f"console errors: {len(page.errors)}")


def test_other_pages_load_cleanly(page, server):
    for name in ("book/intro.html", "book/method.html", "book/references.html"):
        page.goto(server + name, wait_until="load")
        assert page.title()
    page.goto(server + "book/method.html", wait_until="load")
    page.wait_for_selector("mjx-container", timeout=20000)
    # citations are links into the bibliography page, which lists the GMGAN paper
    assert page.locator("a[href^='references.html#']").count() >= 10
    page.goto(server + "book/references.html", wait_until="load")
    assert "GAN-based image super-resolution with a novel quality loss" in page.inner_text("main")
    assert page.errors == [], page.errors
    assert page.outside == [], f"requests outside the book: {page.outside}"


def test_colab_button_points_at_the_configured_repository(book_html):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"].rstrip("/")
    page = (book_html / SLIDER_PAGE).read_text(encoding="utf-8")
    repo = url.split("github.com/")[1]
    want = f"colab.research.google.com/github/{repo}/blob/{config['repository']['branch']}/notebooks/01_degradation.ipynb"
    assert want in page

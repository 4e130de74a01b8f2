"""The book's equations render offline: MathJax is served from the built book, never a CDN."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alllib.book.build import book_config

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def maths_page(tmp_path_factory) -> Path:
    """A one-page book with the project's configuration and the kinds of equations chapters 3
    and 6 use, built with jupyter-book."""
    book = tmp_path_factory.mktemp("book")
    config = book_config(ROOT)
    config.pop("bibtex_bibfiles", None)
    (book / "_config.yml").write_text(yaml.safe_dump(config))
    (book / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (book / "page.md").write_text("# Maths\n\nInline $K = 3$ clusters.\n\n"
                                  "$$\nJ = \\sum_{i} \\lVert a_i - c_{k(i)} \\rVert^2\n$$\n")
    exe = Path(sys.executable).with_name("jupyter-book")
    subprocess.run([str(exe) if exe.is_file() else "jupyter-book", "build", str(book)], check=True,
                   capture_output=True)
    return book / "_build" / "html" / "page.html"


def test_mathjax_is_served_by_the_book(maths_page):
    html = maths_page.read_text()
    scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', html, flags=re.I)
    assert scripts, "no MathJax script on the page"
    for src in scripts:
        assert not src.startswith(("http:", "https:", "//")), f"MathJax from the network: {src}"
        assert (maths_page.parent / src).is_file(), f"{src} is not in the built book"
    assert not re.search(r"https?://[^\"']*(mathjax|jsdelivr)", html, flags=re.I)


def test_equations_render_in_a_headless_browser(maths_page):
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no headless browser (chromium) on this machine: the rendered text cannot be checked")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
                          "--dump-dom", maths_page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S))
    assert "mjx-container" in dom, "MathJax did not typeset the page"
    assert "\\(" not in text and "\\[" not in text and "\\sum" not in text, "raw TeX in the rendered text"

"""The built book, checked without executing it again (slow tier; CI runs it after the book).

``python -m alllib book`` executes every chapter once and fails on an exception. Point
``ALLLIB_BUILT_BOOK`` at its build folder (``_build``) and these tests read what it wrote: every
chapter ran on the data it should have, no cell shows an error, the figures and the computed
sentences are there, the lab's checks say "correct", and every chapter has its HTML page.
Without ``ALLLIB_BUILT_BOOK`` they are skipped; with it, a missing build fails.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from alllib.book.runner import notebooks_in_toc

from . import book_checks

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [p.stem for p in notebooks_in_toc(ROOT)]

@pytest.fixture(scope="module")
def build() -> Path:
    where = os.environ.get("ALLLIB_BUILT_BOOK")
    if not where:
        pytest.skip("no built book to check: run `python -m alllib book`, then set ALLLIB_BUILT_BOOK=_build")
    build = Path(where)
    assert (build / "manifest.json").is_file(), f"ALLLIB_BUILT_BOOK={where}: no manifest.json, the book was not built"
    return build


def test_every_chapter_ran_on_the_real_data(build):
    manifest = book_checks.manifest(build)
    entries = {Path(e["notebook"]).stem: e for e in manifest["notebooks"]}
    assert list(entries) == CHAPTERS and all(e["status"] == "ok" for e in entries.values())
    data = {name: e["dataset"] for name, e in entries.items()}
    if manifest.get("data"):  # a book built on real data uses it where the chapter asks for it
        assert data["09_leakage"] == "all_idb2" and data["10_cnmc"] == "cnmc" and data["13_cnmc_gains"] == "cnmc"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_shows_its_figures_and_sentences(build, chapter):
    nb = book_checks.executed(build, chapter)
    assert book_checks.problems(nb) == []
    real = book_checks.manifest(build).get("data")
    least, patterns = book_checks.EXPECTED[chapter]["real"] if real else (0, [])
    assert book_checks.figures(nb) >= least, f"{chapter} shows {book_checks.figures(nb)} figures"
    assert book_checks.missing(nb, patterns) == []


def test_the_lab_checks_say_correct_in_the_book(build):
    """The instructor's view: every check cell of the executed chapters finds the solution right."""
    checked = 0
    for chapter in CHAPTERS:
        for cell in book_checks.executed(build, chapter).cells:
            if "check" in cell.metadata.get("tags", []):
                assert "Correct" in json.dumps(cell.get("outputs", [])), chapter
                checked += 1
    assert checked > 0


def test_every_chapter_has_a_page(build):
    html = build / "html"
    if not (html / "index.html").is_file():
        pytest.skip("the book was executed without its HTML (--no-html)")
    for chapter in CHAPTERS:
        assert (html / "notebooks" / f"{chapter}.html").is_file(), chapter


def test_no_page_shows_the_build_machines_paths_and_the_api_is_documented(build):
    """The pages show the parameters once and paths relative to the project or the data folder,
    never the build machine's; the API reference documents the core's entry points."""
    html = build / "html"
    if not (html / "index.html").is_file():
        pytest.skip("the book was executed without its HTML (--no-html)")
    data = book_checks.manifest(build).get("data")
    folders = [build.resolve().parent] + ([Path(data).resolve()] if data else [])
    machine = [f"{folder}/" for folder in folders] + [f'"{folder}"' for folder in folders]
    for chapter in CHAPTERS:
        page = (html / "notebooks" / f"{chapter}.html").read_text()
        assert not [m for m in machine if m in page], f"{chapter} shows a path of the build machine"
        assert page.count("injected-parameters") == 0, f"{chapter} shows its parameters twice"
    api = (html / "book" / "api.html").read_text()
    for entry in ("alllib.data.load_dataset", "alllib.learn.evaluation.grouped_folds", "alllib.book.chapter.Chapter"):
        assert f'id="{entry}"' in api, entry

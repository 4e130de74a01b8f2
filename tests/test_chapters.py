"""Every chapter, executed once on the tiny profile (the fast tier's check that the book runs).

The session fixture runs the whole book as ``python -m alllib book --profile tiny --jobs 2 --no-html``
would (a few synthetic images, a small C-NMC-like tree, one fine-tuning epoch; two chapters at a
time, the summary last); each
test then reads one chapter's executed copy. A chapter that raises fails the fixture, naming the
chapter and the cell; a chapter that runs but shows an error, loses a figure or stops writing its
computed sentences fails its own test. The quick book on the real data is checked the same way
in CI (``tests/test_built_book.py``).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from alllib.book.runner import notebooks_in_toc, run_book

from . import book_checks
from .conftest import write_cnmc_tree

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [p.stem for p in notebooks_in_toc(ROOT)]

@pytest.fixture(scope="session")
def tiny_book(tmp_path_factory, synthetic):
    """The book on the tiny profile: synthetic smears for the ALL-IDB2 chapters, a C-NMC-like tree
    of 6 subjects x 4 cells for the C-NMC chapters; returns the build folder."""
    root = tmp_path_factory.mktemp("tiny-book")
    data = write_cnmc_tree(root / "data", synthetic)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        run_book("tiny", data=str(data), out=root / "_build", html=False, jobs=2,
                 overrides=[("10_cnmc.n_splits", "5")], progress=lambda *_: None)
    return root / "_build"


def test_every_chapter_ran(tiny_book):
    manifest = book_checks.manifest(tiny_book)
    assert [Path(e["notebook"]).stem for e in manifest["notebooks"]] == CHAPTERS
    assert all(e["status"] == "ok" for e in manifest["notebooks"])
    assert manifest["profile"] == "tiny"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_shows_its_figures_and_sentences(tiny_book, chapter):
    nb = book_checks.executed(tiny_book, chapter)
    assert book_checks.problems(nb) == []
    least, patterns = book_checks.EXPECTED[chapter]["tiny"]
    assert book_checks.figures(nb) >= least, f"{chapter} shows {book_checks.figures(nb)} figures"
    assert book_checks.missing(nb, patterns) == []


def test_every_chapter_has_expectations():
    assert set(book_checks.EXPECTED) == set(CHAPTERS)


def test_the_cnmc_chapter_stores_both_protocols(tiny_book):
    saved = pd.read_csv(tiny_book / "results" / "10_cnmc.csv")
    assert set(saved["protocol"]) == {"paper", "honest"} and {"train", "test", "aug", "noaug"} <= set(saved["condition"])
    assert "weighted_f1" in set(saved["metric"])
    meta = json.loads((tiny_book / "results" / "10_cnmc.json").read_text())
    assert meta["n_splits_used"] == 3 and meta["n_subjects"] == 6


def test_the_summary_reads_this_runs_results(tiny_book):
    manifest = book_checks.manifest(tiny_book)
    stored = {json.loads(p.read_text())["run_id"] for p in (tiny_book / "results").glob("*.json")}
    assert stored == {manifest["run_id"]}
    assert book_checks.missing(book_checks.executed(tiny_book, "15_summary"), [r"06_classifiers"]) == []

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

from alllib.runner import notebooks_in_toc, run_book

from . import book_checks
from .conftest import write_cnmc_tree

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [p.stem for p in notebooks_in_toc(ROOT)]

#: What each chapter computes and says on the tiny data: (figures at least, output patterns).
EXPECTED = {
    "01_datasets": (2, [r"synthetic smears \(24 images", r"seed 0"]),
    "02_preprocessing": (2, []),
    "03_segmentation": (2, [r"Dice"]),
    "04_augmentation": (1, []),
    "05_features": (1, [r"EfficientNet-Lite0"]),
    "06_classifiers": (2, []),
    "07_backbones": (1, [r"EfficientNet-Lite0"]),
    "08_ablations": (1, []),
    "09_leakage": (2, [r"augmenting before splitting scores", r"test images share a source"]),
    "10_cnmc": (3, [r"24 cells of 6 subjects", r"grew 24 cells to 32 \(16 per class\)",
                    r"The smaller class has only 3 subjects, so the honest protocol uses 3 folds \(not the 5 asked",
                    r"splitting by image scores", r"Among all subjects \(6 subjects, 24 cells\)"]),
    "11_attribution": (1, [r"Grad-CAM"]),
    "12_honest_gains": (1, [r"The baseline, frozen \+ augmentation, scores", r"images/s"]),
    "13_cnmc_gains": (0, [r"The baseline, frozen, scores", r"images/s"]),
    "14_summary": (0, []),
}


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
    least, patterns = EXPECTED[chapter]
    assert book_checks.figures(nb) >= least, f"{chapter} shows {book_checks.figures(nb)} figures"
    assert book_checks.missing(nb, patterns) == []


def test_every_chapter_has_expectations():
    assert set(EXPECTED) == set(CHAPTERS)


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
    assert book_checks.missing(book_checks.executed(tiny_book, "14_summary"), [r"06_classifiers"]) == []

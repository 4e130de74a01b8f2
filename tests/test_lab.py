"""The lab edition: students get no solutions but working checks; instructors get the chapters."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from alllib.book.lab import CHECK, SOLUTION, book_edition
from alllib.cli import main

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def solution_cells(nb) -> list:
    return [c for c in nb.cells if SOLUTION in c.get("metadata", {}).get("tags", [])]


def _tags(cell):
    return cell.metadata.get("tags", [])


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab")
    assert main(["lab", "--out", str(out)]) == 0
    return out


def test_every_chapter_with_exercises_marks_its_solutions():
    for path in CHAPTERS:
        nb = nbformat.read(path, 4)
        if any(c.source.startswith("## Exercises") for c in nb.cells):
            assert solution_cells(nb), f"{path.name}: exercises without a cell tagged {SOLUTION!r}"
        assert not any("{admonition} Solution" in c.source for c in nb.cells), f"{path.name}: untagged solution"


def test_the_student_edition_holds_no_solution_text(lab):
    for path in CHAPTERS:
        student = (lab / "student" / path.name).read_text()
        assert all(not c.get("outputs") for c in nbformat.reads(student, 4).cells if c.cell_type == "code")
        source = nbformat.read(path, 4)
        elsewhere = "\n".join(c.source for c in source.cells if SOLUTION not in _tags(c))
        for cell in solution_cells(source):
            for line in cell.source.splitlines():
                line = line.strip()
                if len(line) > 25 and line not in elsewhere:
                    assert json.dumps(line)[1:-1] not in student, f"{path.name}: solution text {line!r}"


def test_the_student_edition_keeps_parameters_checks_and_answer_cells(lab):
    for path in CHAPTERS:
        source, student = nbformat.read(path, 4), nbformat.read(lab / "student" / path.name, 4)
        assert len(student.cells) == len(source.cells)
        assert [c.source for c in student.cells if "parameters" in _tags(c)] == \
               [c.source for c in source.cells if "parameters" in _tags(c)]
        assert [c.source for c in student.cells if CHECK in _tags(c)] == \
               [c.source for c in source.cells if CHECK in _tags(c)]
        if any(CHECK in _tags(c) for c in source.cells):  # a check reads an answer variable the student defines
            assert any("answer_" in a.source and "= None" in a.source for a in student.cells), path.name


def test_the_instructor_edition_is_the_chapters(lab):
    for path in CHAPTERS:
        assert (lab / "instructor" / path.name).read_bytes() == path.read_bytes()


def test_the_book_folds_solutions_and_hides_checks():
    nb = book_edition(nbformat.read(ROOT / "notebooks" / "04_augmentation.ipynb", 4))
    written = [c for c in nb.cells if SOLUTION in _tags(c) and c.cell_type == "markdown"]
    assert written and all(c.source.startswith("```{admonition} Solution\n:class: dropdown") for c in written)
    assert all("hide-cell" in _tags(c) for c in nb.cells if SOLUTION in _tags(c) and c.cell_type == "code")
    assert all("remove-cell" in _tags(c) for c in nb.cells if CHECK in _tags(c))


def test_check_says_correct_wrong_or_unanswered_without_giving_the_answer():
    from alllib.book.lab import check

    assert "Not answered yet" in repr(check("1", None, 42))
    assert repr(check("1", 42, 42)).endswith("Correct.")
    assert "too high" in repr(check("1", 50, 42)) and "42" not in repr(check("1", 50, 42))
    assert "too low" in repr(check("1", 4.7, 4.77, tolerance=0.01))
    assert "Correct" in repr(check("1", 4.77, 4.7712, tolerance=0.01))
    assert "Not a number" in repr(check("1", "many", 42))


@pytest.mark.slow
def test_the_student_edition_passes_nbval_and_the_instructor_checks_say_correct(lab, tmp_path, monkeypatch):
    """Every student notebook, on the tiny profile (synthetic data), passes ``pytest --nbval-lax``
    as a lab would run it: each executes once without an error, and each check says "not answered
    yet" (:func:`~alllib.book.lab.nbval_edition`). The instructor's checks say "correct"."""
    import os
    import subprocess
    import sys

    import papermill as pm

    from alllib.book.lab import nbval_edition
    from alllib.book.parameters import profile_parameters

    monkeypatch.setenv("ALLLIB_DATA", str(tmp_path / "no-data"))
    env = {**os.environ, "MPLBACKEND": "Agg"}

    def params(path):
        declared = pm.inspect_notebook(str(path))
        out = profile_parameters("tiny", path.stem, declared)
        return {**out, **({"results_dir": str(tmp_path / "results")} if "results_dir" in declared else {})}

    folder = tmp_path / "nbval"
    folder.mkdir()
    for path in CHAPTERS:
        nbformat.write(nbval_edition(nbformat.read(lab / "student" / path.name, 4), params(path)), folder / path.name)
    run = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
                          "-q", "--rootdir", str(folder), str(folder)], cwd=folder, env=env, capture_output=True,
                         text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:]
    checked = sum(CHECK in _tags(c) for path in CHAPTERS for c in nbformat.read(folder / path.name, 4).cells)
    assert checked >= 4 and " passed" in run.stdout

    for name in ("01_datasets.ipynb", "02_preprocessing.ipynb"):
        out = tmp_path / f"instructor-{name}"
        pm.execute_notebook(str(lab / "instructor" / name), str(out), cwd=str(ROOT / "notebooks"),
                            parameters=params(ROOT / "notebooks" / name), progress_bar=False, kernel_name="python3")
        checks = [c for c in nbformat.read(out, 4).cells if CHECK in _tags(c)]
        assert checks and all("Correct" in json.dumps(c.outputs) for c in checks), name

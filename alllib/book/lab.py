"""The book in a course lab: a student edition without solutions, an instructor edition, checks.

Solutions are marked once, in the source notebooks, with the cell tag ``solution``: a markdown
cell holds a written answer, a code cell computes one (and may set ``answer_N`` for a check). A
cell tagged ``check`` calls :func:`check` on a student's ``answer_N``, recomputing the right
value from the same run, so no answer key is stored anywhere a student could read it. From one
source, three editions:

* the **book** (:func:`book_edition`): solutions folded into "Solution" dropdowns, checks hidden;
* the **student edition** (:func:`student_edition`): every solution cell replaced by an empty
  cell to answer in (``answer_N = None`` where a check reads it), checks kept;
* the **instructor edition**: the source notebooks as they are (their checks say "correct").

``python -m alllib lab --out DIR`` writes ``DIR/student`` and ``DIR/instructor``. A lab validates
the student edition with nbval, as the book's slow test tier does: :func:`nbval_edition` sets a
notebook's parameters and expects every check to say "not answered yet", and
``pytest --nbval-lax --nbval-current-env FOLDER`` executes each notebook once, fails on any error,
and compares the check cells' outputs with that expectation.

>>> import nbformat
>>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("1. How many?"),
...     nbformat.v4.new_code_cell("answer_1 = 6", metadata={"tags": ["solution"]})])
>>> [c.source for c in student_edition(nb).cells]
['1. How many?', 'answer_1 = None  # your answer to exercise 1']
"""
from __future__ import annotations

import copy
import html
import re
import shutil
from pathlib import Path

import nbformat

from alllib.book.prose import Box

__all__ = ["SOLUTION", "CHECK", "student_edition", "book_edition", "nbval_edition", "write_lab", "check"]

SOLUTION, CHECK = "solution", "check"
_ANSWER = re.compile(r"^\s*(answer_\w+)\s*=", re.M)
_CHECKED = re.compile(r"""^check\(\s*["']([^"']+)["']""", re.M)


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _answer_cell(cell):
    """The empty cell a student answers in, in place of a solution cell."""
    if cell.cell_type == "markdown":
        return nbformat.v4.new_markdown_cell("**Your answer:** *(double-click to write here)*",
                                             metadata={"tags": ["answer"]})
    names = _ANSWER.findall(cell.source)
    body = "\n".join(f"{n} = None  # your answer to exercise {n.split('_', 1)[1]}" for n in dict.fromkeys(names))
    return nbformat.v4.new_code_cell(body or "# your answer", metadata={"tags": ["answer"]})


def _strip_outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def student_edition(nb):
    """A copy of ``nb`` with every solution cell replaced by an empty answer cell and no outputs."""
    out = copy.deepcopy(nb)
    out.cells = [_answer_cell(c) if SOLUTION in _tags(c) else c for c in out.cells]
    return _strip_outputs(out)


def book_edition(nb):
    """``nb`` as the book shows it: a solution's markdown inside a folded "Solution" dropdown, a
    solution's code cell folded (tag ``hide-cell``), check cells removed (tag ``remove-cell``)."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        tags = _tags(cell)
        if SOLUTION in tags and cell.cell_type == "markdown":
            cell.source = f"```{{admonition}} Solution\n:class: dropdown\n\n{cell.source}\n```"
        elif SOLUTION in tags:
            cell.metadata["tags"] = tags + ["hide-cell"]
        elif CHECK in tags:
            cell.metadata["tags"] = tags + ["remove-cell"]
    return out


def nbval_edition(nb, parameters: dict):
    """A student edition (:func:`student_edition`) as ``pytest --nbval-lax`` validates it: the
    ``parameters`` injected as papermill would inject them (nothing is executed here), and every
    check cell tagged ``nbval-check-output`` with the output it must give a student who has not
    answered yet, so nbval fails where a check errs, gives an answer away or says anything else.

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("seed = 0", metadata={"tags": ["parameters"]}),
    ...     nbformat.v4.new_code_cell('check("2", answer_2, 7)', metadata={"tags": ["check"]})])
    >>> out = nbval_edition(nb, {"seed": 1})
    >>> out.cells[-1].outputs[0]["data"]["text/plain"][:40], "nbval-check-output" in out.cells[-1].metadata.tags
    ('Check, exercise 2: Not answered yet: set', True)
    """
    from papermill.parameterize import parameterize_notebook

    out = copy.deepcopy(nb)
    out.metadata["papermill"] = nbformat.from_dict({})  # what papermill's reader adds
    for cell in out.cells:
        cell.metadata.setdefault("tags", [])
    out = parameterize_notebook(out, parameters, kernel_name="python3", language="python")
    for cell in out.cells:
        if CHECK in _tags(cell):
            exercise = _CHECKED.search(cell.source)
            if exercise is None:
                raise ValueError(f"a check cell calls no check(\"N\", ...): {cell.source[:80]!r}")
            box = check(exercise.group(1), None, None)
            cell.outputs = [nbformat.v4.new_output("execute_result", execution_count=1,
                                                   data={"text/plain": repr(box), "text/html": box._repr_html_()})]
            cell.execution_count = 1  # nbval compares only the outputs of a cell that has run
            cell.metadata["tags"] = [*_tags(cell), "nbval-check-output"]
    return out


def write_lab(out: str | Path, notebooks: list[Path]) -> dict[str, Path]:
    """Write the student and instructor editions of ``notebooks`` under ``out``; returns the two
    folders. An existing ``out/student`` or ``out/instructor`` is replaced."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(20, "a file, not a folder", str(out))
    folders = {"student": out / "student", "instructor": out / "instructor"}
    for folder in folders.values():
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nbformat.write(student_edition(nb), folders["student"] / path.name)
        shutil.copy(path, folders["instructor"] / path.name)
    return folders


def check(exercise: str, answer, expected, *, tolerance: float = 0.0, unit: str = "") -> Box:
    """Whether ``answer`` is right, as a box that says "correct", "not answered yet" or what is
    wrong (too high, too low, not a number) without giving the expected value away.
    ``expected`` is recomputed by the check cell from the run; ``tolerance`` is absolute."""
    title = f"Check, exercise {exercise}"
    if answer is None:
        return Box("Not answered yet: set the answer variable in the cell above and run it again.",
                   "note", title)
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        try:
            value = float(answer)
        except (TypeError, ValueError):
            return Box(f"Not a number: got {html.escape(repr(answer))}.", "warning", title)
        if abs(value - float(expected)) <= tolerance:
            return Box(f"Correct{f' ({html.escape(unit)})' if unit else ''}.", "important", title)
        return Box(f"Not quite: your answer is too {'high' if value > expected else 'low'}.", "warning", title)
    if answer == expected:
        return Box("Correct.", "important", title)
    return Box("Not quite: compare your answer with the run's output above.", "warning", title)

"""What an executed chapter must show, checked on the copies the book runner wrote.

The runner executes every chapter once (papermill) and fails on an exception; these checks read
the executed copies afterwards: every code cell ran, no cell shows an error or a traceback, and
each chapter shows its figures and the sentences it computes. The fast tier applies them to the
tiny book it builds (``tests/test_chapters.py``), CI to the quick book on the real data
(``tests/test_built_book.py``).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat


def executed(build: Path, chapter: str):
    """The executed copy of ``chapter`` (file stem) in the build folder ``build``."""
    return nbformat.read(build / "executed" / "notebooks" / f"{chapter}.ipynb", 4)


def problems(nb) -> list[str]:
    """What is wrong with an executed notebook: code cells that did not run, error outputs,
    tracebacks printed to a stream."""
    out = []
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        if cell.execution_count is None:
            out.append(f"cell {k} did not run")
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                out.append(f"cell {k}: {o.get('ename')}: {o.get('evalue')}")
            elif o.get("output_type") == "stream" and "Traceback (most recent call last)" in o.get("text", ""):
                out.append(f"cell {k} printed a traceback")
    return out


def figures(nb) -> int:
    """How many figures (PNG outputs) the notebook shows."""
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))


def text(nb) -> str:
    """Everything the notebook's outputs say, as one string (HTML tags and markdown kept)."""
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if o.get("output_type") == "stream":
                parts.append(o.get("text", ""))
            for mime in ("text/markdown", "text/html", "text/plain"):
                if mime in o.get("data", {}):
                    value = o["data"][mime]
                    parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


def missing(nb, patterns) -> list[str]:
    """The regular expressions of ``patterns`` that no output of ``nb`` matches."""
    said = text(nb)
    return [p for p in patterns if not re.search(p, said)]


def manifest(build: Path) -> dict:
    return json.loads((build / "manifest.json").read_text())

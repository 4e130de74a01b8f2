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

#: What each chapter shows, as (figures at least, regular expressions its outputs must match):
#: on the tiny profile (the fast tier's book: synthetic smears and a C-NMC-like tree of 6 subjects
#: of 4 cells, C-NMC folds asked for: 5), and in the quick book on the real data.
EXPECTED = {
    "01_datasets": {"tiny": (2, [r"synthetic smears \(24 images", r"seed 0"]),
                    "real": (2, [r"the real ALL-IDB2 \(260 images", r"C-NMC-2019: [\d,]+ images of \d+ subjects"])},
    "02_preprocessing": {"tiny": (2, []), "real": (2, [])},
    "03_segmentation": {"tiny": (2, [r"Dice"]), "real": (2, [r"Dice"])},
    "04_augmentation": {"tiny": (1, []), "real": (1, [])},
    "05_features": {"tiny": (1, [r"EfficientNet-Lite0"]), "real": (1, [r"EfficientNet-Lite0"])},
    "06_classifiers": {"tiny": (2, []), "real": (2, [])},
    "07_backbones": {"tiny": (1, [r"EfficientNet-Lite0"]), "real": (1, [r"EfficientNet-Lite0"])},
    "08_ablations": {"tiny": (1, []), "real": (1, [])},
    "09_leakage": {"tiny": (2, [r"augmenting before splitting scores", r"test images share a source"]),
                   "real": (2, [r"augmenting before splitting scores", r"test images share a source",
                                r"a linear probe tells the acquisition apart"])},
    "10_cnmc": {"tiny": (3, [r"24 cells of 6 subjects", r"grew 24 cells to 32 \(16 per class\)",
                             r"The smaller class has only 3 subjects, so the honest protocol uses 3 folds \(not the 5",
                             r"splitting by image scores", r"Among all subjects \(6 subjects, 24 cells\)"]),
                "real": (3, [r"cells of \d+ subjects", r"splitting by image scores", r"Among all subjects \(\d+ subjects"])},
    "11_attribution": {"tiny": (1, [r"Grad-CAM", r"(earns? a reading|none is read)"]),
                       "real": (1, [r"Grad-CAM", r"(earns? a reading|none is read)",
                                    r"the full profile adds them: `python -m alllib book --profile full --only "
                                    r"11_attribution`"])},
    "12_honest_gains": {"tiny": (1, [r"The baseline, frozen \+ augmentation, scores", r"the full profile adds them"]),
                        "real": (1, [r"The baseline, frozen \+ augmentation, scores", r"the full profile adds them",
                                     r"The acquisition probe scores"])},
    "13_cnmc_gains": {"tiny": (0, [r"The baseline, frozen, scores", r"Called by person, the baseline",
                                   r"normal subjects' specificity, one by one", r"Trained on fold_\d"]),
                      "real": (1, [r"The baseline, frozen, scores", r"Across datasets the best",
                                   r"normal subjects' specificity, one by one: H\w+: ",
                                   r"Called by person, the baseline, .* gets \d+ of \d+ subjects",
                                   r"Trained on fold_1 and scored on fold_2", r"correlate at Spearman rho"])},
    "14_screening": {"tiny": (2, [r"blasts drawn on \d+ slides", r"slides were called right",
                                  r"slide rule comes from its model's slide-grouped cross-validation",
                                  r"The slide's size alone"]),
                     "real": (2, [r"the real ALL-IDB2", r"blasts the experts marked on \d+ slides",
                                  r"slides were called right", r"On the \d+ slides of 2592x1944 pixels alone",
                                  r"The slide's size alone, .* on the 102 slides ALL-IDB2's crops come from",
                                  r"near no marked blast"])},
    "15_summary": {"tiny": (0, []), "real": (1, [])},
}


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

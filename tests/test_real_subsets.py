"""The C-NMC chapters on awkward real subsets, as users bring them (slow tier, real data).

A partial download or the preliminary test set can hold subjects with a single cell, or a single
normal subject. Built from the real fold_1 (links, no copies): every chapter must run on such a
subset and say what it skipped, never stop with a traceback.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from . import book_checks

pytestmark = [pytest.mark.slow, pytest.mark.real_data]

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"cells_per_subject": None, "cnmc_target_per_class": 40, "search": "none", "n_splits": 3, "epochs": 1}


def _subset(real_cnmc, root: Path, cells: dict) -> Path:
    """A C-NMC tree under ``root`` holding ``cells[patient]`` cells of each listed subject."""
    t = real_cnmc.table
    for patient, n in cells.items():
        for _, row in t[t["patient"] == patient].head(n).iterrows():
            src = Path(row["path"])
            dst = root / "C-NMC_2019" / "training_data" / f"fold_{row['fold']}" / src.parent.name / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    return root


def _run(chapter: str, data: Path, out: Path) -> str:
    import papermill as pm

    declared = pm.inspect_notebook(str(ROOT / "notebooks" / f"{chapter}.ipynb"))
    params = {k: v for k, v in SMALL.items() if k in declared}
    pm.execute_notebook(str(ROOT / "notebooks" / f"{chapter}.ipynb"), str(out / f"{chapter}.ipynb"),
                        parameters={**params, "data_dir": str(data), "results_dir": str(out)},
                        cwd=str(ROOT / "notebooks"), progress_bar=False, kernel_name="python3")
    nb = nbformat.read(out / f"{chapter}.ipynb", 4)
    assert book_checks.problems(nb) == []
    return book_checks.text(nb)


def _fold_1(real_cnmc) -> list[str]:
    """The subjects of fold_1 (14, with hundreds of cells each), whatever other folds are present."""
    return sorted(real_cnmc.table.loc[real_cnmc.table["fold"] == 1, "patient"].unique())


def test_subjects_with_a_single_cell_are_left_out_of_the_probe_and_said(real_cnmc, tmp_path):
    patients = _fold_1(real_cnmc)
    normal = [p for p in patients if p.startswith("H")]
    cells = {p: 3 for p in patients}
    cells[normal[0]] = 1
    cells[[p for p in patients if not p.startswith("H")][0]] = 1
    data = _subset(real_cnmc, tmp_path / "data", cells)
    said = _run("10_cnmc", data, tmp_path)
    assert f"{sum(cells.values())} cells of {len(cells)} subjects" in said
    assert "2 subjects with a single cell were left out" in said
    assert json.loads((tmp_path / "10_cnmc.json").read_text())["n_subjects"] == len(cells)
    said = _run("13_cnmc_gains", data, tmp_path)
    assert "The baseline, frozen, scores" in said and "Called by person, the baseline" in said
    assert "Only one cohort here" in said  # fold_1 alone: nothing to score across cohorts


def test_one_normal_subject_is_said_not_computed(real_cnmc, tmp_path):
    patients = _fold_1(real_cnmc)
    cells = {p: 2 for p in patients if not p.startswith("H")}
    cells[[p for p in patients if p.startswith("H")][0]] = 4
    data = _subset(real_cnmc, tmp_path / "data", cells)
    for chapter in ("10_cnmc", "13_cnmc_gains"):
        said = _run(chapter, data, tmp_path)
        assert "class 0 has 1 group (subject/cell); a split by group needs at least 2 per class" in said, chapter
    assert not (tmp_path / "10_cnmc.json").exists()

"""C-NMC-2019: single cells of 73 subjects in three folds, ``UID_<subject>_<image>_<cell>_<all|hem>``;
the subject is the group."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from alllib.data.dataset import Dataset, read_row
from alllib.data.images import DatasetError, image_files
from alllib.paths import data_dir, shown_path

__all__ = ["load_cnmc", "cnmc_contents", "cnmc_subject"]

_CNMC_NAME = re.compile(r"^UID_([A-Za-z]?\d+)_(\d+)_(\d+)_(all|hem)$", re.IGNORECASE)
_CNMC_ROOTS = ("C-NMC_2019", "C-NMC_Leukemia", "cnmc", "CNMC")


def cnmc_subject(path: str | os.PathLike) -> str | None:
    """The subject of a C-NMC cell from its file name (``UID_<subject>_<image>_<cell>_<all|hem>``),
    upper-cased as the loader does; ``None`` for any other name.

    >>> cnmc_subject("cells/UID_h3_12_1_hem.bmp"), cnmc_subject("cell.png")
    ('H3', None)
    """
    m = _CNMC_NAME.match(Path(path).stem)
    return m.group(1).upper() if m else None


def _find_cnmc(base: Path) -> Path | None:
    for cand in [base / name for name in _CNMC_ROOTS] + [base]:
        if (cand / "training_data").is_dir():
            return cand
    return None


def load_cnmc(root: str | os.PathLike | None = None, *, part: str = "train") -> Dataset:
    """Load C-NMC-2019 from ``<root>/C-NMC_2019/`` (or ``C-NMC_Leukemia/``, ``cnmc/``).

    ``part="train"``: ``training_data/fold_{0,1,2}/{all,hem}/UID_<patient>_<image>_<cell>_<all|hem>.bmp``
    (or ``.png``, a lossless copy with the same name) -> table ``id, path, label, patient, fold,
    group`` with label ``all`` = 1, ``hem`` = 0 and ``group = patient``. Any subset of the three
    folds may be present; ``source`` says which folds and how many subjects were found. Patient
    ids are upper-cased (the real data spells one ``h3``); a normal (``hem``) subject's id starts
    with ``H``. A file whose name disagrees with its folder, or one cell stored twice (``.bmp``
    beside ``.png``), is an error.

    ``part="prelim_test"``: the labelled preliminary test set, ``validation_data/`` with its
    labels CSV; a :class:`DatasetError` says so where it is absent.
    """
    base = data_dir(root)
    top = _find_cnmc(base)
    if top is None:
        raise DatasetError(
            f"C-NMC-2019 not found under {base.resolve()} (looked for C-NMC_2019/training_data/fold_N/all/*.bmp "
            "or *.png); "
            "see data/README.md for how to obtain it"
        )
    if part == "train":
        return _load_cnmc_train(top)
    if part == "prelim_test":
        return _load_cnmc_prelim(top)
    raise ValueError(f"part must be 'train' or 'prelim_test', not {part!r}")


def _parse_cnmc_name(p: Path) -> tuple[str, str, str]:
    m = _CNMC_NAME.match(p.stem)
    if m is None:
        raise DatasetError(f"{p}: file name carries no label (expected UID_<patient>_<image>_<cell>_<all|hem>.bmp)")
    patient, kind = m.group(1).upper(), m.group(4).lower()
    if (kind == "hem") != patient.startswith("H"):
        raise DatasetError(f"{p}: patient id {m.group(1)!r} does not fit class {kind!r} (normal subjects' ids start with H)")
    return patient, kind, f"UID_{patient}_{m.group(2)}_{m.group(3)}_{kind}"


def _load_cnmc_train(top: Path) -> Dataset:
    folds = sorted(p for p in (top / "training_data").iterdir() if p.is_dir() and p.name.startswith("fold_"))
    if not folds:
        raise DatasetError(f"{top / 'training_data'}: no fold_0, fold_1, fold_2 folders")
    rows = []
    for fold in folds:
        for cls in ("all", "hem"):
            folder = fold / cls
            if not folder.is_dir():
                continue
            for p in image_files(folder):
                patient, kind, uid = _parse_cnmc_name(p)
                if kind != cls:
                    raise DatasetError(f"{p}: the name says {kind!r} but the file is in the {cls!r} folder")
                rows.append({"id": uid, "path": str(p), "label": int(kind == "all"), "patient": patient,
                             "fold": int(fold.name.split("_")[-1])})
    if not rows:
        raise DatasetError(f"{top / 'training_data'}: the fold folders hold no images")
    table = pd.DataFrame(rows)
    twice = table[table["id"].duplicated(keep=False)].sort_values("id")
    if len(twice):
        a, b = twice["path"].iloc[:2]
        raise DatasetError(f"{a} and {b}: the same cell stored twice ({len(twice)} files concern repeated cells); "
                           "keep one copy of each")
    for label, name in ((1, "all"), (0, "hem")):
        if not (table["label"] == label).any():
            raise DatasetError(f"{top / 'training_data'}: no {name!r} images; C-NMC needs both classes")
    table["group"] = table["patient"]
    where = shown_path(top / "training_data", top.parent)
    return Dataset("cnmc", table, read_row, source=f"{where} ({cnmc_contents(table)})")


def cnmc_contents(table: pd.DataFrame) -> str:
    """Which folds and how many subjects a C-NMC table holds, in words.

    >>> t = pd.DataFrame({"fold": [1, 1, 1], "patient": ["3", "H1", "3"], "label": [1, 0, 1]})
    >>> cnmc_contents(t)
    'fold_1 of fold_0-2; 2 subjects: 1 ALL, 1 normal'
    """
    folds = ", ".join(f"fold_{f}" for f in sorted(table["fold"].unique()))
    per = table.groupby("label")["patient"].nunique()
    return (f"{folds} of fold_0-2; {table['patient'].nunique()} subjects: {per.get(1, 0)} ALL, "
            f"{per.get(0, 0)} normal")


def _load_cnmc_prelim(top: Path) -> Dataset:
    val = top / "validation_data"
    csvs = sorted(val.glob("*.csv")) if val.is_dir() else []
    if not csvs:
        raise DatasetError(f"{val}: no preliminary test set here (validation_data/ with its labels CSV)")
    labels = pd.read_csv(csvs[0])
    needed = {"Patient_ID", "new_names", "labels"}
    if not needed <= set(labels.columns):
        raise DatasetError(f"{csvs[0]}: expected the columns {sorted(needed)}, found {list(labels.columns)}")
    folders = [p for p in val.iterdir() if p.is_dir()]
    img_dir = folders[0] if len(folders) == 1 else val
    rows = []
    for _, r in labels.iterrows():
        patient, kind, uid = _parse_cnmc_name(Path(str(r["Patient_ID"])))
        path = img_dir / str(r["new_names"])
        if not path.is_file():
            raise DatasetError(f"{path}: listed in {csvs[0].name} but missing")
        if int(r["labels"]) != int(kind == "all"):
            raise DatasetError(f"{csvs[0]}: row {r['new_names']} has label {r['labels']} but its id says {kind!r}")
        rows.append({"id": uid, "path": str(path), "label": int(r["labels"]), "patient": patient})
    table = pd.DataFrame(rows)
    table["group"] = table["patient"]
    return Dataset("cnmc_prelim_test", table, read_row, source=shown_path(val, top.parent))


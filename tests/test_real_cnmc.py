"""The real C-NMC-2019 cells in ALLLIB_DATA (skipped with a reason where absent).

``../shared`` holds training fold_1 and part of fold_2 as lossless PNG; the originals are 450x450 24-bit BMPs whose
SHA-256 is listed in ``MANIFEST.csv``. Writing a PNG back as a BMP with the header described in
``SOURCES.md`` must give those exact bytes, so the PNGs are the original pixels.
"""
import hashlib
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alllib.data import load_cnmc, read_image

pytestmark = pytest.mark.real_data


def bmp_bytes(rgb: np.ndarray) -> bytes:
    """A 24-bit bottom-up BMP with a 54-byte header (BITMAPINFOHEADER, 3,779 pixels per metre)."""
    h, w, _ = rgb.shape
    row = w * 3
    pad = (-row) % 4
    body = b"".join(rgb[y, :, ::-1].tobytes() + b"\0" * pad for y in range(h - 1, -1, -1))
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(body), 3779, 3779, 0, 0)
    return struct.pack("<2sIHHI", b"BM", 54 + len(body), 0, 0, 54) + info + body


#: What each fold holds in ../shared (SOURCES.md): cells, ALL cells, normal cells, the normal subjects.
SHIPPED = {1: (3554, 2397, 1157, ["H10", "H14", "H22"]),
           2: (81, 57, 24, ["H1", "H13", "H2", "H20", "H23", "H3", "H4", "H40", "H48", "H5"])}


def test_counts_classes_subjects(real_cnmc):
    """Each fold present as shipped in ../shared (fold_1: 3,554 cells of 14 subjects; fold_2, the
    second cohort: 81 cells of 22 subjects), whichever of them are there; a fold of another size
    (the full C-NMC) is described, not checked."""
    t = real_cnmc.table
    checked = []
    for fold, (cells, blasts, normal_cells, normal) in SHIPPED.items():
        part = t[t["fold"] == fold]
        if len(part) != cells:
            continue
        checked.append(fold)
        assert (part["label"] == 1).sum() == blasts and (part["label"] == 0).sum() == normal_cells
        assert sorted(part.loc[part["label"] == 0, "patient"].unique()) == normal
    if not checked:
        pytest.skip(f"no fold as shipped in ../shared (fold_1: 3,554 cells, fold_2: 81); found {len(t)} cells in "
                    f"folds {sorted(set(t['fold']))}")
    # every H subject is normal and every normal subject is an H subject; a subject is in one fold
    assert (t["patient"].str.startswith("H") == (t["label"] == 0)).all()
    assert (t.groupby("patient")["label"].nunique() == 1).all() and (t.groupby("patient")["fold"].nunique() == 1).all()
    per = t.groupby("label")["patient"].nunique()
    assert f"{t['patient'].nunique()} subjects: {per[1]} ALL, {per[0]} normal" in real_cnmc.source
    if checked == [1, 2]:
        assert "fold_1, fold_2 of fold_0-2; 36 subjects: 23 ALL, 13 normal" in real_cnmc.source


def test_png_is_the_original_bmp(real_cnmc, tmp_path):
    top = next(d for d in Path(real_cnmc.table["path"].iloc[0]).parents if (d / "MANIFEST.csv").is_file())
    manifest = pd.read_csv(top / "MANIFEST.csv").set_index("path")
    t = real_cnmc.table
    sample = t.groupby("patient", group_keys=False).apply(lambda g: g.iloc[:: max(1, len(g) // 3)])
    for _, row in sample.iterrows():
        rel = str(Path(row["path"]).relative_to(top))
        rgb = read_image(row["path"])
        assert rgb.shape == (450, 450, 3)
        raw = bmp_bytes(rgb)
        assert len(raw) == 608_454
        assert hashlib.sha256(raw).hexdigest() == manifest.loc[rel, "original_sha256"], rel
        # the reader decodes the BMP to the same pixels as the PNG
        folder = tmp_path / "C-NMC_2019" / "training_data" / f"fold_{row['fold']}" / Path(rel).parent.name
        bmp = folder / (Path(rel).stem + ".bmp")
        bmp.parent.mkdir(parents=True, exist_ok=True)
        bmp.write_bytes(raw)
        np.testing.assert_array_equal(read_image(bmp), rgb)
    # and a tree of BMPs loads like the PNG tree
    back = load_cnmc(tmp_path)
    assert sorted(back.ids) == sorted(sample["id"]) and back.labels.sum() == sample["label"].sum()

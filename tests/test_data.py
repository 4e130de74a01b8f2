"""The data layer: image reading, the three loaders, duplicate groups and the entry point."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from alllib.data import DatasetError, ImageReadError, duplicate_groups, load_all_idb2, load_cnmc, load_dataset, read_image
from alllib.paths import data_dir

from .conftest import write_rgb


# ------------------------------------------------------------------ read_image
def test_read_image_rgb_order(tmp_path):
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[..., 0] = 200  # red
    out = read_image(write_rgb(tmp_path / "red.png", rgb))
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    assert (out[..., 0] == 200).all() and (out[..., 1:] == 0).all()


def test_read_image_grayscale_becomes_three_channels(tmp_path):
    p = tmp_path / "g.tif"
    cv2.imwrite(str(p), np.arange(20, dtype=np.uint8).reshape(4, 5))
    out = read_image(p)
    assert out.shape == (4, 5, 3)
    assert (out[..., 0] == out[..., 2]).all() and out[1, 0, 1] == 5


def test_read_image_rgba_drops_alpha(tmp_path):
    p = tmp_path / "a.png"
    bgra = np.zeros((3, 3, 4), np.uint8)
    bgra[..., 2] = 90  # red in BGRA order
    bgra[..., 3] = 10
    cv2.imwrite(str(p), bgra)
    out = read_image(p)
    assert out.shape == (3, 3, 3) and (out[..., 0] == 90).all() and (out[..., 1:] == 0).all()


def test_read_image_16bit_scaled(tmp_path):
    p = tmp_path / "deep.tif"
    img = np.zeros((2, 2, 3), np.uint16)
    img[0, 0] = 65535
    img[1, 1] = 257 * 100
    cv2.imwrite(str(p), img)
    out = read_image(p)
    assert out.dtype == np.uint8
    assert out[0, 0].tolist() == [255, 255, 255] and out[1, 1].tolist() == [100, 100, 100]


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"II*\x00" + b"\x00" * 10])
def test_read_image_corrupt_names_file_and_keeps_it(tmp_path, content):
    p = tmp_path / "broken.tif"
    p.write_bytes(content)
    with pytest.raises(ImageReadError, match="broken.tif"):
        read_image(p)
    assert p.read_bytes() == content  # nothing lost


def test_read_image_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.tif")


# ------------------------------------------------------------------ ALL-IDB2
def test_all_idb2_loader_table(idb2_tree):
    ds = load_all_idb2(idb2_tree)
    assert ds.name == "all_idb2" and len(ds) == 6
    assert {"id", "path", "label", "group", "height", "width", "md5"} <= set(ds.table.columns)
    assert ds.table.set_index("id").loc["Im001_1", "label"] == 1
    assert ds.table.set_index("id").loc["Im002_0", "label"] == 0
    assert (ds.table["height"] == 96).all() and (ds.table["width"] == 96).all()
    groups = ds.table.set_index("id")["group"]
    assert groups["Im002_0"] == groups["Im006_0"]  # byte-identical copy
    assert ds.table["group"].nunique() == 5
    assert ds.image(0).shape == (96, 96, 3)


def test_all_idb2_accepts_img_folder_itself(idb2_tree):
    assert len(load_all_idb2(idb2_tree / "ALL_IDB2" / "img")) == 6


def test_all_idb2_name_without_label(idb2_tree, synthetic):
    write_rgb(idb2_tree / "ALL_IDB2" / "img" / "Im007.tif", synthetic.image(0))
    with pytest.raises(DatasetError, match="Im007.tif: file name carries no label"):
        load_all_idb2(idb2_tree)


def test_all_idb2_ignores_non_image_files(idb2_tree):
    (idb2_tree / "ALL_IDB2" / "img" / "readme.txt").write_text("authors' note")
    assert len(load_all_idb2(idb2_tree)) == 6


def test_all_idb2_empty_folder(tmp_path):
    (tmp_path / "ALL_IDB2" / "img").mkdir(parents=True)
    with pytest.raises(DatasetError, match="holds no images"):
        load_all_idb2(tmp_path)


def test_all_idb2_missing(tmp_path):
    with pytest.raises(DatasetError, match="ALL-IDB2 not found"):
        load_all_idb2(tmp_path)


def test_all_idb2_one_class_missing(tmp_path, synthetic):
    for i in (0, 2, 4):  # blasts only
        write_rgb(tmp_path / "ALL_IDB2" / "img" / f"Im{i:03d}_1.tif", synthetic.image(i))
    with pytest.raises(DatasetError, match="no not a blast"):
        load_all_idb2(tmp_path)


def test_all_idb2_corrupt_image_is_named(idb2_tree):
    (idb2_tree / "ALL_IDB2" / "img" / "Im009_1.tif").write_bytes(b"garbage")
    with pytest.raises(ImageReadError, match="Im009_1.tif"):
        load_all_idb2(idb2_tree)


def test_near_duplicates_found_by_shift_and_brightness(synthetic):
    base = synthetic.image(0)
    shifted = np.roll(base, (6, -4), axis=(0, 1))
    darker = np.clip(base.astype(int) * 0.85, 0, 255).astype(np.uint8)
    others = [synthetic.image(i) for i in (1, 2, 3)]
    groups = duplicate_groups([base, others[0], shifted, others[1], darker, others[2]])
    assert groups[0] == groups[2] == groups[4]
    assert len({groups[0], groups[1], groups[3], groups[5]}) == 4


# ------------------------------------------------------------------ C-NMC
def _cnmc_tree(root, synthetic, extra=()):
    top = root / "C-NMC_2019" / "training_data"
    names = [
        ("fold_0", "all", "UID_11_1_1_all.bmp"),
        ("fold_0", "all", "UID_11_2_1_all.bmp"),
        ("fold_0", "hem", "UID_H10_1_1_hem.bmp"),
        ("fold_1", "all", "UID_12_1_1_all.bmp"),
        ("fold_1", "hem", "UID_h3_5_2_hem.bmp"),
        *extra,
    ]
    for k, (fold, cls, name) in enumerate(names):
        write_rgb(top / fold / cls / name, synthetic.image(k % len(synthetic)))
    return root


def test_cnmc_loader(tmp_path, synthetic):
    ds = load_cnmc(_cnmc_tree(tmp_path, synthetic))
    t = ds.table.set_index("id")
    assert len(ds) == 5 and ds.name == "cnmc"
    assert t.loc["UID_11_1_1_all", "label"] == 1 and t.loc["UID_H10_1_1_hem", "label"] == 0
    assert t.loc["UID_H3_5_2_hem", "patient"] == "H3"  # case-insensitive ids
    assert t.loc["UID_12_1_1_all", "fold"] == 1
    assert (ds.table["group"] == ds.table["patient"]).all()
    assert ds.table["group"].nunique() == 4


def test_cnmc_png_and_any_folds(tmp_path, synthetic):
    """Lossless PNG copies load like BMPs; one fold alone is enough and the source says which."""
    _cnmc_tree(tmp_path, synthetic)
    for p in (tmp_path / "C-NMC_2019" / "training_data" / "fold_0").rglob("*.bmp"):
        p.rename(p.with_suffix(".png"))
    ds = load_cnmc(tmp_path)
    assert len(ds) == 5 and sorted(ds.table["fold"].unique()) == [0, 1]
    assert "fold_0, fold_1 of fold_0-2; 4 subjects: 2 ALL, 2 normal" in ds.source
    write_rgb(tmp_path / "C-NMC_2019" / "training_data" / "fold_0" / "all" / "UID_11_1_1_all.bmp", synthetic.image(0))
    with pytest.raises(DatasetError, match="UID_11_1_1_all.bmp .*UID_11_1_1_all.png: the same cell stored twice"):
        load_cnmc(tmp_path)


def test_cnmc_name_disagrees_with_folder(tmp_path, synthetic):
    _cnmc_tree(tmp_path, synthetic, extra=[("fold_2", "all", "UID_H7_1_1_hem.bmp")])
    with pytest.raises(DatasetError, match="UID_H7_1_1_hem.bmp: the name says 'hem'"):
        load_cnmc(tmp_path)


def test_cnmc_patient_id_must_fit_class(tmp_path, synthetic):
    _cnmc_tree(tmp_path, synthetic, extra=[("fold_2", "hem", "UID_7_1_1_hem.bmp")])
    with pytest.raises(DatasetError, match="does not fit class"):
        load_cnmc(tmp_path)


def test_cnmc_name_without_label(tmp_path, synthetic):
    _cnmc_tree(tmp_path, synthetic, extra=[("fold_2", "all", "cell_42.bmp")])
    with pytest.raises(DatasetError, match="cell_42.bmp: file name carries no label"):
        load_cnmc(tmp_path)


def test_cnmc_missing_and_prelim_absent(tmp_path, synthetic):
    with pytest.raises(DatasetError, match="C-NMC-2019 not found"):
        load_cnmc(tmp_path)
    _cnmc_tree(tmp_path, synthetic)
    with pytest.raises(DatasetError, match="no preliminary test set"):
        load_cnmc(tmp_path, part="prelim_test")


def test_cnmc_prelim_test_set(tmp_path, synthetic):
    _cnmc_tree(tmp_path, synthetic)
    val = tmp_path / "C-NMC_2019" / "validation_data"
    write_rgb(val / "C-NMC_test_prelim_phase_data" / "1.bmp", synthetic.image(0))
    write_rgb(val / "C-NMC_test_prelim_phase_data" / "2.bmp", synthetic.image(1))
    (val / "C-NMC_test_prelim_phase_data_labels.csv").write_text(
        "Patient_ID,new_names,labels\nUID_57_29_1_all.bmp,1.bmp,1\nUID_H40_9_3_hem.bmp,2.bmp,0\n"
    )
    ds = load_cnmc(tmp_path, part="prelim_test")
    assert ds.labels.tolist() == [1, 0] and ds.table["patient"].tolist() == ["57", "H40"]
    assert ds.image(1).shape == (96, 96, 3)


# ------------------------------------------------------------------ entry point
def test_data_dir_precedence(monkeypatch, tmp_path):
    """Argument, then $ALLLIB_DATA, then the project's data/ whatever the working folder."""
    monkeypatch.delenv("ALLLIB_DATA", raising=False)
    project = tmp_path / "book"
    (project / "notebooks").mkdir(parents=True)
    (project / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    monkeypatch.chdir(project / "notebooks")  # where the runner executes a chapter
    assert data_dir() == project / "data"
    monkeypatch.setenv("ALLLIB_DATA", str(tmp_path / "shared"))
    assert data_dir() == tmp_path / "shared"
    assert str(data_dir("elsewhere")) == "elsewhere"


def test_the_cache_never_lands_in_a_data_folder(monkeypatch, tmp_path):
    from alllib.paths import cache_dir

    monkeypatch.delenv("ALLLIB_CACHE", raising=False)
    monkeypatch.setenv("ALLLIB_DATA", str(tmp_path / "shared"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "alllib"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "alllib"
    monkeypatch.setenv("ALLLIB_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"


def test_load_dataset_auto(tmp_path, idb2_tree, capsys):
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    ds = load_dataset("auto", empty, n=4, size=64)
    assert ds.name == "synthetic"
    assert "using the synthetic smears" in capsys.readouterr().out
    assert load_dataset("auto", idb2_tree).name == "all_idb2"


def test_load_dataset_bad_name():
    with pytest.raises(ValueError, match="unknown dataset 'idb3'"):
        load_dataset("idb3")
    with pytest.raises(TypeError, match="must be a string"):
        load_dataset(3)


def test_subset_and_summary(synthetic):
    sub = synthetic.subset([0, 1, 2])
    assert len(sub) == 3 and np.array_equal(sub.image(2), synthetic.image(2))
    assert synthetic.summary()["images"].tolist() == [6, 6]

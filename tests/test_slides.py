"""ALL-IDB2's slides: the crop-to-slide matcher, the slide map, and splits that keep a slide whole."""
from __future__ import annotations

import numpy as np
import pytest

from alllib.data import load_all_idb2
from alllib.data.slides import canonical_slide, match_crop, match_crops, shipped_slide_map

from .conftest import write_rgb


def _slide(seed, h=300, w=360):
    """A textured RGB 'slide' (smooth random blobs), different for every seed."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (h // 6, w // 6, 3), dtype=np.uint8)
    return cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)


CUTS = {"Im001_1": ("A", 20, 30), "Im002_1": ("A", 200, 150), "Im003_1": ("B", 50, 60), "Im004_0": ("C", 90, 10),
        "Im005_0": ("C", 10, 200), "Im006_0": ("D", 100, 100)}


@pytest.fixture
def slides_tree(tmp_path):
    """ALL_IDB1/im with four synthetic slides and ALL_IDB2/img with crops cut at known places."""
    slides = {name: _slide(i) for i, name in enumerate("ABCD")}
    for name, img in slides.items():
        write_rgb(tmp_path / "ALL_IDB1" / "im" / f"{name}.png", img)
    for crop, (slide, x, y) in CUTS.items():
        write_rgb(tmp_path / "ALL_IDB2" / "img" / f"{crop}.tif", slides[slide][y:y + 96, x:x + 96])
    return tmp_path, slides


def test_match_crop_finds_the_slide_and_the_place(slides_tree):
    _, slides = slides_tree
    for crop, (slide, x, y) in CUTS.items():
        found = match_crop(slides[slide][y:y + 96, x:x + 96], slides)
        assert (found["slide"], found["x"], found["y"]) == (slide, x, y) and found["correlation"] > 0.999
    stranger = _slide(99)[:96, :96]
    assert match_crop(stranger, slides)["correlation"] < 0.9


def test_loader_groups_crops_by_slide(slides_tree, monkeypatch, tmp_path):
    monkeypatch.setenv("ALLLIB_CACHE", str(tmp_path / "cache"))
    root, _ = slides_tree
    ds = load_all_idb2(root, near_duplicates=False)
    t = ds.table.set_index("id")
    for crop, (slide, x, y) in CUTS.items():
        assert (t.loc[crop, "slide"], t.loc[crop, "x"], t.loc[crop, "y"]) == (slide, x, y)
    assert t.loc["Im001_1", "group"] == t.loc["Im002_1", "group"] != t.loc["Im003_1", "group"]
    assert t.loc["Im004_0", "group"] == t.loc["Im005_0", "group"]
    assert t["acquisition"].eq("360x300").all() and "6 matched here against the 4 ALL-IDB1 slides" in ds.source
    dups = load_all_idb2(root, near_duplicates=False, grouping="duplicates")
    assert dups.table["group"].nunique() == 6  # each crop alone: the slides are not joined
    with pytest.raises(ValueError, match="grouping must be 'slide' or 'duplicates'"):
        load_all_idb2(root, grouping="patient")


def test_matches_are_cached(slides_tree, tmp_path, monkeypatch):
    import alllib.data.slides as S

    root, _ = slides_tree
    crops = [np.ascontiguousarray(s[y:y + 96, x:x + 96]) for s, x, y in
             [(slides_tree[1][v[0]], v[1], v[2]) for v in CUTS.values()]]
    paths = sorted((root / "ALL_IDB1" / "im").glob("*.png"))
    first = match_crops(crops, list(CUTS), paths, cache=tmp_path / "c")
    monkeypatch.setattr(S, "_match", lambda *a: pytest.fail("matched again instead of reading the cache"))
    again = match_crops(crops, list(CUTS), paths, cache=tmp_path / "c")
    assert again.equals(first)


def test_the_shipped_map_is_used_only_for_the_real_crops(idb2_tree):
    """The fixture's images carry real ALL-IDB2 names but other pixels: no slide is invented."""
    ds = load_all_idb2(idb2_tree)
    assert ds.table["slide"].isna().all() and "6 without a known slide" in ds.source


def test_shipped_map():
    t = shipped_slide_map()
    assert len(t) == 260 and t["slide"].map(canonical_slide).nunique() == 102
    assert (t["correlation"] == 1).all()
    blasts = t[t.index.str.endswith("_1")]
    assert int((blasts["slide_width"] == 1712).sum()) == 73
    assert not (t[t.index.str.endswith("_0")]["slide_width"] == 1712).any()
    assert canonical_slide("Im108_0") == canonical_slide("Im093_0")


@pytest.mark.real_data
def test_real_slides_hold_their_crops_where_the_table_says(real_idb2):
    """The matcher, on the real ALL-IDB1 slides in the data folder, finds every crop of those
    slides at the shipped table's position."""
    import os
    from pathlib import Path

    from alllib.data import read_image

    folder = Path(os.environ["ALLLIB_DATA"]) / "ALL_IDB1" / "im"
    if not folder.is_dir():
        pytest.skip(f"no ALL-IDB1 slides in {folder}")
    paths = sorted(folder.glob("*.jpg"))
    present = {canonical_slide(p.stem) for p in paths}
    table = shipped_slide_map()
    mine = table[table["slide"].map(canonical_slide).isin(present)]
    t = real_idb2.table.set_index("id")
    crops = [read_image(t.loc[c, "path"]) for c in mine.index]
    found = match_crops(crops, list(mine.index), paths).set_index("crop")
    assert len(mine) == 37
    for crop, row in mine.iterrows():
        f = found.loc[crop]
        assert canonical_slide(f["slide"]) == canonical_slide(row["slide"]) and (f["x"], f["y"]) == (row["x"], row["y"])
        assert f["correlation"] > 0.999


@pytest.mark.real_data
def test_real_all_idb2_groups_by_slide_and_no_slide_crosses_a_split(real_idb2):
    from alllib.learn.protocols import honest_protocol

    from .conftest import colour_features

    t = real_idb2.table
    assert t["group"].nunique() == 97 and t["dup_group"].nunique() == 248
    assert (t.groupby("slide")["group"].nunique() == 1).all()
    assert int(((t["label"] == 1) & (t["acquisition"] == "1712x1368")).sum()) == 73
    seen = []

    def spy(ds):
        seen.append(ds.table)
        return colour_features(ds)

    honest_protocol(real_idb2, spy, ["rf"], target_per_class=None, n_splits=5, n_repeats=1, seed=0, progress=False)
    for train, test in zip(seen[0::2], seen[1::2]):
        assert not set(train["slide"].map(canonical_slide)) & set(test["slide"].map(canonical_slide))

"""The real ALL-IDB2 (found through ALLLIB_DATA; skipped with a reason where absent)."""
import numpy as np
import pytest

pytestmark = pytest.mark.real_data


def test_counts_and_classes(real_idb2):
    t = real_idb2.table
    assert len(t) == 260
    assert (t["label"] == 1).sum() == 130 and (t["label"] == 0).sum() == 130
    assert t["id"].str.match(r"Im\d{3}_[01]$").all()
    # the label in the name agrees with the numbering described in SOURCES.md
    numbers = t["id"].str[2:5].astype(int)
    assert ((numbers <= 130) == (t["label"] == 1)).all()


def test_image_sizes(real_idb2):
    t = real_idb2.table
    assert ((t["height"] == 257) & (t["width"] == 257)).sum() == 250
    assert t[["height", "width"]].max(axis=1).eq(257).all()
    img = real_idb2.image(0)
    assert img.dtype == np.uint8 and img.shape == (257, 257, 3)


def test_byte_identical_pair_in_one_group(real_idb2):
    t = real_idb2.table.set_index("id")
    assert t.loc["Im223_0", "md5"] == t.loc["Im257_0", "md5"]
    assert t.loc["Im223_0", "group"] == t.loc["Im257_0", "group"]


@pytest.mark.parametrize("a,b", [("Im222_0", "Im256_0"), ("Im224_0", "Im258_0"), ("Im227_0", "Im260_0")])
def test_near_duplicates_named_in_public_analyses_share_a_group(real_idb2, a, b):
    t = real_idb2.table.set_index("id")
    assert t.loc[a, "md5"] != t.loc[b, "md5"]
    assert t.loc[a, "group"] == t.loc[b, "group"]


def test_groups_never_mix_labels(real_idb2):
    t = real_idb2.table
    assert (t.groupby("group")["label"].nunique() == 1).all()
    assert (t.groupby("dup_group")["label"].nunique() == 1).all()
    n_groups = t["dup_group"].nunique()
    sizes = t.groupby("dup_group").size()
    # 260 crops: 10 pairs and one triple of the same cell (one pair byte-identical), 237 single crops
    assert n_groups == 248 and sorted(sizes[sizes > 1].tolist()) == [2] * 10 + [3]
    assert t["group"].nunique() == 97  # joined with the crops of each slide (tests/test_slides.py)
    print(f"ALL-IDB2: 260 images form {n_groups} groups")

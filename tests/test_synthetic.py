"""The synthetic smears: determinism, masks, classes."""
import numpy as np
import pytest

from alllib.data.synthetic import make_synthetic, synthetic_smear


def test_same_seed_same_pixels_any_order():
    a = make_synthetic(n=6, seed=7, size=80)
    b = make_synthetic(n=6, seed=7, size=80)
    assert np.array_equal(a.image(5), b.image(5))
    assert np.array_equal(a.image(2), a.image(2))
    assert not np.array_equal(a.image(2), make_synthetic(n=6, seed=8, size=80).image(2))


def test_shapes_labels_groups(synthetic):
    assert synthetic.labels.tolist() == [1, 0] * 6
    assert synthetic.table["group"].nunique() == len(synthetic)
    img, mask = synthetic.image(0), synthetic.mask(0)
    assert img.dtype == np.uint8 and img.shape == (96, 96, 3)
    assert mask.dtype == bool and mask.shape == (96, 96)


def test_mask_marks_the_dark_purple_nucleus(synthetic):
    for i in range(4):
        img, mask = synthetic.image(i).astype(float), synthetic.mask(i)
        assert 0.01 < mask.mean() < 0.5
        assert mask[48, 48]  # centred cell
        # the nucleus is darker and bluer than the rest of the crop
        assert img[mask].mean() < img[~mask].mean() - 40
        assert img[mask][:, 2].mean() > img[mask][:, 1].mean()


def test_classes_differ_in_nucleus_size_with_overlap():
    ds = make_synthetic(n=120, seed=0, size=96)
    area = np.array([ds.mask(i).mean() for i in range(len(ds))])
    blast, normal = area[ds.labels == 1], area[ds.labels == 0]
    assert blast.mean() > normal.mean() * 1.2  # blasts: bigger nucleus
    assert blast.min() < normal.max()  # but the distributions overlap


def test_bad_parameters():
    with pytest.raises(TypeError, match="n must be an integer"):
        make_synthetic(n="10")
    with pytest.raises(ValueError, match="at least 2"):
        make_synthetic(n=1)
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        synthetic_smear(2, np.random.default_rng(0))

"""Augmentation: the operations, seeding, balancing and provenance."""
import numpy as np
import pytest

from alllib.augmentation import Augmenter, AugmentParams, augment_dataset, balance, balancing_table

IDENTITY = AugmentParams(angle=0.0, hflip=False, vflip=False, zoom=1.0, brightness=1.0)


def _ramp():
    img = np.zeros((31, 41, 3), np.uint8)
    img[..., 0] = np.arange(41) * 5
    img[..., 1] = (np.arange(31) * 7)[:, None]
    return img


def test_identity_and_flips():
    img, aug = _ramp(), Augmenter()
    assert np.array_equal(aug.apply(img, IDENTITY), img)
    h = aug.apply(img, AugmentParams(0.0, True, False, 1.0, 1.0))
    v = aug.apply(img, AugmentParams(0.0, False, True, 1.0, 1.0))
    assert np.array_equal(h, img[:, ::-1]) and np.array_equal(v, img[::-1])


def test_rotation_brightness_zoom():
    img, aug = _ramp(), Augmenter()
    sq = np.zeros((41, 41, 3), np.uint8)
    sq[5:10, 20] = 255  # a bar above the centre
    rot = aug.apply(sq, AugmentParams(90.0, False, False, 1.0, 1.0))
    assert rot[20, 5:10, 0].mean() > 100  # turned counter-clockwise to the left of the centre
    dark = aug.apply(img, AugmentParams(0.0, False, False, 1.0, 0.5))
    assert np.allclose(dark.astype(int), np.rint(img * 0.5), atol=1)
    zoomed = aug.apply(img, AugmentParams(0.0, False, False, 1.2, 1.0))
    assert zoomed.shape == img.shape and not np.array_equal(zoomed, img)


def test_samples_stay_in_their_ranges():
    aug = Augmenter(rotation=(0, 45), zoom=0.2, brightness=(0.2, 1.0))
    rng = np.random.default_rng(0)
    ps = [aug.sample(rng) for _ in range(500)]
    assert all(0 <= p.angle <= 45 and 0.8 <= p.zoom <= 1.2 and 0.2 <= p.brightness <= 1.0 for p in ps)
    assert 150 < sum(p.hflip for p in ps) < 350
    no_flip = Augmenter(hflip=False, vflip=False)
    assert not any(no_flip.sample(rng).hflip or no_flip.sample(rng).vflip for _ in range(50))


def test_seeded_and_input_untouched(synthetic):
    imgs = synthetic.images([0, 1])
    before = [i.copy() for i in imgs]
    a = Augmenter(seed=3).augment_many(imgs, copies=2)
    b = Augmenter(seed=3).augment_many(imgs, copies=2)
    c = Augmenter(seed=4).augment_many(imgs, copies=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert all(np.array_equal(x, y) for x, y in zip(imgs, before))


def test_balance_counts_and_provenance(synthetic):
    small = synthetic.subset([0, 1, 2, 3, 5])  # 2 blasts, 3 normal
    big = balance(small, target_per_class=7, augmenter=Augmenter(seed=1))
    t = big.table
    assert t.groupby("label").size().tolist() == [7, 7]
    assert balancing_table(big).loc["ALL blast (1)"].tolist() == [2, 5, 7]
    copies = t[t["augmented"]]
    # every copy names its source and inherits the source's label and group
    src = small.table.set_index("id")
    assert copies["source"].isin(src.index).all()
    assert (copies["group"].to_numpy() == src.loc[copies["source"], "group"].to_numpy()).all()
    assert (copies["label"].to_numpy() == src.loc[copies["source"], "label"].to_numpy()).all()
    # spread evenly over the sources of a class
    per_source = copies.groupby("source").size()
    assert per_source.max() - per_source.min() <= 2
    assert t["id"].is_unique


def test_augmented_dataset_is_lazy_and_deterministic(synthetic):
    big = augment_dataset(synthetic.subset([0, 1]), Augmenter(seed=2), copies=3)
    assert len(big) == 8
    first = big.image(5)
    assert np.array_equal(first, big.image(5))
    assert np.array_equal(big.image(0), synthetic.image(0))  # originals unchanged
    # a subset (as a split makes) reads the same pixels
    assert np.array_equal(big.subset([5]).image(0), first)
    with pytest.raises(ValueError, match="already augmented"):
        augment_dataset(big, Augmenter(), 1)


def test_balance_errors(synthetic):
    with pytest.raises(ValueError, match="more than target_per_class"):
        balance(synthetic, target_per_class=3)
    with pytest.raises(TypeError, match="must be an integer"):
        balance(synthetic, target_per_class="750")
    with pytest.raises(ValueError, match="zoom"):
        balance(synthetic, 10, Augmenter(zoom=1.5))


def test_bad_image(synthetic):
    with pytest.raises(ValueError, match="image to augment must be RGB"):
        Augmenter().apply(np.zeros((10, 10), np.uint8), IDENTITY)


def test_samples_fill_their_ranges_and_change_pixels(synthetic):
    """Not only inside the ranges: spread over them, and each one visible in the pixels."""
    aug = Augmenter(rotation=(0, 45), zoom=0.2, brightness=(0.2, 1.0))
    rng = np.random.default_rng(1)
    ps = [aug.sample(rng) for _ in range(400)]
    angles, zooms, lights = (np.array([getattr(p, k) for p in ps]) for k in ("angle", "zoom", "brightness"))
    for values, low, high in ((angles, 0, 45), (zooms, 0.8, 1.2), (lights, 0.2, 1.0)):
        width = high - low
        assert values.std() > 0.25 * width  # a uniform draw has std width / sqrt(12) = 0.29 width
        assert values.min() < low + 0.1 * width and values.max() > high - 0.1 * width
    assert 100 < sum(p.vflip for p in ps) < 300
    img = synthetic.image(0)
    copies = [aug.apply(img, p) for p in ps[:40]]
    brightness_ratio = np.array([c.mean() for c in copies]) / img.mean()
    assert brightness_ratio.min() < 0.5 and brightness_ratio.max() > 0.8  # darkened, by varying amounts
    # geometry: with brightness fixed, copies differ from the original beyond a uniform scaling
    moved = [aug.apply(img, AugmentParams(p.angle, p.hflip, p.vflip, p.zoom, 1.0)) for p in ps[:40]]
    assert np.mean([np.abs(m.astype(int) - img).mean() > 5 for m in moved]) > 0.9


def test_the_cache_key_of_a_copy_follows_the_augmenter(synthetic):
    """Another seed or other augmentation settings give other copies: other feature-cache keys."""
    base = synthetic.subset([0, 1])
    keys = {}
    for name, aug in {"a": Augmenter(seed=1), "same": Augmenter(seed=1), "seed": Augmenter(seed=2),
                      "rotation": Augmenter(rotation=(0, 10), seed=1), "zoom": Augmenter(zoom=0.1, seed=1),
                      "brightness": Augmenter(brightness=(0.5, 1.0), seed=1), "border": Augmenter(border="constant", seed=1),
                      "flips": Augmenter(hflip=False, seed=1)}.items():
        big = augment_dataset(base, aug, copies=2)
        keys[name] = [big.image_key(i) for i in range(len(big)) if big.table["augmented"].iloc[i]]
    assert keys["a"] == keys["same"]
    for name in ("seed", "rotation", "zoom", "brightness", "border", "flips"):
        assert not set(keys[name]) & set(keys["a"]), name


def _stained_cell():
    """A purple-stained disc on a black background, as C-NMC's segmented cells come."""
    img = np.zeros((48, 48, 3), np.uint8)
    yy, xx = np.mgrid[:48, :48]
    img[(yy - 24) ** 2 + (xx - 24) ** 2 < 15 ** 2] = (150, 80, 170)
    return img


def test_stain_jitter_moves_the_stain_not_the_shape_nor_the_background():
    from alllib.augmentation import hsv_jitter, stain_jitter

    img = _stained_cell()
    same = stain_jitter(img, (1, 1, 1), (0, 0, 0))
    assert np.abs(same.astype(int) - img).max() <= 1  # the deconvolution round-trips
    more_haematoxylin = stain_jitter(img, (1.3, 1, 1), (0.05, 0, 0))
    cell = img.any(axis=2)
    assert (more_haematoxylin[~cell] == 0).all()  # the black background stays black
    assert more_haematoxylin[cell].mean() < img[cell].mean() - 5  # a denser stain is darker
    faint = stain_jitter(img, (0.05, 0.05, 0.05), (0, 0, 0))  # would turn black to grey-purple
    assert (faint[~cell] == 0).all() and faint[cell].mean() > img[cell].mean() + 20
    turned = hsv_jitter(img, 0.1, 1.0)
    assert (turned[~cell] == 0).all() and np.abs(turned[cell].astype(int) - img[cell]).max() > 10
    grey = hsv_jitter(img, 0.0, 0.0)
    assert np.ptp(grey[cell].astype(int), axis=1).max() <= 1  # no saturation left: grey


def test_colour_jitter_is_opt_in_and_leaves_the_papers_draws_alone():
    """The paper's augmentation draws what it always drew (the cache keys of its copies hold),
    and only an augmenter asked for stain jitter changes the colours."""
    img, rng = _stained_cell(), np.random.default_rng
    assert repr(Augmenter(seed=2)) == "Augmenter(seed=2)"
    assert Augmenter(hed=0.0).sample(rng(0)) == Augmenter().sample(rng(0))
    paper = Augmenter(brightness=(1.0, 1.0), rotation=(0, 0), zoom=0.0)
    jitter = Augmenter(brightness=(1.0, 1.0), rotation=(0, 0), zoom=0.0, hed=0.1, hue=0.05, saturation=0.3)
    geometry = ("angle", "hflip", "vflip", "zoom", "brightness")
    p, q = paper.sample(rng(5)), jitter.sample(rng(5))
    assert all(getattr(p, f) == getattr(q, f) for f in geometry)
    colours = [jitter(img, rng(s))[24, 24] for s in range(20)]
    assert len({tuple(c) for c in colours}) > 15 and all(tuple(paper(img, rng(s))[24, 24]) == (150, 80, 170)
                                                          for s in range(3))


@pytest.mark.parametrize("bad", [dict(hed=-0.1), dict(hed=1.5), dict(hue=0.6), dict(saturation=True)])
def test_colour_jitter_settings_are_checked(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        Augmenter(**bad).sample(np.random.default_rng(0))

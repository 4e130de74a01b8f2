"""Preprocessing: LAB on the 8-bit encoding, resizing, normalisation modes."""
import numpy as np
import pytest

from alllib.preprocessing import (
    BACKBONE_PREPROCESSING,
    check_rgb,
    imagenet_preprocess,
    lab_channels,
    normalise,
    resize,
    rgb_to_lab,
)


def test_lab_is_8bit_with_offset_a():
    grey = np.full((2, 2, 3), 128, np.uint8)
    lab = rgb_to_lab(grey)
    assert lab.dtype == np.uint8
    assert abs(int(lab[0, 0, 1]) - 128) <= 1 and abs(int(lab[0, 0, 2]) - 128) <= 1  # a* = b* = 0 stored as 128
    purple = np.zeros((1, 1, 3), np.uint8)
    purple[:] = (100, 55, 140)
    assert lab_channels(purple)["A"][0, 0] > 141  # a stained nucleus lies above the paper's threshold


def test_resize_shape_and_no_mutation():
    img = np.random.default_rng(0).integers(0, 256, (257, 200, 3), dtype=np.uint8)
    before = img.copy()
    assert resize(img).shape == (224, 224, 3)
    assert resize(img, (100, 50)).shape == (100, 50, 3)
    assert np.array_equal(img, before)
    with pytest.raises(ValueError, match="interpolation"):
        resize(img, interpolation="bogus")


def test_normalise_modes():
    img = np.full((4, 4, 3), 255, np.uint8)
    before = img.copy()
    assert np.allclose(normalise(img, "paper"), 1.0)
    dn = normalise(img, "backbone", backbone="densenet201")
    assert np.allclose(dn[0, 0], (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]), atol=1e-5)
    assert np.allclose(normalise(img, "backbone", backbone="mobilenetv2"), 1.0)
    assert np.allclose(normalise(img, "backbone", backbone="efficientnet_lite0"), 1.0)
    assert np.array_equal(img, before)
    with pytest.raises(ValueError, match="'paper' or 'backbone'"):
        normalise(img, "imagenet")
    with pytest.raises(ValueError, match="known backbone"):
        normalise(img, "backbone", backbone="alexnet")


@pytest.mark.parametrize("backbone", sorted(k for k, mode in BACKBONE_PREPROCESSING.items() if mode != "lite"))
def test_numpy_preprocessing_matches_keras(backbone):
    keras_apps = pytest.importorskip("keras.applications", reason="tensorflow/keras not installed")
    module = {"densenet201": "densenet", "densenet169": "densenet", "densenet121": "densenet", "vgg19": "vgg19",
              "resnet50": "resnet50", "mobilenetv2": "mobilenet_v2"}[backbone]
    x = np.random.default_rng(1).integers(0, 256, (2, 8, 8, 3)).astype(np.float32)
    expected = getattr(keras_apps, module).preprocess_input(x.copy())
    got = imagenet_preprocess(x, BACKBONE_PREPROCESSING[backbone])
    assert np.allclose(np.asarray(expected), got, atol=1e-4)


@pytest.mark.parametrize(
    "bad,message",
    [
        (np.zeros((5, 5), np.uint8), r"shape \(H, W, 3\)"),
        (np.zeros((5, 5, 4), np.uint8), r"shape \(H, W, 3\)"),
        (np.zeros((5, 5, 3), np.float64), "must be uint8"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_check_rgb_errors(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        check_rgb(bad)


def test_macenko_moves_every_stain_to_one_reference_and_leaves_the_background():
    """One cell's stain concentrations (haematoxylin in the nucleus, eosin around it) rendered with
    two labs' stains: normalised, the two images come out alike (far closer than before), the black
    background stays black, an image without stain is returned as it is, and nothing is fitted."""
    from alllib.preprocessing import Macenko

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    cell = (yy - 32) ** 2 + (xx - 32) ** 2 < 20 ** 2
    nucleus = (yy - 32) ** 2 + (xx - 32) ** 2 < 10 ** 2
    conc = np.zeros((64, 64, 2))
    conc[..., 0] = np.where(nucleus, 1.2, 0.15) * cell
    conc[..., 1] = np.where(cell & ~nucleus, 0.7, 0.2) * cell
    conc += rng.uniform(0, 0.1, conc.shape) * cell[..., None]

    def render(stains):
        stains = np.asarray(stains, float) / np.linalg.norm(stains, axis=1, keepdims=True)
        img = 241 * np.exp(-(conc @ stains)) - 1
        img[~cell] = 0
        return np.clip(img, 0, 255).round().astype(np.uint8)

    ours = render(Macenko.REFERENCE_STAINS)
    theirs = render([[0.35, 0.85, 0.40], [0.10, 0.90, 0.42]])  # another lab: bluer haematoxylin, pinker eosin
    m = Macenko().fit([theirs])
    a, b = m.transform_image(ours), Macenko().transform_image(theirs)
    before = np.abs(ours[cell].astype(float).mean(0) - theirs[cell].astype(float).mean(0)).max()
    after = np.abs(a[cell].astype(float).mean(0) - b[cell].astype(float).mean(0)).max()
    assert after < before / 3, (before, after)
    assert (a[~cell] == 0).all() and a.dtype == np.uint8 and a.shape == ours.shape
    blank = np.full((16, 16, 3), 250, np.uint8)
    np.testing.assert_array_equal(Macenko().transform_image(blank), blank)
    assert m.recipe == Macenko().recipe

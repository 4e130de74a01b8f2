"""Property tests: the image reader and the segmentation on any shape, bit depth and size."""
from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from alllib.data import ImageReadError, decode_image, read_image
from alllib.segmentation import MIN_SIZE, segment

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def images(draw):
    """Arrays an image file can hold: 1x1 up to 40x40, gray / gray+1 / BGR / BGRA, 8 or 16 bits."""
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    channels = draw(st.sampled_from([None, 3, 4]))
    dtype = draw(st.sampled_from([np.uint8, np.uint16]))
    shape = (h, w) if channels is None else (h, w, channels)
    return draw(arrays(dtype, shape))


@SETTINGS
@given(img=images(), ext=st.sampled_from([".png", ".tif"]))
def test_read_image_gives_rgb_uint8_of_the_same_size(tmp_path, img, ext):
    path = tmp_path / f"x{ext}"
    assert cv2.imwrite(str(path), img)
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (img.shape[0], img.shape[1], 3)
    if img.dtype == np.uint8 and img.ndim == 3:
        np.testing.assert_array_equal(rgb, img[:, :, 2::-1])  # BGR(A) -> RGB, alpha dropped
    if img.dtype == np.uint16 and img.ndim == 2:
        np.testing.assert_array_equal(rgb[..., 0], np.round(img / 257).astype(np.uint8))


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_any_bytes_decode_or_raise_a_named_error(tmp_path, raw):
    path = tmp_path / "fuzz.png"
    try:
        rgb = decode_image(np.frombuffer(raw, np.uint8), path)
    except ImageReadError as err:
        assert str(path) in str(err)
    else:
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


@SETTINGS
@given(img=arrays(np.uint8, st.tuples(st.integers(1, 48), st.integers(1, 48), st.just(3))),
       method=st.sampled_from(["kmeans", "otsu"]), k=st.integers(2, 7))
def test_segment_returns_an_image_or_a_clear_error(img, method, k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty masks warn; that is tested elsewhere
        if min(img.shape[:2]) < MIN_SIZE:
            with pytest.raises(ValueError, match="too small|at least"):
                segment(img, method, k=k, image_id="tiny")
            return
        out = segment(img, method, k=k, image_id="random")
    assert out.shape == img.shape and out.dtype == np.uint8
    # every kept pixel is the original pixel, every other one black (or the whole image kept)
    kept = (out == img).all(axis=2)
    assert (kept | (out == 0).all(axis=2)).all()

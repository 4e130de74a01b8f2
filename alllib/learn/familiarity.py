"""Is this input like the training images? What a model keeps of its training images (size range,
stain colour, how far their features lie from the training centre) and the checks ``predict``
makes of every image before trusting its label: a uniform or grayscale image, or one far outside
what the model was trained on, is labelled but flagged with the reason.

>>> visible_cell_problem(np.zeros((8, 8, 3), np.uint8))
'a uniform image (every pixel about [0, 0, 0]): no visible cell'
"""
from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV

from alllib.data import Dataset
from alllib.preprocessing import rgb_to_lab

__all__ = ["fitted_scaler", "feature_distance", "training_statistics", "unfamiliar", "visible_cell_problem"]


def fitted_scaler(clf):
    """The ``StandardScaler`` fitted on all the training features, inside a classifier that
    :func:`~alllib.learn.classifiers.fit_classifier` returned (calibrated or not)."""
    if isinstance(clf, CalibratedClassifierCV):
        clf = clf.calibrated_classifiers_[0].estimator
    return clf.named_steps["scale"]


def _stain(img: np.ndarray) -> np.ndarray:
    """Mean L*, a*, b* (OpenCV's 8-bit encoding) of an image's non-black pixels (C-NMC cells lie on
    black), on a subsample of at most about 250,000 pixels."""
    step = max(1, int(np.ceil(np.sqrt(img.shape[0] * img.shape[1] / 250_000))))
    lab = rgb_to_lab(np.ascontiguousarray(img[::step, ::step])).reshape(-1, 3)
    lit = img[::step, ::step].reshape(-1, 3).max(axis=1) > 10
    return lab[lit].mean(axis=0) if lit.any() else lab.mean(axis=0)


def feature_distance(scaler, X: np.ndarray) -> np.ndarray:
    """Root-mean-square standardised feature of each row: how far from the training features' centre."""
    return np.sqrt(np.mean(np.square(scaler.transform(np.asarray(X, np.float64))), axis=1))


def training_statistics(ds: Dataset, X: np.ndarray, scaler) -> dict:
    """What the training images looked like, for :func:`unfamiliar`: their size range, the range
    (1st to 99th percentile) of their mean stain colour in L*a*b*, and the 99th percentile of their
    features' distance from the training centre (:func:`feature_distance`)."""
    stains, sizes = [], []
    for img in ds.iter_images():  # each image read once
        stains.append(_stain(img))
        sizes.append(img.shape[:2])
    stains, sizes = np.array(stains), np.array(sizes)
    return {"height": [int(sizes[:, 0].min()), int(sizes[:, 0].max())],
            "width": [int(sizes[:, 1].min()), int(sizes[:, 1].max())],
            "stain_low": np.percentile(stains, 1, axis=0).round(2).tolist(),
            "stain_high": np.percentile(stains, 99, axis=0).round(2).tolist(),
            "distance_q99": round(float(np.percentile(feature_distance(scaler, X), 99)), 4)}


def unfamiliar(stats: dict | None, img: np.ndarray | None = None, distance: float | None = None) -> list[str]:
    """Why an input lies far outside what the model was trained on (``stats`` from
    :func:`training_statistics`), or nothing: a size beyond half to twice the training range, a
    mean stain colour well outside the training range (by half the range plus 5 levels), or
    features farther from the training centre than 1.5 times the training images' 99th
    percentile. Such an image is labelled, but the label is a guess."""
    if not stats:
        return []
    out = []
    if distance is not None and distance > 1.5 * stats["distance_q99"]:
        out.append(f"features far from the training images ({distance:.2f} against at most "
                   f"{stats['distance_q99']:.2f} for 99 % of them)")
    if img is None:
        return out
    h, w = img.shape[:2]
    (h0, h1), (w0, w1) = stats["height"], stats["width"]
    if not (h0 / 2 <= h <= 2 * h1 and w0 / 2 <= w <= 2 * w1):
        out.append(f"{w}x{h} pixels, unlike the training images ({w0}-{w1} x {h0}-{h1})")
    low, high = np.asarray(stats["stain_low"]), np.asarray(stats["stain_high"])
    margin = (high - low) / 2 + 5
    stain = _stain(img)
    off = [name for name, v, lo, hi, m in zip("Lab", stain, low, high, margin) if not lo - m <= v <= hi + m]
    if off:
        out.append(f"stain colour unlike the training images (mean L*a*b* {stain.round().astype(int).tolist()} "
                   f"against {low.round().astype(int).tolist()} to {high.round().astype(int).tolist()}; "
                   f"{', '.join(off)} outside)")
    return out


def visible_cell_problem(img: np.ndarray) -> str | None:
    """Why an RGB image cannot show a stained cell, or ``None``: a uniform image (all black,
    all white, any single colour) or a grayscale one (no stain colour to segment). Measured on a
    regular subsample of at most about 250,000 pixels, so any image costs a few megabytes.

    >>> visible_cell_problem(np.full((8, 8, 3), (200, 0, 0), np.uint8))
    'a uniform image (every pixel about [200, 0, 0]): no visible cell'
    """
    step = max(1, int(np.ceil(np.sqrt(img.shape[0] * img.shape[1] / 250_000))))
    sample = img[::step, ::step].reshape(-1, 3)
    if float(sample.std(axis=0).max()) < 2.0:
        return f"a uniform image (every pixel about {sample.mean(axis=0).round().astype(int).tolist()}): no visible cell"
    if int(np.ptp(sample.astype(np.int16), axis=1).max()) <= 2:
        return "a grayscale image: no stain colour for the segmentation and the features to read"
    return None

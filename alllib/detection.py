"""Finding the white cells on a whole smear, and cutting each out as ALL-IDB2 was cut.

ALL-IDB2's crops are 257 x 257 pixels around one white cell of an ALL-IDB1 slide. To screen a
slide, :func:`find_cells` finds every white cell's nucleus on it, and :func:`cut_crops` cuts the
same window around each, so that a model trained on ALL-IDB2 sees what it was trained on.

The nucleus is found as the paper finds it, on the LAB A channel, but with the cut chosen from the
slide itself: K-means (K = 3) on the slide's A values, and a pixel is nucleus where it lies nearer
the highest cluster than the middle one (the paper's fixed threshold of 141 leaves some stains
with an empty mask, or with the red cells in it). A small opening removes specks; the slide's
typical nucleus diameter, the median over the components larger than a platelet, sets the scale
of the rest, so the size filter follows the slide's magnification: components below 15 % of a
typical nucleus's area are dropped (platelets, debris), and touching nuclei are split at the peaks
of the smoothed distance transform (each peak at least 0.4 diameters from the next one and 0.2
diameters deep), with a watershed giving each cell its region.

These settings were chosen on the seven ALL-IDB1 slides shared with the project (their marked
blasts, and the centres of the 37 ALL-IDB2 crops cut from them) and on synthetic slides with
touching cells: no other slides were left to test them on, and the book says so where it reports
detection.

>>> from alllib.data.synthetic import synthetic_slide
>>> slide, truth = synthetic_slide([1, 0, 1], width=640, height=480, seed=3)
>>> found = find_cells(slide)
>>> len(found.cells), bool((match_cells(found.cells[["x", "y"]], truth[["x", "y"]], 40) >= 0).all())
(3, True)
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from alllib.preprocessing import check_rgb, rgb_to_lab
from alllib.segmentation import kmeans_1d

__all__ = ["CROP_SIZE", "CellsFound", "find_cells", "cut_crops", "match_cells", "MIN_CONTRAST"]

#: The side of ALL-IDB2's crops, in pixels: the window :func:`cut_crops` cuts around each cell.
CROP_SIZE = 257
#: The least difference, in A units, between the highest and the middle K-means centre for the
#: highest cluster to be stained nuclei; below it the slide shows no nucleus (an empty result).
MIN_CONTRAST = 8.0
#: Peaks of the distance transform closer than this (in nucleus diameters) are one cell.
SPLIT_DISTANCE = 0.4
#: A peak shallower than this (in diameters) is no nucleus's centre.
MIN_DEPTH = 0.2
#: A component smaller than this share of a typical nucleus's area is a platelet or debris.
MIN_AREA = 0.15


@dataclass
class CellsFound:
    """The cells :func:`find_cells` found on one slide.

    ``cells`` has one row per cell: ``x``, ``y`` (its nucleus's centre, in the slide's pixels),
    ``area`` (its nucleus region, in pixels) and ``at_border`` (the region touches the slide's edge,
    so part of the cell may be outside the photograph). ``regions`` labels each pixel with its
    cell's row number plus one (0: not a nucleus), ``diameter`` is the slide's typical nucleus
    diameter in pixels, ``threshold`` the A value the slide's clusters put between nucleus and the
    rest, and ``note`` says why nothing was found, where nothing was.
    """

    cells: pd.DataFrame
    regions: np.ndarray
    diameter: float
    threshold: float
    note: str = ""


def _disk(radius: float) -> np.ndarray:
    r = max(1, int(round(radius)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _empty(shape, diameter: float, threshold: float, note: str) -> CellsFound:
    cells = pd.DataFrame({"x": pd.Series(dtype=float), "y": pd.Series(dtype=float), "area": pd.Series(dtype=int),
                          "at_border": pd.Series(dtype=bool)})
    return CellsFound(cells, np.zeros(shape[:2], np.int32), diameter, threshold, note)


def find_cells(image: np.ndarray, *, diameter: float | None = None, seed: int = 0) -> CellsFound:
    """The white cells of a whole-slide RGB ``uint8`` image (see the module's docstring).

    Parameters
    ----------
    image : ndarray
        The slide, ``(H, W, 3)`` RGB ``uint8``.
    diameter : float, optional
        The typical nucleus diameter in pixels; by default measured on the slide.
    seed : int
        Seeds the K-means starts.

    Returns
    -------
    CellsFound
    """
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    check_rgb(image, min_size=32)
    if diameter is not None and not (np.isfinite(diameter) and diameter >= 4):
        raise ValueError(f"diameter must be a number of pixels >= 4, not {diameter!r}")
    a = rgb_to_lab(image)[..., 1]
    short = min(a.shape)
    centres, _ = kmeans_1d(a, 3, seed=seed)  # fewer than 3 where the slide has fewer A values
    threshold = float((centres[-2] + centres[-1]) / 2) if len(centres) > 1 else float(centres[0])
    contrast = float(centres[-1] - centres[-2]) if len(centres) > 1 else 0.0
    if len(centres) < 3 or contrast < MIN_CONTRAST:
        return _empty(a.shape, float(diameter or 0.0), threshold,
                      f"no stained nucleus: the slide's highest A cluster is only {contrast:.1f} A units above the "
                      f"next (at least {MIN_CONTRAST:g} for a purple nucleus on pink cells)")
    mask = (a > threshold).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _disk(short / 400))
    mask = ndi.binary_fill_holes(mask).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if diameter is None:
        large = areas[areas >= (0.02 * short) ** 2]  # larger than a platelet at any magnification
        diameter = float(np.sqrt(4 * np.median(large) / np.pi)) if len(large) else 0.07 * short
        diameter = float(np.clip(diameter, 0.04 * short, 0.15 * short))
    keep = np.isin(labels, 1 + np.flatnonzero(areas >= MIN_AREA * np.pi * (diameter / 2) ** 2))
    if not keep.any():
        return _empty(a.shape, diameter, threshold, "no nucleus as large as a quarter of a typical one")
    labels = np.where(keep, labels, 0)
    dist = cv2.distanceTransform(keep.astype(np.uint8), cv2.DIST_L2, 5)
    smooth = cv2.GaussianBlur(dist, (0, 0), 0.03 * diameter)
    peaks = peak_local_max(smooth, min_distance=max(1, int(SPLIT_DISTANCE * diameter)),
                           threshold_abs=MIN_DEPTH * diameter, labels=labels, exclude_border=False)
    without = np.setdiff1d(np.unique(labels[labels > 0]), labels[peaks[:, 0], peaks[:, 1]])
    boxes = ndi.find_objects(labels)
    deepest = []
    for i in without:  # a component with no deep peak (a thin or lobed nucleus): one cell at its deepest point
        box = boxes[i - 1]
        inside = np.where(labels[box] == i, smooth[box], -1)
        y, x = np.unravel_index(np.argmax(inside), inside.shape)
        deepest.append((box[0].start + y, box[1].start + x))
    if deepest:
        peaks = np.vstack([peaks, np.array(deepest, int)])
    peaks = peaks[np.lexsort((peaks[:, 1], peaks[:, 0]))]  # top to bottom, then left to right
    markers = np.zeros(a.shape, np.int32)
    markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, len(peaks) + 1)
    regions = watershed(-smooth, markers, mask=keep).astype(np.int32)
    border = np.zeros(len(peaks) + 1, bool)
    border[np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))] = True
    cells = pd.DataFrame({"x": peaks[:, 1].astype(float), "y": peaks[:, 0].astype(float),
                          "area": np.bincount(regions.ravel(), minlength=len(peaks) + 1)[1:],
                          "at_border": border[1:]})
    return CellsFound(cells, regions, diameter, threshold)


def cut_crops(image: np.ndarray, centres, size: int = CROP_SIZE) -> list[np.ndarray]:
    """A ``size`` x ``size`` window around each ``(x, y)`` of ``centres``, as ALL-IDB2 was cut: a
    window reaching past the slide's edge is cut short there (ALL-IDB2 holds ten such crops, one
    side 193 to 256 pixels), never padded.

    >>> slide = np.zeros((300, 400, 3), np.uint8)
    >>> [c.shape for c in cut_crops(slide, [(200, 150), (10, 290)])]
    [(257, 257, 3), (138, 139, 3)]
    """
    h, w = image.shape[:2]
    half = size // 2
    out = []
    for x, y in np.asarray(centres, float).reshape(-1, 2):
        x0, y0 = int(round(x)) - half, int(round(y)) - half
        out.append(image[max(0, y0):min(h, y0 + size), max(0, x0):min(w, x0 + size)].copy())
    return out


def match_cells(found, marked, radius: float) -> np.ndarray:
    """For each of the ``marked`` ``(x, y)`` points (a slide's ``.xyc`` blasts), the row of the nearest
    ``found`` cell within ``radius`` pixels, or -1 where none is that near.

    >>> match_cells([(10, 10), (100, 100)], [(12, 9), (50, 50)], 10).tolist()
    [0, -1]
    """
    found = np.asarray(found, float).reshape(-1, 2)
    marked = np.asarray(marked, float).reshape(-1, 2)
    if not len(found) or not len(marked):
        return np.full(len(marked), -1)
    d = np.hypot(*(marked[:, None, :] - found[None, :, :]).transpose(2, 0, 1))
    nearest = d.argmin(1)
    return np.where(d[np.arange(len(marked)), nearest] <= radius, nearest, -1)

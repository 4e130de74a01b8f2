"""Synthetic blood-smear crops in the style of ALL-IDB2, with ground-truth nucleus masks.

The book runs end to end on these where no real data is present, and the tests use them as
fixtures. Each crop shows a pinkish background, pale red cells, and one centred white cell
with a purple-stained nucleus. Blasts differ from normal cells as they do in life, but with
overlapping distributions so that no single cue separates the classes:

==========================  ======================  ======================
cue                         blast (label 1)          normal (label 0)
==========================  ======================  ======================
cell radius (x crop size)   0.20 +- 0.03             0.17 +- 0.03
nucleus / cell radius       0.86 +- 0.05             0.74 +- 0.07
chromatin                   fine, faint              coarse, clumped
nucleoli (pale spots)       70 % of cells            10 % of cells
nuclear contour             irregular, indented      smooth
==========================  ======================  ======================

Stain hue, stain strength, illumination gradient and sensor noise vary per image. Image ``i``
of a dataset depends only on ``(seed, i)``, so images are made on demand, in any order, and
the same seed always gives the same pixels.

>>> ds = make_synthetic(n=4, size=96, seed=1)
>>> ds.image(0).shape, ds.mask(0).dtype, ds.labels.tolist()
((96, 96, 3), dtype('bool'), [1, 0, 1, 0])
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import pandas as pd

from alllib.data.dataset import Dataset

__all__ = ["make_synthetic", "synthetic_smear", "CLASS_PARAMETERS", "GENERATOR_VERSION"]

#: Bumped whenever a change to the generator changes its pixels (it is part of cache keys).
GENERATOR_VERSION = 1

#: Mean and spread of each class's cues (fractions of the crop size where they are lengths).
CLASS_PARAMETERS = {
    1: {"cell_radius": (0.20, 0.03), "nc_ratio": (0.86, 0.05), "chromatin_scale": 3.0,
        "chromatin_amp": (0.10, 0.04), "nucleoli_p": 0.7, "irregularity": (0.045, 0.02)},
    0: {"cell_radius": (0.17, 0.03), "nc_ratio": (0.74, 0.07), "chromatin_scale": 9.0,
        "chromatin_amp": (0.20, 0.06), "nucleoli_p": 0.1, "irregularity": (0.015, 0.01)},
}


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy, xx


def _noise_field(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Smooth zero-mean, unit-spread noise whose features are about ``scale`` pixels wide."""
    cells = max(2, int(round(size / scale)))
    field = rng.standard_normal((cells, cells)).astype(np.float32)
    field = cv2.resize(field, (size, size), interpolation=cv2.INTER_CUBIC)
    return field / (field.std() + 1e-6)


def _blob(size: int, cy: float, cx: float, radius: float, harmonics: np.ndarray, phases: np.ndarray
          ) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """A closed blob ``r(t) = radius * (1 + sum_k a_k cos(k t + p_k))``, drawn in its bounding box.

    Returns the box (a pair of slices), the boolean mask inside it and each pixel's distance
    to the centre.
    """
    reach = radius * (1 + np.abs(harmonics).sum()) + 1
    y0, y1 = max(0, int(cy - reach)), min(size, int(cy + reach) + 2)
    x0, x1 = max(0, int(cx - reach)), min(size, int(cx + reach) + 2)
    box = (slice(y0, y1), slice(x0, x1))
    yy, xx = _grid(size)
    dy, dx = yy[box] - cy, xx[box] - cx
    rho = np.hypot(dy, dx)
    if y1 <= y0 or x1 <= x0:
        return box, np.zeros(rho.shape, bool), rho
    theta = np.arctan2(dy, dx)
    r = np.ones_like(theta)
    for k, (a, p) in enumerate(zip(harmonics, phases), start=2):
        r += a * np.cos(k * theta + p)
    return box, rho < radius * r, rho


def synthetic_smear(label: int, rng: np.random.Generator, size: int = 257) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic crop of class ``label`` (1 blast, 0 normal): ``(rgb uint8, nucleus mask)``."""
    if label not in CLASS_PARAMETERS:
        raise ValueError(f"label must be 0 or 1, not {label!r}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, not {size}")
    p = CLASS_PARAMETERS[label]
    yy, xx = _grid(size)
    # Stain and illumination of this slide region.
    stain = rng.normal(1.0, 0.03, 3).astype(np.float32)
    strength = rng.uniform(0.8, 1.15)
    background = np.array([205, 194, 196], np.float32) * rng.normal(1.0, 0.025, 3)
    img = np.empty((size, size, 3), np.float32)
    img[:] = background

    # Red blood cells: pale red discs with a lighter centre, scattered around the white cell.
    rbc_colour = np.array([196, 166, 174], np.float32)
    for _ in range(rng.integers(6, 15)):
        r = size * rng.uniform(0.08, 0.12)
        ang, dist = rng.uniform(0, 2 * np.pi), size * rng.uniform(0.18, 0.62)
        cy, cx = size / 2 + dist * np.sin(ang), size / 2 + dist * np.cos(ang)
        box, disc, rho = _blob(size, cy, cx, r, rng.normal(0, 0.03, 2), rng.uniform(0, 2 * np.pi, 2))
        pallor = np.clip(1 - rho / (0.6 * r), 0, 1)[..., None]
        colour = rbc_colour * rng.normal(1.0, 0.03, 3)
        img[box][disc] = (colour * (1 - 0.35 * pallor) + background * 0.35 * pallor)[disc]

    # The centred white cell: cytoplasm, then nucleus.
    cy, cx = size / 2 + rng.normal(0, size * 0.015, 2)
    cell_r = size * max(0.09, rng.normal(*p["cell_radius"]))
    cyto = np.zeros((size, size), bool)
    box, inside, _ = _blob(size, cy, cx, cell_r, rng.normal(0, 0.02, 3), rng.uniform(0, 2 * np.pi, 3))
    cyto[box] = inside
    cyto_colour = np.array([182, 176, 206], np.float32) * rng.normal(1.0, 0.03, 3)
    img[cyto] = cyto_colour

    nuc_r = cell_r * float(np.clip(rng.normal(*p["nc_ratio"]), 0.5, 0.97))
    irr = abs(rng.normal(*p["irregularity"]))
    ny, nx = cy + rng.normal(0, cell_r * 0.05), cx + rng.normal(0, cell_r * 0.05)
    nucleus = np.zeros((size, size), bool)
    box, inside, _ = _blob(size, ny, nx, nuc_r, rng.normal(0, irr, 4), rng.uniform(0, 2 * np.pi, 4))
    nucleus[box] = inside
    nucleus &= cyto
    chromatin = _noise_field(rng, size, p["chromatin_scale"] * size / 257)
    amp = abs(rng.normal(*p["chromatin_amp"]))
    nuc_colour = np.array([100, 55, 140], np.float32) * rng.normal(1.0, 0.05, 3)
    shade = 1 + amp * chromatin
    if rng.random() < p["nucleoli_p"]:
        for _ in range(rng.integers(1, 4)):
            a, d = rng.uniform(0, 2 * np.pi), nuc_r * rng.uniform(0, 0.5)
            ly, lx = ny + d * np.sin(a), nx + d * np.cos(a)
            box, _, rho = _blob(size, ly, lx, nuc_r * 0.4, np.zeros(0), np.zeros(0))
            shade[box] += 0.35 * np.exp(-(rho**2) / (2 * (nuc_r * 0.12) ** 2))
    img[nucleus] = (nuc_colour * shade[..., None])[nucleus]

    # Stain strength pulls colours away from white; illumination is a smooth gradient.
    img = 255 - (255 - img) * strength * stain
    grad = 1 + rng.uniform(-0.08, 0.08) * (xx / size - 0.5) + rng.uniform(-0.08, 0.08) * (yy / size - 0.5)
    img = img * grad[..., None] * rng.uniform(0.9, 1.05)
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    img += rng.normal(0, 2.5, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), nucleus


def make_synthetic(n: int = 260, *, seed: int = 0, size: int = 257) -> Dataset:
    """A balanced synthetic dataset of ``n`` crops (labels alternate 1, 0, 1, ...).

    Images are generated on demand from ``(seed, index)``; ``Dataset.mask(i)`` gives the
    ground-truth nucleus mask. Every image is its own group (no duplicates).
    """
    for name, value in (("n", n), ("seed", seed), ("size", size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    if n < 2:
        raise ValueError(f"n must be at least 2 (one image per class), not {n}")
    index = np.arange(n)
    table = pd.DataFrame(
        {
            "id": [f"syn{seed}_{i:05d}" for i in index],
            "label": (1 - index % 2).astype(int),
            "index": index,
            "height": size,
            "width": size,
        }
    )
    table["group"] = table["id"]

    def render(row: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        return synthetic_smear(int(row["label"]), np.random.default_rng([seed, int(row["index"])]), size)

    return Dataset(
        "synthetic",
        table,
        reader=lambda row: render(row)[0],
        source=f"make_synthetic(n={n}, seed={seed}, size={size})",
        mask_reader=lambda row: render(row)[1],
        keyer=lambda row: f"synthetic-v{GENERATOR_VERSION}:{seed}:{size}:{int(row['index'])}",
    )

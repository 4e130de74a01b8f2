"""Synthetic blood-smear crops in the style of ALL-IDB2, with ground-truth nucleus masks, and whole
synthetic slides in the style of ALL-IDB1, with every white cell's position.

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

__all__ = ["make_synthetic", "synthetic_smear", "slide_layout", "synthetic_slide", "make_synthetic_slides",
           "CLASS_PARAMETERS",
           "GENERATOR_VERSION"]

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


def _white_cell(img: np.ndarray, rng: np.random.Generator, p: dict, cy: float, cx: float, cell_r: float) -> np.ndarray:
    """Draw one white cell of class parameters ``p`` (cytoplasm, then nucleus, its chromatin and
    nucleoli) centred at ``(cy, cx)`` into the square float image ``img``; returns its nucleus mask."""
    size = img.shape[0]
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
    return nucleus


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
    nucleus = _white_cell(img, rng, p, cy, cx, cell_r)

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


def slide_layout(labels, *, width: int = 1024, height: int = 768, touching: int = 1, seed: int = 0,
                 crop_size: int = 257) -> pd.DataFrame:
    """Where :func:`synthetic_slide` puts its white cells, drawn from a stream of their own so that
    the truth is known without drawing a pixel: one row per entry of ``labels``, with ``x``, ``y``
    (the cell's centre), ``label``, ``radius`` and ``touching`` (the first ``touching`` pairs lie
    nucleus to nucleus, the others apart).

    >>> slide_layout([1, 0, 1], width=640, height=480, touching=1)["touching"].tolist()
    [True, True, False]
    """
    rng = np.random.default_rng([seed, width, height, len(labels), 1])
    radii = [crop_size * max(0.09, rng.normal(*CLASS_PARAMETERS[v]["cell_radius"])) for v in labels]
    centres: list[tuple[float, float]] = []
    pairs = min(touching, len(labels) // 2)
    for i, r in enumerate(radii):
        for _ in range(2000):
            if i % 2 == 1 and i // 2 < pairs:  # the second of a touching pair: beside the first, nuclei touching
                angle = rng.uniform(0, 2 * np.pi)
                d = 0.88 * (radii[i - 1] + r)
                y, x = centres[-1][0] + d * np.sin(angle), centres[-1][1] + d * np.cos(angle)
                others = centres[:-1]
            else:
                y, x = rng.uniform(r, height - r), rng.uniform(r, width - r)
                others = centres
            inside = r <= y <= height - r and r <= x <= width - r
            if inside and all(np.hypot(y - oy, x - ox) > 1.3 * (r + radii[j]) for j, (oy, ox) in enumerate(others)):
                break
        else:
            raise ValueError(f"{len(labels)} white cells do not fit on a {width}x{height} slide")
        centres.append((y, x))
    return pd.DataFrame({"x": [c[1] for c in centres], "y": [c[0] for c in centres], "label": list(labels),
                         "radius": radii, "touching": [i // 2 < pairs for i in range(len(labels))]})


def synthetic_slide(labels, *, width: int = 1024, height: int = 768, touching: int = 1, seed: int = 0,
                    crop_size: int = 257) -> tuple[np.ndarray, pd.DataFrame]:
    """A synthetic whole smear in the style of ALL-IDB1: red cells everywhere and one white cell per
    entry of ``labels`` (1 blast, 0 normal), drawn as :func:`synthetic_smear` draws its centred cell
    (sizes as in a ``crop_size`` crop); the first ``touching`` pairs of cells touch, nucleus to
    nucleus, the others lie apart. Returns the RGB ``uint8`` slide and its truth, one row per white
    cell: ``x``, ``y`` (the cell's centre), ``label``, ``touching``. The same arguments give the
    same pixels.

    >>> slide, truth = synthetic_slide([1, 0], width=512, height=384, touching=0)
    >>> slide.shape, truth["label"].tolist()
    ((384, 512, 3), [1, 0])
    """
    labels = [int(v) for v in labels]
    if any(v not in CLASS_PARAMETERS for v in labels):
        raise ValueError(f"labels must be 0 or 1, not {labels!r}")
    if min(width, height) < crop_size:
        raise ValueError(f"a slide must be at least {crop_size} pixels on each side, not {width}x{height}")
    rng = np.random.default_rng([seed, width, height, len(labels)])
    pad = crop_size // 2 + 1
    canvas_h, canvas_w = height + 2 * pad, width + 2 * pad
    background = np.array([205, 194, 196], np.float32) * rng.normal(1.0, 0.025, 3)
    img = np.empty((canvas_h, canvas_w, 3), np.float32)
    img[:] = background
    rbc_colour = np.array([196, 166, 174], np.float32)
    for _ in range(int(width * height / (crop_size * crop_size) * 10)):  # red cells, about as dense as in a crop
        r = crop_size * rng.uniform(0.08, 0.12)
        side = int(2.6 * r) | 1
        cy, cx = rng.uniform(0, canvas_h - side), rng.uniform(0, canvas_w - side)
        y0, x0 = int(cy), int(cx)
        patch = img[y0:y0 + side, x0:x0 + side]
        box, disc, rho = _blob(side, side / 2, side / 2, r, rng.normal(0, 0.03, 2), rng.uniform(0, 2 * np.pi, 2))
        pallor = np.clip(1 - rho / (0.6 * r), 0, 1)[..., None]
        colour = rbc_colour * rng.normal(1.0, 0.03, 3)
        patch[box][disc] = (colour * (1 - 0.35 * pallor) + background * 0.35 * pallor)[disc]

    truth = slide_layout(labels, width=width, height=height, touching=touching, seed=seed, crop_size=crop_size)
    pairs = int(truth["touching"].sum()) // 2
    radii, centres = truth["radius"].to_numpy(), truth[["y", "x"]].to_numpy()
    side, nuclei = 2 * pad, np.zeros(img.shape[:2], bool)
    for i, (v, r, (y, x)) in enumerate(zip(labels, radii, centres)):
        y0, x0 = int(round(y)), int(round(x))  # the patch's top-left in the canvas: the cell at its centre
        patch = img[y0:y0 + side, x0:x0 + side]
        before = patch.copy()
        nucleus = _white_cell(patch, rng, CLASS_PARAMETERS[v], y - y0 + pad, x - x0 + pad, r)
        if i % 2 == 1 and i // 2 < pairs:  # its cytoplasm leaves its partner's nucleus whole: the nuclei touch
            keep = nuclei[y0:y0 + side, x0:x0 + side] & ~nucleus
            patch[keep] = before[keep]
        nuclei[y0:y0 + side, x0:x0 + side] |= nucleus

    img = img[pad:pad + height, pad:pad + width]
    strength, stain = rng.uniform(0.8, 1.15), rng.normal(1.0, 0.03, 3).astype(np.float32)
    img = 255 - (255 - img) * strength * stain
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grad = 1 + rng.uniform(-0.08, 0.08) * (xx / width - 0.5) + rng.uniform(-0.08, 0.08) * (yy / height - 0.5)
    img = cv2.GaussianBlur(img * grad[..., None] * rng.uniform(0.9, 1.05), (0, 0), 0.8)
    img += rng.normal(0, 2.5, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), truth[["x", "y", "label", "touching"]]


def make_synthetic_slides(n: int = 6, *, seed: int = 0, width: int = 1024, height: int = 768) -> Dataset:
    """``n`` synthetic whole smears (:func:`synthetic_slide`), ALL and healthy alternately: an ALL
    slide shows five blasts and three normal white cells (one touching pair), a healthy one six
    normal cells. Rows as :func:`~alllib.data.all_idb1.load_all_idb1` gives them, with the blasts'
    centres in ``marked_points`` (what an ``.xyc`` file would hold); slides are made on demand.

    >>> ds = make_synthetic_slides(2, width=640, height=480)
    >>> ds.table[["id", "label", "marked"]].values.tolist()
    [['synslide0_000', 1, 5], ['synslide0_001', 0, 0]]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer >= 2 (one slide per class), not {n!r}")
    layouts = {1: [1, 1, 0, 1, 1, 0, 1, 0], 0: [0, 0, 0, 0, 0, 0]}
    rows = []
    for i in range(n):
        label = 1 - i % 2
        truth = slide_layout(layouts[label], width=width, height=height, seed=seed * 100_003 + i)
        blasts = truth.loc[truth["label"] == 1, ["x", "y"]].to_numpy()
        rows.append({"id": f"synslide{seed}_{i:03d}", "label": label, "width": width, "height": height,
                     "acquisition": f"{width}x{height}", "index": i, "marked": len(blasts), "marked_points": blasts})
    table = pd.DataFrame(rows)
    table["group"] = table["id"]

    def render(row: pd.Series) -> np.ndarray:
        return synthetic_slide(layouts[int(row["label"])], width=width, height=height,
                               seed=seed * 100_003 + int(row["index"]))[0]

    return Dataset("synthetic_slides", table, reader=render,
                   source=f"make_synthetic_slides(n={n}, seed={seed}, width={width}, height={height})")

"""Hand-crafted nucleus features: what a haematologist looks at, measured on the K-means mask.

A blast has a large nucleus that fills most of the cell, a fine (open) chromatin and often an
irregular outline; a mature lymphocyte has a round, dense nucleus. :func:`nucleus_features`
measures these on the largest region of the paper's K-means mask (the A channel,
:func:`~alllib.segmentation.segment_kmeans`): its size against the image and against the cell
(for pre-segmented C-NMC cells, the non-black area), its outline (circularity, solidity,
elongation, compactness), its colour in L*a*b* and the texture of its chromatin (grey-level
co-occurrence contrast, homogeneity, energy and correlation; Haralick et al. 1973).
:class:`NucleusFeaturizer` computes them for a dataset, alone or to set beside the deep features.

>>> from alllib.data import make_synthetic
>>> X = NucleusFeaturizer()(make_synthetic(4, size=96, seed=1))
>>> X.shape == (4, len(NUCLEUS_FEATURES)), bool(np.isfinite(X).all())
(True, True)
"""
from __future__ import annotations

import cv2
import numpy as np
from skimage.feature import graycomatrix, graycoprops
from tqdm import tqdm

from alllib.data import Dataset
from alllib.segmentation import segment_kmeans

__all__ = ["NUCLEUS_FEATURES", "nucleus_features", "NucleusFeaturizer"]

#: The names of :func:`nucleus_features`' values, in order.
NUCLEUS_FEATURES = ("area", "area in cell", "circularity", "solidity", "elongation", "compactness",
                    "L mean", "L spread", "a mean", "b mean", "contrast", "homogeneity", "energy", "correlation")


def nucleus_features(img: np.ndarray, *, k: int = 3, seed: int = 0, image_id=None) -> np.ndarray:
    """The :data:`NUCLEUS_FEATURES` of one RGB ``uint8`` image's nucleus (zeros where no nucleus
    is found), as float32."""
    seg = segment_kmeans(img, k=k, seed=seed, on_empty="black", image_id=image_id)
    mask = seg.mask.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n < 2:
        return np.zeros(len(NUCLEUS_FEATURES), np.float32)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    nucleus = labels == largest
    area = float(nucleus.sum())
    contour = max(cv2.findContours(nucleus.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[0],
                  key=cv2.contourArea)
    perimeter = max(cv2.arcLength(contour, True), 1.0)
    hull = max(cv2.contourArea(cv2.convexHull(contour)), 1.0)
    m = cv2.moments(nucleus.astype(np.uint8), binaryImage=True)
    cov = np.array([[m["mu20"], m["mu11"]], [m["mu11"], m["mu02"]]]) / max(m["m00"], 1.0)
    eig = np.sort(np.linalg.eigvalsh(cov))
    cell = float((img.max(axis=2) > 0).sum()) or float(img.shape[0] * img.shape[1])
    lab = seg.lab[nucleus].astype(np.float64)
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    ys, xs = np.nonzero(nucleus)
    box = (gray[ys.min():ys.max() + 1, xs.min():xs.max() + 1] // 8).astype(np.uint8)  # 32 grey levels
    box[~nucleus[ys.min():ys.max() + 1, xs.min():xs.max() + 1]] = 0
    glcm = graycomatrix(box, [1], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=32, symmetric=True, normed=True)
    texture = [float(graycoprops(glcm, p).mean()) for p in ("contrast", "homogeneity", "energy", "correlation")]
    values = [area / (img.shape[0] * img.shape[1]), area / cell, 4 * np.pi * area / perimeter ** 2, area / hull,
              float(np.sqrt(eig[1] / max(eig[0], 1e-9))), perimeter / np.sqrt(area),
              lab[:, 0].mean(), lab[:, 0].std(), lab[:, 1].mean(), lab[:, 2].mean(), *texture]
    return np.nan_to_num(np.asarray(values, np.float32))


class NucleusFeaturizer:
    """:func:`nucleus_features` of every image of a dataset, remembered per image (by its key),
    with a progress bar: a ``Dataset -> features`` callable like :class:`~alllib.features.Featurizer`."""

    def __init__(self, *, k: int = 3, seed: int = 0, progress: bool = True):
        self.k, self.seed, self.progress = k, seed, progress
        self._memo: dict[str, np.ndarray] = {}

    @property
    def description(self) -> str:
        return f"{len(NUCLEUS_FEATURES)} nucleus features (K-means mask, k={self.k})"

    @property
    def recipe(self) -> dict:
        """What defines these features (:func:`alllib.memo.recipe`)."""
        return {"NucleusFeaturizer": {"k": self.k, "seed": self.seed, "features": list(NUCLEUS_FEATURES)}}

    def __call__(self, ds: Dataset) -> np.ndarray:
        keys = [ds.image_key(i) for i in range(len(ds))]
        missing = [i for i, key in enumerate(keys) if key not in self._memo]
        for i in tqdm(missing, desc="nucleus features", unit="img", disable=not self.progress or not missing):
            self._memo[keys[i]] = nucleus_features(ds.image(i), k=self.k, seed=self.seed, image_id=ds.ids[i])
        return np.stack([self._memo[key] for key in keys]) if keys else np.zeros((0, len(NUCLEUS_FEATURES)), np.float32)

"""Augmentation and class balancing, with provenance (the paper's step 3).

The paper grows ALL-IDB2 to 750 + 750 images and balances C-NMC to 8,000 + 8,000 with
rotations (0 to 45 degrees), horizontal and vertical flips, scaling by a factor of 0.2 (a zoom
between 0.8 and 1.2, as Keras' ``zoom_range=0.2``) and brightness factors from 0.2 to 1.0 (as
Keras' ``brightness_range=[0.2, 1.0]``: pixel values multiplied by the factor).

Beyond the paper, ``Augmenter(hed=..., hue=..., saturation=...)`` also jitters the stain
(:func:`stain_jitter`, :func:`hsv_jitter`), as computational pathology does to span labs' stains.

Every augmented sample records the image it came from (``source``) and inherits its
``group``, so a split can keep all copies of one cell on one side, and a leak can be counted.
Which samples are augmented (all of them, as the paper did, or the training side only) is the
caller's choice; :mod:`alllib.learn.protocols` makes it explicit.

Augmented datasets are lazy: an augmented image is made from its source and its own seed when
it is read, so 16,000 augmented crops cost a table, not 10 GB of pixels.

>>> from alllib.data.synthetic import make_synthetic
>>> ds = make_synthetic(n=4, size=64)
>>> big = balance(ds, target_per_class=5, augmenter=Augmenter(seed=0))
>>> big.table.groupby("label").size().tolist(), int(big.table["augmented"].sum())
([5, 5], 6)
"""
from __future__ import annotations

import hashlib
import numbers
from dataclasses import dataclass, replace
from typing import Callable

import cv2
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from alllib.constraints import BOOLEAN, SEED, Interval, Options, Satisfies, validate_estimator
from alllib.data import Dataset
from alllib.preprocessing import check_rgb

__all__ = ["Augmenter", "AugmentParams", "augment_dataset", "balance", "balancing_table", "dihedral", "dihedral_views",
           "transformed", "stain_jitter", "hsv_jitter"]

_REAL = Interval(numbers.Real)
_BORDERS = {"reflect": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT, "nearest": cv2.BORDER_REPLICATE}


@dataclass(frozen=True)
class AugmentParams:
    """The random draws of one augmented copy."""

    angle: float
    hflip: bool
    vflip: bool
    zoom: float
    brightness: float
    stain: tuple = ()
    hue: float = 0.0
    saturation: float = 1.0


class Augmenter(BaseEstimator):
    """The paper's random augmentation, seeded and documented.

    Parameters
    ----------
    rotation : (low, high) degrees; each copy is rotated by an angle drawn uniformly from it.
        The paper's "0 and 45 degrees" is read as the range 0 to 45.
    hflip, vflip : flip horizontally / vertically with probability one half.
    zoom : scale factor drawn from ``[1 - zoom, 1 + zoom]`` (the paper's 0.2).
    brightness : (low, high) factor multiplying every pixel (the paper's 0.2 to 1.0).
    border : how pixels moved in from outside are filled: ``"reflect"`` (default),
        ``"nearest"``, or ``"constant"`` (black, fitting segmented images).
    hed : stain jitter in haematoxylin-eosin-DAB space (not in the paper; 0: none): each stain's
        optical density ``s`` becomes ``a * s + b`` with ``a`` drawn from ``[1 - hed, 1 + hed]`` and
        ``b`` from ``[-hed, hed]`` per image (Tellez et al. 2019, "Quantifying the effects of data
        augmentation and stain color normalization in convolutional neural networks for
        computational pathology", Medical Image Analysis 58; their "HED-light" is 0.05). Pure black
        pixels (a segmented cell's background) stay black.
    hue, saturation : HSV jitter (0: none): the hue turned by up to ``hue`` of the colour circle
        either way, the saturation multiplied by a factor from ``[1 - saturation, 1 + saturation]``.
    seed : fixes every draw of :meth:`augment_many` and of the datasets made by :func:`balance`.

    >>> Augmenter(hed=0.05, hue=0.04, saturation=0.2).sample(np.random.default_rng(0)).hue != 0
    True
    """

    def __init__(self, rotation=(0.0, 45.0), hflip: bool = True, vflip: bool = True, zoom: float = 0.2,
                 brightness=(0.2, 1.0), border: str = "reflect", hed: float = 0.0, hue: float = 0.0,
                 saturation: float = 0.0, seed: int = 0):
        self.rotation = rotation
        self.hflip = hflip
        self.vflip = vflip
        self.zoom = zoom
        self.brightness = brightness
        self.border = border
        self.hed = hed
        self.hue = hue
        self.saturation = saturation
        self.seed = seed

    _parameter_constraints = {
        "rotation": [Satisfies(lambda v: len(v) == 2 and v[0] <= v[1] and all(_REAL(x) for x in v),
                               "a pair (low, high) of degrees with low <= high", ((45, 0), 45))],
        "hflip": [BOOLEAN], "vflip": [BOOLEAN],
        "zoom": [Interval(numbers.Real, 0, 1, "left")],
        "brightness": [Satisfies(lambda v: len(v) == 2 and 0 < v[0] <= v[1] and all(_REAL(x) for x in v),
                                 "a pair (low, high) of factors with 0 < low <= high", ((0, 1), (1.0, 0.5)))],
        "border": [Options(tuple(_BORDERS))],
        "hed": [Interval(numbers.Real, 0, 1, "left")],
        "hue": [Interval(numbers.Real, 0, 0.5, "left")],
        "saturation": [Interval(numbers.Real, 0, 1, "left")],
        "seed": [SEED],
    }

    def check_params(self) -> "Augmenter":
        """Raise :class:`~alllib.errors.ParameterError` naming the first parameter not allowed."""
        return validate_estimator(self)

    def sample(self, rng: np.random.Generator) -> AugmentParams:
        """Draw the parameters of one copy (the colour jitter's only where asked, so the paper's
        augmentation draws what it always drew)."""
        self.check_params()
        params = AugmentParams(
            angle=float(rng.uniform(*self.rotation)),
            hflip=bool(self.hflip and rng.random() < 0.5),
            vflip=bool(self.vflip and rng.random() < 0.5),
            zoom=float(rng.uniform(1 - self.zoom, 1 + self.zoom)),
            brightness=float(rng.uniform(*self.brightness)),
        )
        if self.hed:
            params = replace(params, stain=tuple(rng.uniform(1 - self.hed, 1 + self.hed, 3))
                             + tuple(rng.uniform(-self.hed, self.hed, 3)))
        if self.hue or self.saturation:
            params = replace(params, hue=float(rng.uniform(-self.hue, self.hue)),
                             saturation=float(rng.uniform(1 - self.saturation, 1 + self.saturation)))
        return params

    def apply(self, img: np.ndarray, params: AugmentParams) -> np.ndarray:
        """Apply ``params`` to an RGB ``uint8`` image: one affine warp, then brightness. New array."""
        check_rgb(img, what="image to augment")
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), params.angle, params.zoom)
        if params.hflip:  # x -> (w - 1) - x after the rotation
            m[0] = -m[0]
            m[0, 2] += w - 1
        if params.vflip:
            m[1] = -m[1]
            m[1, 2] += h - 1
        out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=_BORDERS[self.border])
        if params.stain:
            out = stain_jitter(out, params.stain[:3], params.stain[3:])
        if params.hue or params.saturation != 1.0:
            out = hsv_jitter(out, params.hue, params.saturation)
        return cv2.convertScaleAbs(out, alpha=params.brightness)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(img, self.sample(rng))

    def augment_many(self, images, copies: int = 1) -> list[np.ndarray]:
        """``copies`` augmented versions of each image, in order, drawn from ``seed``."""
        rng = np.random.default_rng(self.seed)
        return [self(img, rng) for img in images for _ in range(copies)]


def stain_jitter(img: np.ndarray, scale, shift) -> np.ndarray:
    """An RGB ``uint8`` image with each stain's optical density in haematoxylin-eosin-DAB space
    (Ruifrok and Johnston's colour deconvolution, :func:`skimage.color.rgb2hed`) multiplied by
    ``scale`` and moved by ``shift`` (three numbers each); pure black pixels stay black.

    >>> img = np.full((4, 4, 3), (200, 120, 180), np.uint8)
    >>> bool((stain_jitter(img, (1, 1, 1), (0, 0, 0)).astype(int) - img).max() <= 1)
    True
    """
    from skimage.color import hed2rgb, rgb2hed

    hed = rgb2hed(img) * np.asarray(scale, float) + np.asarray(shift, float)
    out = np.clip(np.rint(hed2rgb(np.maximum(hed, 0)) * 255), 0, 255).astype(np.uint8)
    out[~img.any(axis=2)] = 0
    return out


def hsv_jitter(img: np.ndarray, hue: float, saturation: float) -> np.ndarray:
    """An RGB ``uint8`` image with its hue turned by ``hue`` of the colour circle and its
    saturation multiplied by ``saturation``."""
    hsv = cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)  # hue in degrees
    hsv[..., 0] = (hsv[..., 0] + 360 * hue) % 360
    hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 1)
    return np.clip(np.rint(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255), 0, 255).astype(np.uint8)


def _copy_seed(source: str, k: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{source}|{k}".encode()).digest()[:7], "little")


def augment_dataset(ds: Dataset, augmenter: Augmenter, copies: np.ndarray | int) -> Dataset:
    """``ds`` plus ``copies[i]`` augmented copies of its ``i``-th image (lazily made).

    The new table keeps every column of the source rows and adds ``source`` (the source image's
    id), ``augmented`` (False for originals) and ``aug_seed``; ``id`` of a copy is
    ``<source>~aug<k>``. Copy ``k`` of a source is drawn from ``(augmenter.seed, aug_seed)``,
    where ``aug_seed`` depends only on the source's id and ``k``: the same seed gives the same
    pixels, read in any order, in whichever subset of sources is augmented.
    """
    if "augmented" in ds.table.columns and ds.table["augmented"].any():
        raise ValueError("this dataset is already augmented; augment the originals instead")
    augmenter.check_params()
    copies = np.broadcast_to(np.asarray(copies, dtype=int), (len(ds),))
    if (copies < 0).any():
        raise ValueError("copies must be >= 0")
    base = ds.table.copy()
    base["source"] = base["id"]
    base["augmented"] = False
    base["aug_seed"] = -1
    reps = base.loc[base.index.repeat(copies)].copy()
    k = reps.groupby("source").cumcount()
    reps["id"] = reps["source"] + "~aug" + k.astype(str)
    reps["augmented"] = True
    # copy k of a source has the same pixels in every dataset it appears in (the whole set, a
    # training side, another fold's training side), so its features are computed only once
    reps["aug_seed"] = [_copy_seed(s, int(j)) for s, j in zip(reps["source"], k)]
    table = pd.concat([base, reps], ignore_index=True)
    base_reader, seed = ds.reader, augmenter.seed
    recipe = repr(augmenter)

    def reader(row: pd.Series) -> np.ndarray:
        img = base_reader(row)
        if not row["augmented"]:
            return img
        return augmenter(img, np.random.default_rng([seed, int(row["aug_seed"])]))

    def keyer(row: pd.Series) -> str:
        key = ds.key_of(row)
        return key if not row["augmented"] else f"{key}|{recipe}|{int(row['aug_seed'])}"

    source = f"{ds.source} + {int(copies.sum())} augmented copies ({augmenter!r})"
    return Dataset(ds.name, table, reader, source, keyer=keyer)


def balance(ds: Dataset, target_per_class: int, augmenter: Augmenter | None = None) -> Dataset:
    """Grow each class to ``target_per_class`` images with augmented copies.

    The copies of a class are spread evenly over its images (the first few get one more when
    the division is not exact). A class already larger than the target is an error: balancing
    never throws originals away.

    Parameters
    ----------
    ds : Dataset
        The originals.
    target_per_class : int
        Images per class after balancing (at least the larger class's count).
    augmenter : Augmenter, optional
        How copies are made (default: the paper's augmentation, seed 0).

    Returns
    -------
    Dataset
        The originals and their copies; each copy records its ``source`` and seed.
    """
    if isinstance(target_per_class, bool) or not isinstance(target_per_class, (int, np.integer)):
        raise TypeError(f"target_per_class must be an integer, not {type(target_per_class).__name__}")
    augmenter = augmenter or Augmenter()
    labels = ds.labels
    copies = np.zeros(len(ds), dtype=int)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        extra = target_per_class - len(idx)
        if extra < 0:
            raise ValueError(f"class {label} already has {len(idx)} images, more than target_per_class={target_per_class}")
        copies[idx] = extra // len(idx)
        copies[idx[: extra % len(idx)]] += 1
    return augment_dataset(ds, augmenter, copies)


def balancing_table(ds: Dataset) -> pd.DataFrame:
    """Originals, augmented copies and totals per class of an (augmented) dataset."""
    t = ds.table
    aug = t["augmented"] if "augmented" in t.columns else pd.Series(False, index=t.index)
    out = pd.DataFrame({
        "originals": (~aug).groupby(t["label"]).sum(),
        "augmented copies": aug.groupby(t["label"]).sum(),
    })
    out["total"] = out.sum(axis=1)
    out.index = out.index.map({1: "ALL blast (1)", 0: "not a blast (0)"})
    return out.astype(int)
def dihedral(img: np.ndarray, t: int) -> np.ndarray:
    """The ``t``-th of the eight symmetries of the square (``t`` in 0-7): ``t % 4`` quarter turns,
    then a left-right flip for ``t >= 4``. A cell has no preferred orientation, so a classifier
    should not mind."""
    if not 0 <= int(t) < 8:
        raise ValueError(f"t must be in 0-7, not {t!r}")
    out = np.rot90(img, int(t) % 4)
    return np.ascontiguousarray(out[:, ::-1] if t >= 4 else out)


def transformed(ds: Dataset, fn: Callable[[np.ndarray], np.ndarray], recipe: str) -> Dataset:
    """``ds`` with every image passed through ``fn``; ``recipe`` names the transform in each
    image's cache key (two different transforms must have different recipes)."""
    base_reader, base_key = ds.reader, ds.key_of
    return Dataset(ds.name, ds.table, lambda row: fn(base_reader(row)), f"{ds.source} | {recipe}",
                   keyer=lambda row: f"{base_key(row)}|{recipe}")


def dihedral_views(ds: Dataset) -> list[Dataset]:
    """The eight :func:`dihedral` views of every image of ``ds``, as eight datasets (view 0 is ``ds``
    itself): test-time augmentation averages a model's output over them."""
    return [ds] + [transformed(ds, lambda im, t=t: dihedral(im, t), f"dihedral:{t}") for t in range(1, 8)]

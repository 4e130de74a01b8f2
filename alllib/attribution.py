"""What the network looks at: Grad-CAM through the real SVM, occlusion, and the nucleus share.

The features are the global average of the backbone's last convolutional maps ``A`` (h x w x
c), and the classifier is ``StandardScaler`` + an RBF (or linear) SVM whose decision function
``f`` is differentiable in the features. So Grad-CAM needs no stand-in head: the gradient
``df/dx`` is computed exactly from the fitted SVM (:func:`svm_feature_gradient`), the gradient
with respect to each map cell is ``df/dx_c / (h w)``, and the class activation map is
``ReLU(sum_c (df/dx_c / (h w)) A_c)``, signed toward the predicted class
(:func:`grad_cam`). :func:`occlusion_map` is the model-agnostic check: it greys out one
patch at a time and records how much the decision moves toward the other class.

:func:`inside_share` turns a map into a number: the share of the positive attribution that
falls inside the nucleus mask. A map spread evenly over the image would score the mask's area,
so the share is read against :attr:`AttributionStudy.table`'s ``mask_area``.

>>> cam = np.zeros((4, 4)); cam[1:3, 1:3] = 1.0
>>> mask = np.zeros((4, 4), bool); mask[:2] = True
>>> inside_share(cam, mask)
0.5
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from tqdm import tqdm

from .classifiers import fit_classifier
from .data import Dataset
from .features import BACKBONES, FeatureExtractor, import_keras
from .metrics import mean_interval
from .preprocessing import BACKBONE_PREPROCESSING, imagenet_preprocess, resize
from .protocols import outer_splits
from .segmentation import segment_kmeans

__all__ = ["conv_maps", "svm_feature_gradient", "grad_cam", "upsample", "occlusion_map", "inside_share",
           "nucleus_mask", "AttributionStudy", "attribution_study", "occlusion_check", "inside_table"]


def _maps_model(extractor: FeatureExtractor):
    """The extractor's network cut before its global average pooling."""
    keras = import_keras()
    model = extractor._network()
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    if not pools:
        raise ValueError(f"{model.name} has no global average pooling: its features are not averaged maps")
    return keras.Model(model.inputs, pools[-1].input)


def _mode(extractor: FeatureExtractor) -> str:
    """The input normalisation the extractor applies: its backbone's own, or the paper's /255."""
    return BACKBONE_PREPROCESSING[extractor.backbone_] if extractor.normalisation == "backbone" else "paper"


def conv_maps(extractor: FeatureExtractor, inputs: list[np.ndarray], *, progress: bool = False) -> np.ndarray:
    """The last convolutional block's activations ``(n, h, w, c)`` for network inputs prepared
    by :meth:`FeatureExtractor.network_input`; their spatial mean is the extractor's features."""
    if not hasattr(extractor, "backbone_"):
        extractor.fit()
    model = _maps_model(extractor)
    step = extractor.batch_size
    out = [np.asarray(model.predict_on_batch(np.stack(inputs[s:s + step])), np.float32)
           for s in tqdm(range(0, len(inputs), step), desc="feature maps", unit="batch", disable=not progress)]
    return np.concatenate(out)


def svm_feature_gradient(model: Pipeline, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decision values ``f(X)`` of a fitted ``StandardScaler`` + ``SVC`` pipeline and their
    exact gradients ``df/dX`` (same shape as ``X``), for the RBF and linear kernels.

    ``f(z) = sum_i a_i K(s_i, z) + b`` on scaled features ``z``; for the RBF kernel
    ``df/dz = -2 gamma sum_i a_i K(s_i, z) (z - s_i)``, then ``df/dx = df/dz / scale``.
    """
    if not (isinstance(model, Pipeline) and isinstance(model[-1], SVC) and len(model[-1].classes_) == 2):
        raise TypeError("svm_feature_gradient needs a fitted two-class Pipeline ending in an SVC "
                        f"(as fit_classifier('svm', ...) returns), not {type(model).__name__}")
    svc = model[-1]
    scale = model[:-1]
    Z = np.asarray(scale.transform(np.asarray(X, np.float64)), np.float64)
    sv, a, b = svc.support_vectors_, svc.dual_coef_[0], float(svc.intercept_[0])
    if svc.kernel == "rbf":
        gamma = float(svc._gamma)
        sq = (Z ** 2).sum(1)[:, None] + (sv ** 2).sum(1)[None] - 2 * Z @ sv.T
        Ka = np.exp(-gamma * np.maximum(sq, 0)) * a  # (n, n_sv)
        f = Ka.sum(1) + b
        grad = -2 * gamma * (Ka.sum(1)[:, None] * Z - Ka @ sv)
    elif svc.kernel == "linear":
        w = a @ sv
        f = Z @ w + b
        grad = np.broadcast_to(w, Z.shape).copy()
    else:
        raise ValueError(f"svm_feature_gradient supports the 'rbf' and 'linear' kernels, not {svc.kernel!r}")
    steps = [step for _, step in model.steps[:-1]]
    for step in steps:
        if not hasattr(step, "scale_"):
            raise TypeError(f"cannot differentiate through {type(step).__name__}; only scalers are supported")
    denom = np.prod([np.where(step.scale_ == 0, 1, step.scale_) for step in steps], axis=0) if steps else 1.0
    return f, grad / denom


def grad_cam(maps: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM ``(n, h, w)`` from the maps ``(n, h, w, c)`` whose spatial mean is the features,
    and the gradient of the score with respect to those features ``(n, c)``: each channel is
    weighted by its mean gradient over the map (``gradient / (h w)``), summed, then ReLU."""
    n, h, w, c = maps.shape
    if gradients.shape != (n, c):
        raise ValueError(f"gradients of shape {gradients.shape} do not match maps of shape {maps.shape}")
    return np.maximum(np.einsum("nhwc,nc->nhw", maps, gradients / (h * w)), 0)


def upsample(cam: np.ndarray, size: int) -> np.ndarray:
    """A coarse map resized (bilinearly) to the ``size`` x ``size`` network input."""
    return cv2.resize(np.asarray(cam, np.float32), (size, size), interpolation=cv2.INTER_LINEAR)


def occlusion_map(score, network_input: np.ndarray, *, patch: int = 48, stride: int = 24,
                  sign: float = 1.0) -> np.ndarray:
    """How much the decision ``score`` (a function of a batch of network inputs) drops, in the
    direction ``sign`` of the predicted class, when a ``patch`` x ``patch`` square is set to 0 (the
    mean grey in every backbone's preprocessing); each pixel gets the mean drop of the patches
    that covered it. Positive: the region supported the decision."""
    h, w = network_input.shape[:2]
    if not 1 <= stride <= patch <= min(h, w):
        raise ValueError(f"need 1 <= stride <= patch <= {min(h, w)}, not patch={patch}, stride={stride}")
    starts = lambda n: sorted(set(list(range(0, n - patch + 1, stride)) + [n - patch]))  # noqa: E731
    boxes = [(y, x) for y in starts(h) for x in starts(w)]
    batch = np.repeat(network_input[None], len(boxes), axis=0)
    for k, (y, x) in enumerate(boxes):
        batch[k, y:y + patch, x:x + patch] = 0
    base = float(np.asarray(score(network_input[None]))[0])
    drops = sign * (base - np.asarray(score(batch), float))
    total, count = np.zeros((h, w)), np.zeros((h, w))
    for d, (y, x) in zip(drops, boxes):
        total[y:y + patch, x:x + patch] += d
        count[y:y + patch, x:x + patch] += 1
    return total / count


def inside_share(attribution: np.ndarray, mask: np.ndarray) -> float:
    """Share of the positive attribution that lies inside ``mask`` (NaN where there is none)."""
    pos = np.maximum(np.asarray(attribution, float), 0)
    total = pos.sum()
    return float(pos[np.asarray(mask, bool)].sum() / total) if total > 0 else float("nan")


def nucleus_mask(img: np.ndarray, size: int, *, k: int = 3, seed: int = 0, image_id=None) -> np.ndarray:
    """The paper's K-means nucleus mask of ``img``, resized (nearest) to ``size`` x ``size``, the
    geometry of the network input (the resize keeps the whole frame)."""
    mask = segment_kmeans(img, k, seed=seed, image_id=image_id).mask
    return resize(mask.astype(np.uint8), size, "nearest").astype(bool)


@dataclass
class AttributionStudy:
    """Grad-CAM of every image, each scored by an SVM that never saw it (grouped outer folds).

    ``table``: one row per image with ``id``, ``label``, ``fold``, the SVM's decision
    ``score``, ``pred``, ``correct``, ``margin`` (signed toward the true class: the most negative
    are the largest errors), ``mask_area`` and ``cam_inside`` (the Grad-CAM share inside the
    nucleus mask). ``cams`` are the coarse maps, ``pixels`` the network's view of each image
    (after segmentation, if any), ``masks`` the nucleus masks, ``models`` each fold's SVM.
    """

    table: pd.DataFrame
    cams: np.ndarray = field(repr=False)
    pixels: list = field(repr=False)
    masks: np.ndarray = field(repr=False)
    models: list = field(repr=False)
    extractor: FeatureExtractor = field(repr=False)
    description: str = ""

    def network_input(self, i: int) -> np.ndarray:
        """The ``i``-th image as the network saw it (segmented, resized and normalised)."""
        return imagenet_preprocess(self.pixels[i], _mode(self.extractor))

    def cam(self, i: int) -> np.ndarray:
        """The ``i``-th image's Grad-CAM at the network input's size."""
        return upsample(self.cams[i], self.extractor.size)

    def occlusion(self, i: int, *, patch: int = 48, stride: int = 24) -> np.ndarray:
        """Occlusion sensitivity of the ``i``-th image under the SVM of its own test fold."""
        model = self.models[int(self.table["fold"].iloc[i])]
        score = lambda batch: model.decision_function(self.extractor.embed(list(batch)))  # noqa: E731
        sign = 1.0 if self.table["pred"].iloc[i] == model[-1].classes_[1] else -1.0
        return occlusion_map(score, self.network_input(i), patch=patch, stride=stride, sign=sign)

    def pick(self, n: int = 4) -> dict[str, list[int]]:
        """The run's own choice of cells to show: the ``n`` most confident correct decisions and the
        ``n`` largest errors (most negative margins)."""
        order = self.table.sort_values("margin")
        wrong = order[~order["correct"]].index[:n].tolist()
        right = order[order["correct"]].index[::-1][:n].tolist()
        return {"largest errors": wrong, "most confident correct": right}


def attribution_study(ds: Dataset, extractor: FeatureExtractor, *, n_splits: int = 5, search: str = "small",
                      seed: int = 0, mask_k: int = 3, progress: bool = True) -> AttributionStudy:
    """Grad-CAM through the real SVM for every image of ``ds``, with grouped outer folds.

    The images are split by ``ds.groups`` (slide or subject) into ``n_splits`` folds (fewer
    where a class has fewer groups); each fold's SVM is fitted (and tuned with ``search``, by
    grouped inner CV) on the other folds' features only, and explains its own test images.
    The features are the spatial means of the same maps Grad-CAM weighs, so both come from one
    pass through the network.
    """
    if not hasattr(extractor, "backbone_"):
        extractor.fit()
    y, groups, ids = ds.labels, ds.groups, ds.ids
    pixels, masks = [], []
    truth = ds.mask_reader is not None  # synthetic smears know their nuclei
    for i in tqdm(range(len(ds)), desc="images and nucleus masks", unit="img", disable=not progress):
        img = ds.image(i)
        pixels.append(extractor.transform_.pixels(img, image_id=ids[i]))
        masks.append(resize(ds.mask(i).astype(np.uint8), extractor.size, "nearest").astype(bool) if truth
                     else nucleus_mask(img, extractor.size, k=mask_k, seed=seed, image_id=ids[i]))
    maps = conv_maps(extractor, [imagenet_preprocess(p, _mode(extractor)) for p in pixels], progress=progress)
    X = maps.mean(axis=(1, 2))
    folds = StratifiedGroupKFold(outer_splits(y, groups, n_splits), shuffle=True, random_state=seed)
    cams = np.zeros(maps.shape[:3], np.float32)
    score, fold_of, models = np.zeros(len(ds)), np.zeros(len(ds), int), []
    for fold, (train, test) in enumerate(folds.split(X, y, groups)):
        model, _ = fit_classifier("svm", X[train], y[train], groups=groups[train], search=search, cv_splits=3,
                                  seed=seed + fold)
        f, grad = svm_feature_gradient(model, X[test])
        cams[test] = grad_cam(maps[test], grad * np.where(f >= 0, 1.0, -1.0)[:, None])
        score[test], fold_of[test] = f, fold
        models.append(model)
    masks = np.stack(masks)
    pred = np.where(score >= 0, 1, 0)
    table = pd.DataFrame({"id": ids, "label": y, "group": groups, "fold": fold_of, "score": score, "pred": pred,
                          "correct": pred == y, "margin": score * np.where(y == 1, 1, -1),
                          "mask_area": masks.mean(axis=(1, 2)),
                          "cam_inside": [inside_share(upsample(c, extractor.size), m) for c, m in zip(cams, masks)]})
    seg = extractor.segmentation
    description = (f"{BACKBONES[extractor.backbone_].label} features, "
                   f"{'K-means segmentation' if seg else 'no segmentation'}, SVM, {len(models)} grouped folds; "
                   f"nucleus masks: {'the ground truth' if truth else 'K-means on A'}")
    return AttributionStudy(table, cams, pixels, masks, models, extractor, description)


def occlusion_check(study: AttributionStudy, indices: list[int], *, patch: int = 48,
                    stride: int = 24) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """Occlusion sensitivity of the cells at ``indices``, beside their Grad-CAM: the share of each
    map inside the nucleus mask and the Spearman rank correlation of the two maps (1: they rank
    the pixels alike). Returns the table and the maps."""
    from scipy.stats import spearmanr

    rows, maps = [], {}
    for i in indices:
        occ = maps[i] = study.occlusion(i, patch=patch, stride=stride)
        cam = study.cam(i)
        r = study.table.iloc[i]
        flat = cam.std() == 0 or occ.std() == 0  # an empty map ranks nothing
        rows.append({"id": r["id"], "label": int(r["label"]), "correct": bool(r["correct"]),
                     "nucleus area": r["mask_area"], "Grad-CAM inside": r["cam_inside"],
                     "occlusion inside": inside_share(occ, study.masks[i]),
                     "rank correlation": np.nan if flat else float(spearmanr(cam.ravel(), occ.ravel()).statistic)})
    return pd.DataFrame(rows).set_index("id"), maps


def inside_table(studies: dict[str, AttributionStudy], class_names: dict[int, str] | None = None) -> pd.DataFrame:
    """Per study and class: cells, the mean nucleus-mask area (what an even map would score), the
    mean Grad-CAM share inside the mask with its 95 % interval, and their ratio (above 1: the map
    concentrates on the nucleus). Cells without a usable mask or map are left out."""
    class_names = class_names or {1: "ALL blast", 0: "not a blast"}
    rows = []
    for name, study in studies.items():
        t = study.table.dropna(subset=["cam_inside"])
        t = t[(t["mask_area"] > 0) & (t["mask_area"] < 1)]
        for label in sorted(t["label"].unique(), reverse=True):
            part = t[t["label"] == label]
            mean, lo, hi = mean_interval(part["cam_inside"])
            rows.append({"setting": name, "class": class_names.get(int(label), str(label)), "cells": len(part),
                         "nucleus area": part["mask_area"].mean(), "Grad-CAM inside": mean,
                         "inside 95% low": lo, "inside 95% high": hi,
                         "ratio": mean / part["mask_area"].mean()})
    return pd.DataFrame(rows).set_index(["setting", "class"])

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
so the share is read against the mask's area (:class:`alllib.book.studies.AttributionStudy`).

>>> cam = np.zeros((4, 4)); cam[1:3, 1:3] = 1.0
>>> mask = np.zeros((4, 4), bool); mask[:2] = True
>>> inside_share(cam, mask)
0.5
"""
from __future__ import annotations

import cv2
import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from tqdm import tqdm

from alllib.features import FeatureExtractor, import_keras
from alllib.preprocessing import BACKBONE_PREPROCESSING, resize
from alllib.segmentation import segment_kmeans

__all__ = ["conv_maps", "svm_feature_gradient", "grad_cam", "upsample", "occlusion_map", "inside_share",
           "nucleus_mask", "network_mode"]


def _maps_model(extractor: FeatureExtractor):
    """The extractor's network cut before its global average pooling."""
    keras = import_keras()
    model = extractor._network()
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    if not pools:
        raise ValueError(f"{model.name} has no global average pooling: its features are not averaged maps")
    return keras.Model(model.inputs, pools[-1].input)


def network_mode(extractor: FeatureExtractor) -> str:
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



"""What the network looks at: Grad-CAM through the real SVM, occlusion, and the nucleus share.

The features are the global average of the backbone's last convolutional maps ``A`` (h x w x
c), and the classifier is ``StandardScaler`` + an RBF (or linear) SVM whose decision function
``f`` is differentiable in the features. So Grad-CAM needs no stand-in head: the gradient
``df/dx`` is computed exactly from the fitted SVM (:func:`svm_feature_gradient`), the gradient
with respect to each map cell is ``df/dx_c / (h w)``, and the class activation map is
``ReLU(sum_c (df/dx_c / (h w)) A_c)``, signed toward the predicted class
(:func:`grad_cam`); :func:`grad_cam_at` does the same at any layer (e.g. :func:`finer_layer`),
through the network by one backward pass. :func:`integrated_gradients` follows the decision pixel by
pixel from a baseline. :func:`occlusion_map` covers one patch at a time (with a fill drawn from the
image itself: :func:`blurred_fill`) and records how much a score moves toward the other class: the
SVM's decision, or :func:`svm_evidence`, the share of the kernel's votes for the class, which a
patch that only makes the image atypical (every kernel similarity shrinking alike) leaves unchanged.
:func:`rise_map` weighs hundreds of random masks by the score each leaves.

A map earns a reading only if it passes sanity checks (:func:`cell_map_checks`, judged by
:func:`sanity_table`): it must change under randomised weights (:func:`permuted_svm`) and
randomised labels (:func:`label_randomised_svm`) more than under another way of computing it, and
beat :func:`random_smooth_map` in :func:`deletion_insertion` whatever the fill (:data:`FILLS`); the
book runs them in :func:`alllib.book.studies.sanity_checks` before it reads any map.

:func:`inside_share` turns a map into a number: the share of the positive attribution that
falls inside the nucleus mask. A map spread evenly over the image would score the mask's area,
so the share is read against the mask's area (:class:`alllib.book.studies.AttributionStudy`).

>>> cam = np.zeros((4, 4)); cam[1:3, 1:3] = 1.0
>>> mask = np.zeros((4, 4), bool); mask[:2] = True
>>> inside_share(cam, mask)
0.5
"""
from __future__ import annotations

import weakref

import cv2
import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from tqdm import tqdm

from alllib.features import FeatureExtractor, import_keras
from alllib.features.keras import forward
from alllib.preprocessing import BACKBONE_PREPROCESSING, resize
from alllib.segmentation import segment_kmeans

__all__ = ["conv_maps", "svm_feature_gradient", "grad_cam", "upsample", "occlusion_map", "inside_share",
           "nucleus_mask", "network_mode", "blurred_fill", "svm_evidence", "permuted_svm", "random_smooth_map",
           "deletion_insertion", "map_similarity", "integrated_gradients", "finer_layer", "grad_cam_at", "rise_map",
           "label_randomised_svm", "mean_fill", "FILLS", "cell_map_checks", "sanity_table"]


_MAPS_MODELS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _maps_model(extractor: FeatureExtractor):
    """The extractor's network cut before its global average pooling (made once per network)."""
    keras = import_keras()
    model = extractor._network()
    if model not in _MAPS_MODELS:
        pools = [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
        if not pools:
            raise ValueError(f"{model.name} has no global average pooling: its features are not averaged maps")
        _MAPS_MODELS[model] = keras.Model(model.inputs, pools[-1].input)
    return _MAPS_MODELS[model]


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
    out = [forward(model, np.stack(inputs[s:s + step]))
           for s in tqdm(range(0, len(inputs), step), desc="feature maps", unit="batch", disable=not progress)]
    return np.concatenate(out)


def _rbf_kernel(Z: np.ndarray, sv: np.ndarray, gamma: float) -> np.ndarray:
    """``exp(-gamma |z - s|^2)`` between the rows of ``Z`` and the support vectors ``sv``."""
    sq = (Z ** 2).sum(1)[:, None] + (sv ** 2).sum(1)[None] - 2 * Z @ sv.T
    return np.exp(-gamma * np.maximum(sq, 0))


def svm_feature_gradient(model: Pipeline, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decision values ``f(X)`` of a fitted ``StandardScaler`` + ``SVC`` pipeline and their
    exact gradients ``df/dX`` (same shape as ``X``), for the RBF, linear and polynomial kernels
    (the paper's grid holds RBF and polynomial ones).

    ``f(z) = sum_i a_i K(s_i, z) + b`` on scaled features ``z``; for the RBF kernel
    ``df/dz = -2 gamma sum_i a_i K(s_i, z) (z - s_i)``, for the polynomial one
    ``df/dz = sum_i a_i d gamma (gamma z.s_i + c)^(d - 1) s_i``, then ``df/dx = df/dz / scale``.
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
        Ka = _rbf_kernel(Z, sv, gamma) * a  # (n, n_sv)
        f = Ka.sum(1) + b
        grad = -2 * gamma * (Ka.sum(1)[:, None] * Z - Ka @ sv)
    elif svc.kernel == "linear":
        w = a @ sv
        f = Z @ w + b
        grad = np.broadcast_to(w, Z.shape).copy()
    elif svc.kernel == "poly":  # K = (gamma z.s + coef0)^degree, in the paper's grid
        gamma, c0, d = float(svc._gamma), float(svc.coef0), int(svc.degree)
        inner = gamma * Z @ sv.T + c0
        f = (inner ** d) @ a + b
        grad = (d * gamma * (inner ** (d - 1)) * a) @ sv
    else:
        raise ValueError(f"svm_feature_gradient supports the 'rbf', 'linear' and 'poly' kernels, not {svc.kernel!r}")
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    chain = np.ones(Z.shape[1])  # dz/dx through the scalers: StandardScaler divides by scale_, MinMaxScaler multiplies
    for _, step in model.steps[:-1]:
        if isinstance(step, StandardScaler):
            chain = chain / (np.where(step.scale_ == 0, 1, step.scale_) if step.scale_ is not None else 1.0)
        elif isinstance(step, MinMaxScaler):
            chain = chain * step.scale_
        else:
            raise TypeError(f"cannot differentiate through {type(step).__name__}; only StandardScaler and "
                            "MinMaxScaler are supported")
    return f, grad * chain


def grad_cam(maps: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM ``(n, h, w)`` from the maps ``(n, h, w, c)`` whose spatial mean is the features,
    and the gradient of the score with respect to those features ``(n, c)``: each channel is
    weighted by its mean gradient over the map (``gradient / (h w)``), summed, then ReLU."""
    n, h, w, c = maps.shape
    if gradients.shape != (n, c):
        raise ValueError(f"gradients of shape {gradients.shape} do not match maps of shape {maps.shape}")
    return np.maximum(np.einsum("nhwc,nc->nhw", maps, gradients / (h * w)), 0)


def finer_layer(extractor: FeatureExtractor) -> str:
    """The name of the network's last layer whose maps have twice the side of the last convolutional
    maps (14 x 14 where those are 7 x 7): the neighbouring, finer layer :func:`grad_cam_at` reads."""
    if not hasattr(extractor, "backbone_"):
        extractor.fit()
    side = _maps_model(extractor).output.shape[1]
    finer = [layer.name for layer in extractor._network().layers
             if len(getattr(layer, "output", np.zeros(0)).shape) == 4 and layer.output.shape[1] == 2 * side]
    if not finer:
        raise ValueError(f"{extractor.backbone_} has no layer with maps of side {2 * side}")
    return finer[-1]


def grad_cam_at(extractor: FeatureExtractor, model: Pipeline, network_input: np.ndarray, *, layer: str,
                sign: float = 1.0) -> np.ndarray:
    """Grad-CAM of the SVM's decision at any layer of the network (e.g. :func:`finer_layer`), for one
    network input: the gradient of ``f`` with respect to the layer's maps ``A`` is ``J^T df/dx``
    (``df/dx`` from :func:`svm_feature_gradient`, ``J^T`` one backward pass), each channel is weighted
    by its mean gradient and the weighted sum is signed by ``sign`` and cut by ReLU. At the last
    convolutional layer it equals :func:`grad_cam`. Returns the coarse ``(h, w)`` map."""
    import tensorflow as tf

    keras = import_keras()
    if not hasattr(extractor, "backbone_"):
        extractor.fit()
    network = extractor._network()
    both = keras.Model(network.inputs, [network.get_layer(layer).output, network.output])
    with tf.GradientTape() as tape:
        maps, feats = both(tf.constant(network_input[None], tf.float32), training=False)
        _, g = svm_feature_gradient(model, np.asarray(feats, np.float64))
        pushed = tf.reduce_sum(feats * tf.constant(sign * g, feats.dtype))
    weights = np.asarray(tape.gradient(pushed, maps), np.float64)[0].mean(axis=(0, 1))
    return np.maximum(np.asarray(maps, np.float64)[0] @ weights, 0)


def upsample(cam: np.ndarray, size: int) -> np.ndarray:
    """A coarse map resized (bilinearly) to the ``size`` x ``size`` network input."""
    return cv2.resize(np.asarray(cam, np.float32), (size, size), interpolation=cv2.INTER_LINEAR)


def occlusion_map(score, network_input: np.ndarray, *, patch: int = 48, stride: int = 24,
                  sign: float = 1.0, fill: np.ndarray | None = None) -> np.ndarray:
    """How much ``score`` (a function of a batch of network inputs) drops, in the direction
    ``sign`` of the predicted class, when a ``patch`` x ``patch`` square is replaced by ``fill`` (an
    array like ``network_input``, e.g. :func:`blurred_fill`; ``None``: zeros, which is mid-grey
    for the ``lite`` and ``tf`` preprocessing, the ImageNet mean for ``torch`` and ``caffe``, and
    black for the paper's ``/255``); each pixel gets the mean drop of the patches that covered it.
    Positive: the region supported the decision. ``score`` may return several scores per image
    (``(n, k)``): the map is then ``(h, w, k)``, one per score, from the same occluded images."""
    h, w = network_input.shape[:2]
    if not 1 <= stride <= patch <= min(h, w):
        raise ValueError(f"need 1 <= stride <= patch <= {min(h, w)}, not patch={patch}, stride={stride}")
    fill = np.zeros_like(network_input) if fill is None else fill
    starts = lambda n: sorted(set(list(range(0, n - patch + 1, stride)) + [n - patch]))  # noqa: E731
    boxes = [(y, x) for y in starts(h) for x in starts(w)]
    batch = np.repeat(network_input[None], len(boxes), axis=0)
    for k, (y, x) in enumerate(boxes):
        batch[k, y:y + patch, x:x + patch] = fill[y:y + patch, x:x + patch]
    base = np.asarray(score(network_input[None]), float)[0]
    drops = sign * (base - np.asarray(score(batch), float))
    total, count = np.zeros((h, w, *drops.shape[1:])), np.zeros((h, w, *drops.shape[1:]))
    for d, (y, x) in zip(drops, boxes):
        total[y:y + patch, x:x + patch] += d
        count[y:y + patch, x:x + patch] += 1
    return total / count


def integrated_gradients(extractor: FeatureExtractor, model: Pipeline, network_input: np.ndarray, *,
                         baseline: np.ndarray, steps: int = 16, sign: float = 1.0) -> np.ndarray:
    """Integrated Gradients (Sundararajan, Taly and Yan 2017, "Axiomatic attribution for deep
    networks", ICML) of the SVM's decision, through the frozen network, pixel by pixel: the
    gradient of ``f`` with respect to the input, averaged along the straight path from
    ``baseline`` (e.g. :func:`blurred_fill`) to the image at ``steps`` points, times the
    difference from the baseline, summed over the colour channels and signed by ``sign`` toward
    the class chosen. At each point the chain rule runs through the features exactly:
    ``df/dinput = J^T df/dx``, with ``df/dx`` from :func:`svm_feature_gradient` and ``J^T v`` from
    one backward pass of the network. Its values sum to about ``sign (f(image) - f(baseline))``."""
    import tensorflow as tf

    if not hasattr(extractor, "backbone_"):
        extractor.fit()
    network = extractor._network()
    alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps  # midpoints of the path
    path = tf.constant(baseline[None] + alphas[:, None, None, None] * (network_input - baseline)[None], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(path)
        feats = network(path, training=False)
        _, g = svm_feature_gradient(model, np.asarray(feats, np.float64))
        pushed = tf.reduce_sum(feats * tf.constant(g, feats.dtype))
    grads = np.asarray(tape.gradient(pushed, path), np.float64).mean(axis=0)
    return sign * (grads * (network_input - baseline)).sum(axis=-1)


def blurred_fill(network_input: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """The fill :func:`occlusion_map` and :func:`deletion_insertion` put in place of removed pixels:
    the image itself blurred (Gaussian, ``sigma`` default a sixteenth of its side), so that what is
    removed is the detail, not the colour (a grey or black square is itself a strong, unnatural
    feature; Petsiuk et al. 2018 use a blurred image for insertion)."""
    sigma = sigma or network_input.shape[0] / 16
    return cv2.GaussianBlur(np.asarray(network_input, np.float32), (0, 0), sigma)


def svm_evidence(model: Pipeline, X: np.ndarray) -> np.ndarray:
    """The share of an RBF SVM's kernel votes that go to the positive class, from -1 to 1:
    ``sum_i a_i K(s_i, z) / sum_i |a_i| K(s_i, z)`` (the decision value without its intercept,
    relative to the image's total kernel similarity to the support vectors). Where an occlusion
    only makes the image atypical, every similarity shrinks and the decision drifts toward the
    intercept, but this share stays: so an occlusion map of it measures evidence for the class,
    not atypicality. For other kernels (linear, polynomial: their values may be negative, so the
    share means nothing) it is the decision value."""
    svc = model[-1]
    if svc.kernel != "rbf":
        return model.decision_function(X)
    Z = np.asarray(model[:-1].transform(np.asarray(X, np.float64)), np.float64)
    sv, a = svc.support_vectors_, svc.dual_coef_[0]
    K = _rbf_kernel(Z, sv, float(svc._gamma))
    return (K @ a) / np.maximum(K @ np.abs(a), 1e-300)


def permuted_svm(model: Pipeline, seed: int = 0) -> Pipeline:
    """A copy of a fitted scaler + SVC pipeline whose dual coefficients are shuffled among its
    support vectors: the same kernel, scaler and intercept, the learnt weights randomised (the
    model-randomisation test of Adebayo et al. 2018, "Sanity checks for saliency maps", NeurIPS:
    a map that barely changes under it does not depend on what the model learnt)."""
    import copy

    out = copy.deepcopy(model)
    svc = out[-1]
    order = np.random.default_rng(seed).permutation(svc.dual_coef_.shape[1])
    svc.dual_coef_ = np.ascontiguousarray(svc.dual_coef_[:, order])
    svc._dual_coef_ = -svc.dual_coef_  # libsvm's own sign for two classes
    return out


def label_randomised_svm(model: Pipeline, X: np.ndarray, y: np.ndarray, seed: int = 0) -> Pipeline:
    """A copy of ``model`` (its hyperparameters, not its fit) fitted again on the training features
    ``X`` with the labels ``y`` shuffled: the data-randomisation test of Adebayo et al. 2018. A map
    that stays the same when the model has learnt nothing true does not explain what it learnt."""
    from sklearn.base import clone

    return clone(model).fit(X, np.random.default_rng(seed).permutation(np.asarray(y)))


def rise_map(score, network_input: np.ndarray, *, masks: int = 256, cells: int = 7, keep: float = 0.5,
             fill: np.ndarray | None = None, sign: float = 1.0, seed: int = 0, batch: int = 32) -> np.ndarray:
    """RISE (Petsiuk, Das and Saenko 2018, "RISE: randomized input sampling for explanation of
    black-box models", BMVC): ``masks`` random masks, each a ``cells`` x ``cells`` grid of cells
    kept with probability ``keep``, upsampled bilinearly and shifted at random, blend the image
    with ``fill`` (``None``: zeros); each pixel's saliency is ``sign`` times the mean score of the
    masked images weighted by how much of the pixel each kept, ``E[score M] / keep``. Like
    :func:`occlusion_map`, ``score`` may return ``(n, k)``: the map is then ``(h, w, k)``. Memory
    stays at ``batch`` images; ``seed`` fixes the masks.

    >>> x = np.zeros((16, 16, 3), np.float32); x[:4, :4] = 1
    >>> m = rise_map(lambda b: b[:, :4, :4].mean(axis=(1, 2, 3)), x, masks=64, cells=4)
    >>> bool(m[:4, :4].mean() > m[8:, 8:].mean())
    True
    """
    h, w = network_input.shape[:2]
    if masks < 1 or cells < 1 or not 0 < keep < 1:
        raise ValueError(f"need masks >= 1, cells >= 1 and 0 < keep < 1, not {masks}, {cells}, {keep}")
    fill = np.zeros_like(network_input) if fill is None else fill
    rng = np.random.default_rng(seed)
    cell_h, cell_w = -(-h // cells), -(-w // cells)
    grids = (rng.random((masks, cells, cells)) < keep).astype(np.float32)  # drawn at once: the batch size
    shifts = rng.integers(0, [cell_h, cell_w], size=(masks, 2))  # changes nothing
    total = None
    for start in range(0, masks, batch):
        m = np.stack([cv2.resize(g, ((cells + 1) * cell_w, (cells + 1) * cell_h), interpolation=cv2.INTER_LINEAR)
                      [dy:dy + h, dx:dx + w]
                      for g, (dy, dx) in zip(grids[start:start + batch], shifts[start:start + batch])])
        blended = m[..., None] * network_input[None] + (1 - m[..., None]) * fill[None]
        s = sign * np.asarray(score(blended.astype(network_input.dtype)), float)
        part = np.tensordot(m, s, axes=(0, 0))  # (h, w) or (h, w, k)
        total = part if total is None else total + part
    return total / (masks * keep)


def random_smooth_map(size: int, rng: np.random.Generator, cells: int = 7) -> np.ndarray:
    """A random map as smooth as a Grad-CAM of ``cells`` x ``cells`` positions, upsampled to
    ``size`` x ``size``: the baseline a map must beat in :func:`deletion_insertion`."""
    return upsample(rng.random((cells, cells)), size)


def mean_fill(network_input: np.ndarray) -> np.ndarray:
    """A second fill for :func:`deletion_insertion`, unlike :func:`blurred_fill`: every pixel the
    image's mean colour. Occlusion and RISE are made with the blurred fill, so a map scored with
    that fill alone is scored on its own terms; scored with this one as well, it must hold when
    what replaces the pixels changes."""
    x = np.asarray(network_input, np.float32)
    return np.broadcast_to(x.reshape(-1, x.shape[-1]).mean(axis=0), x.shape).copy()


#: The fills every map is scored with in :func:`cell_map_checks` (both must agree).
FILLS = {"blurred": blurred_fill, "mean colour": mean_fill}


def cell_map_checks(maps: dict, variants: dict, heads, network_input: np.ndarray, *, sign: float,
                    random_map: np.ndarray, steps: int = 16) -> list[dict]:
    """The sanity checks of one cell's maps (Adebayo et al. 2018; Petsiuk et al. 2018), one dict
    per map kind:

    * ``weights rho`` and ``labels rho``: the Spearman correlation of the map under the model
      (``maps[kind]["model"]``) with the same kind of map under the model with its learnt weights
      shuffled (``"weights"``) and under a model fitted on shuffled labels (``"labels"``);
    * ``consistency rho``: the map against ``variants[kind]``, the same model explained another
      way that should agree (RISE: its two halves of masks, ``maps[kind]["first half"]`` against
      the variant); NaN where there is no variant. A map that depends on the model agrees with
      its own variant more than with the randomised models' maps;
    * ``deletion`` / ``insertion`` and the same areas of ``random_map``, with each fill of
      :data:`FILLS` (columns suffixed `` (blurred)``, `` (mean colour)``), on the score the map
      explains: ``heads(batch)`` gives ``(n, k)`` scores, the decision in column 0 and the
      evidence in column 1 (maps whose kind ends in "evidence"), signed by ``sign``;
    * ``empty``: no positive attribution.
    """
    x = network_input
    random_curves = {name: deletion_insertion(lambda b: heads(b)[:, :2], x, random_map, fill=make(x), steps=steps,
                                              sign=sign) for name, make in FILLS.items()}  # both heads at once
    out = []
    for kind, by_model in maps.items():
        head = 1 if kind.endswith("evidence") else 0
        m = by_model["model"]
        row = {"map": kind, "weights rho": map_similarity(m, by_model["weights"]),
               "labels rho": map_similarity(m, by_model["labels"]),
               "consistency rho": (map_similarity(by_model.get("first half", m), variants[kind])
                                   if kind in variants else np.nan),
               "empty": bool(np.maximum(m, 0).sum() == 0)}
        for name, make in FILLS.items():
            deletion, insertion = deletion_insertion(lambda b, h=head: heads(b)[:, h], x, m, fill=make(x),
                                                     steps=steps, sign=sign)
            row.update({f"deletion ({name})": deletion, f"random deletion ({name})": float(random_curves[name][0][head]),
                        f"insertion ({name})": insertion,
                        f"random insertion ({name})": float(random_curves[name][1][head])})
        out.append(row)
    return out


def sanity_table(checks, *, alpha: float = 0.05):
    """Pass or fail per map kind, from rows of :func:`cell_map_checks` (one per cell and kind), by
    paired one-sided Wilcoxon signed-rank tests over the cells at ``alpha`` (the cell sample's
    uncertainty):

    * **randomisation**: the map agrees with its own variant more than with the map under the
      shuffled weights, and more than with the map under the shuffled labels (``consistency rho``
      against ``|weights rho|`` and ``|labels rho|``, cell by cell). A map that ignores the model,
      such as a centred blob, is as like its randomised maps as its variant and fails; without a
      variant the check is "not measured" and the map is not read;
    * **deletion** / **insertion**: the map beats the random smooth map (a lower deletion area, a
      higher insertion area) with **every** fill of :data:`FILLS`. An inverted map fails.

    ``reads`` is True only where all three pass. ``empty`` counts the maps with no positive
    attribution. Returns a ``pandas.DataFrame`` indexed by map kind."""
    import pandas as pd
    from scipy.stats import wilcoxon

    def paired_p(gain) -> float:
        gain = pd.Series(gain).dropna()
        if len(gain) < 2 or (gain == 0).all():
            return float("nan")
        return float(wilcoxon(gain, alternative="greater").pvalue)

    def passes(*ps) -> str:
        return "pass" if all(p < alpha for p in ps) else "fail"

    def median(column) -> float:
        return float(column.median()) if column.notna().any() else np.nan

    rows = []
    for kind, part in checks.groupby("map", sort=False):
        row = {"map": kind, "cells": len(part), "empty": int(part["empty"].sum()),
               "weights randomised |rho|": median(part["weights rho"].abs()),
               "labels randomised |rho|": median(part["labels rho"].abs()),
               "consistency rho": median(part["consistency rho"])}
        consistency = part["consistency rho"]
        p_w, p_l = paired_p(consistency - part["weights rho"].abs()), paired_p(consistency - part["labels rho"].abs())
        row.update({"randomisation p (weights)": p_w, "randomisation p (labels)": p_l,
                    "randomisation": "not measured" if consistency.isna().all() else passes(p_w, p_l)})
        for curve, gain in (("deletion", lambda f: part[f"random deletion ({f})"] - part[f"deletion ({f})"]),
                            ("insertion", lambda f: part[f"insertion ({f})"] - part[f"random insertion ({f})"])):
            ps = []
            for fill in FILLS:
                g = gain(fill)
                ps.append(paired_p(g))
                row.update({f"beats random in {curve} ({fill})": f"{int((g > 0).sum())}/{len(part)}",
                            f"{curve} p ({fill})": ps[-1]})
            row[curve] = passes(*ps)
        row["reads"] = all(row[c] == "pass" for c in ("randomisation", "deletion", "insertion"))
        rows.append(row)
    return pd.DataFrame(rows).set_index("map")


def deletion_insertion(score, network_input: np.ndarray, saliency: np.ndarray, *, fill: np.ndarray,
                       steps: int = 16, sign: float = 1.0) -> tuple[float, float]:
    """Petsiuk et al. 2018 (RISE, BMVC): the areas under the deletion and insertion curves of a
    map. Deletion replaces the pixels by ``fill`` from the most salient down, in ``steps`` equal
    parts; insertion starts from ``fill`` and puts the image's pixels back in the same order. The
    curve is ``sign * score`` after each part (``score``: a batch of network inputs -> one value
    each, or ``k`` values each: then both areas are arrays of ``k``, from the same images); the area
    is its mean over the ``steps + 1`` points. A good map makes the deletion area low (the score
    falls fast) and the insertion area high."""
    h, w = network_input.shape[:2]
    order = np.argsort(-np.asarray(saliency, float).ravel(), kind="stable")
    cuts = np.linspace(0, h * w, steps + 1).round().astype(int)
    deleted, inserted = [], []
    for c in cuts:
        top = np.zeros(h * w, bool)
        top[order[:c]] = True
        top = top.reshape(h, w)[..., None]
        deleted.append(np.where(top, fill, network_input))
        inserted.append(np.where(top, network_input, fill))
    values = sign * np.asarray(score(np.stack(deleted + inserted)), float)
    deletion, insertion = values[:steps + 1].mean(axis=0), values[steps + 1:].mean(axis=0)
    return (float(deletion), float(insertion)) if values.ndim == 1 else (deletion, insertion)


def map_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps' pixels (NaN where either is flat: it ranks nothing)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    return float("nan") if a.std() == 0 or b.std() == 0 else float(spearmanr(a, b).statistic)


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



"""The maps: Grad-CAM through the real SVM, Integrated Gradients, occlusion and RISE, and the nucleus share.

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
:func:`rise_map` weighs hundreds of random masks by the score each leaves. :func:`permuted_svm` and
:func:`label_randomised_svm` make the randomised models the sanity checks compare with.

:func:`inside_share` turns a map into a number: the share of the positive attribution that
falls inside the nucleus mask. A map spread evenly over the image would score the mask's area,
so the share is read against the mask's area.

>>> cam = np.zeros((4, 4)); cam[1:3, 1:3] = 1.0
>>> mask = np.zeros((4, 4), bool); mask[:2] = True
>>> inside_share(cam, mask)
0.5
"""
from __future__ import annotations

import weakref
from typing import Callable

import cv2
import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from tqdm import tqdm

from alllib.features import FeatureExtractor, import_keras
from alllib.features.keras import forward
from alllib.learn.svm_search import kernel_from_gram
from alllib.preprocessing import BACKBONE_PREPROCESSING, resize
from alllib.segmentation import segment_kmeans

__all__ = ["conv_maps", "svm_feature_gradient", "grad_cam", "upsample", "occlusion_map", "inside_share",
           "nucleus_mask", "network_mode", "blurred_fill", "svm_evidence", "permuted_svm", "integrated_gradients",
           "finer_layer", "grad_cam_at", "rise_map", "label_randomised_svm"]


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


def conv_maps(extractor: FeatureExtractor, inputs, *, prepare: Callable[[np.ndarray], np.ndarray] | None = None,
              progress: bool = False) -> np.ndarray:
    """The last convolutional block's activations ``(n, h, w, c)`` for network inputs prepared
    by :meth:`FeatureExtractor.network_input`; their spatial mean is the extractor's features.

    ``prepare`` (optional) turns each item of ``inputs`` into a network input one batch at a
    time, so that only a batch of float inputs is ever held: at 3,600 C-NMC cells the whole list
    of them is 2.2 GB. The activations fill one array, made when the first batch tells its shape.
    """
    if not hasattr(extractor, "backbone_"):
        extractor.fit()
    model = _maps_model(extractor)
    step, out = extractor.batch_size, None
    for s in tqdm(range(0, len(inputs), step), desc="feature maps", unit="batch", disable=not progress):
        batch = inputs[s:s + step]
        maps = forward(model, np.stack([prepare(x) for x in batch] if prepare else batch))
        if out is None:
            out = np.empty((len(inputs), *maps.shape[1:]), np.float32)
        out[s:s + len(maps)] = maps
    return out


def _rbf_kernel(Z: np.ndarray, sv: np.ndarray, gamma: float) -> np.ndarray:
    """``exp(-gamma |z - s|^2)`` between the rows of ``Z`` and the support vectors ``sv``, in libsvm's
    formula (:func:`~alllib.learn.svm_search.kernel_from_gram`, as every kernel of the library)."""
    return kernel_from_gram(Z @ sv.T, np.einsum("ij,ij->i", Z, Z), np.einsum("ij,ij->i", sv, sv), "rbf", gamma,
                            inplace=True)


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
                         baseline: np.ndarray, steps: int = 16, sign: float = 1.0, batch: int = 4) -> np.ndarray:
    """Integrated Gradients (Sundararajan, Taly and Yan 2017, "Axiomatic attribution for deep
    networks", ICML) of the SVM's decision, through the frozen network, pixel by pixel: the
    gradient of ``f`` with respect to the input, averaged along the straight path from
    ``baseline`` (e.g. :func:`blurred_fill`) to the image at ``steps`` points, times the
    difference from the baseline, summed over the colour channels and signed by ``sign`` toward
    the class chosen. At each point the chain rule runs through the features exactly:
    ``df/dinput = J^T df/dx``, with ``df/dx`` from :func:`svm_feature_gradient` and ``J^T v`` from
    one backward pass of the network. Its values sum to about ``sign (f(image) - f(baseline))``.
    The path goes through the network ``batch`` points at a time: a backward pass holds every
    activation of its batch (16 points of a 224-pixel image held about 1 GB)."""
    import tensorflow as tf

    if not hasattr(extractor, "backbone_"):
        extractor.fit()
    network = extractor._network()
    alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps  # midpoints of the path
    total = np.zeros(network_input.shape, np.float64)
    for start in range(0, steps, batch):
        a = alphas[start:start + batch, None, None, None]
        path = tf.constant(baseline[None] + a * (network_input - baseline)[None], tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(path)
            feats = network(path, training=False)
            _, g = svm_feature_gradient(model, np.asarray(feats, np.float64))
            pushed = tf.reduce_sum(feats * tf.constant(g, feats.dtype))
        total += np.asarray(tape.gradient(pushed, path), np.float64).sum(axis=0)
    return sign * (total / steps * (network_input - baseline)).sum(axis=-1)


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

"""Deep features of a dataset: images streamed through a frozen backbone in batches.

:func:`extract_features` streams a dataset through a network in batches (memory stays bounded
whatever the dataset's size), shows a progress bar, and stores every image's features
(:class:`~alllib.features.store.FeatureStore`), keyed by the image's contents, every parameter
that changes its pixels, the backbone and its weights. :class:`Featurizer` remembers them for the
protocols, :class:`FeatureExtractor` is the scikit-learn transformer of a saved model.

>>> from alllib.data import make_synthetic
>>> f = extract_features(make_synthetic(4, size=64), "efficientnet_lite0", cache=False,
...                      progress=False)                   # doctest: +SKIP
>>> f.X.shape                                              # doctest: +SKIP
(4, 1280)
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from tqdm import tqdm

from alllib.constraints import (
    SEED,
    Options,
    Satisfies,
    check_positive_int,
    count,
    satisfies,
    validate_estimator,
    validate_params,
)
from alllib.data import Dataset
from alllib.features.backbones import BACKBONES, load_backbone, resolve_backbone, weights_info
from alllib.features.keras import check_precision, forward
from alllib.features.store import FEATURE_FORMAT_VERSION, FeatureStore
from alllib.memo import recipe
from alllib.paths import cache_dir
from alllib.preprocessing import BACKBONE_PREPROCESSING, INTERPOLATIONS, check_rgb, imagenet_preprocess, resize
from alllib.segmentation import SEGMENT_PARAMETERS, segment

__all__ = ["ImageTransform", "Features", "extract_features", "Featurizer", "FeatureExtractor"]


def _segment_arguments(value) -> bool:
    """Whether ``value`` is a dict of :func:`~alllib.segmentation.segment` arguments, each allowed."""
    return isinstance(value, dict) and all(
        name in SEGMENT_PARAMETERS and satisfies(v, SEGMENT_PARAMETERS[name]) for name, v in value.items())


#: What the image transform's parameters may be: :class:`ImageTransform`'s and the same
#: parameters of :class:`FeatureExtractor`.
TRANSFORM_PARAMETERS = {
    "segmentation": [None, Satisfies(_segment_arguments, "a dict of segment() arguments, each allowed",
                                     ({"k": 1}, {"colour": "red"}))],
    "size": [count(32, 1024)],
    "normalisation": [Options(("backbone", "paper"))],
}


@dataclass(frozen=True)
class ImageTransform:
    """Everything between the stored image and the network input that changes pixels.

    ``segmentation``: ``None`` (none) or keyword arguments of :func:`alllib.segmentation.segment`
    (e.g. ``{"method": "kmeans", "k": 3}``); ``size`` and ``interpolation`` of the resize;
    ``normalisation``: ``"backbone"`` (the backbone's ImageNet preprocessing) or ``"paper"`` (/255).
    """

    segmentation: dict | None = None
    size: int = 224
    interpolation: str = "area"
    normalisation: str = "backbone"

    def __post_init__(self):
        validate_params(vars(self), {**TRANSFORM_PARAMETERS, "interpolation": [Options(tuple(INTERPOLATIONS))]},
                        "ImageTransform")

    def pixels(self, img: np.ndarray, image_id=None) -> np.ndarray:
        """Segmented (if asked) and resized ``uint8`` image."""
        check_rgb(img)
        if self.segmentation is not None:
            img = segment(img, image_id=image_id, **self.segmentation)
        return resize(img, self.size, self.interpolation)

    def network_input(self, img: np.ndarray, backbone: str, image_id=None) -> np.ndarray:
        mode = "paper" if self.normalisation == "paper" else BACKBONE_PREPROCESSING[backbone]
        return imagenet_preprocess(self.pixels(img, image_id), mode)

    def describe(self) -> dict:
        return {"segmentation": self.segmentation, "size": int(self.size), "interpolation": self.interpolation,
                "normalisation": self.normalisation}


@dataclass
class Features:
    """Features of a dataset: ``X`` (one row per table row), the table, and what made them."""

    X: np.ndarray
    table: pd.DataFrame
    backbone: str
    weights: str
    transform: ImageTransform
    cached: int = 0
    computed: int = 0
    info: dict = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        return self.table["label"].to_numpy(dtype=int)

    @property
    def groups(self) -> np.ndarray:
        return self.table["group"].to_numpy()

    @property
    def description(self) -> str:
        return f"{BACKBONES[self.backbone].label} ({self.weights} weights), {self.X.shape[1]}-d"


_MODELS: dict[tuple, object] = {}


def extract_features(
    ds: Dataset,
    backbone: str = "auto",
    *,
    weights: str | os.PathLike | None = "imagenet",
    segmentation: dict | None = None,
    normalisation: str = "backbone",
    size: int = 224,
    interpolation: str = "area",
    batch_size: int = 32,
    cache: bool = True,
    cache_path: str | os.PathLike | None = None,
    progress: bool = True,
    seed: int = 0,
    precision: str = "float32",
) -> Features:
    """Features of every image of ``ds``, streamed through a frozen backbone in batches.

    Images are read, segmented (``segmentation``: ``None`` or :func:`~alllib.segmentation.segment`
    arguments), resized and normalised batch by batch; only one batch of pixels is in memory at
    a time. With ``cache`` (default) each image's features are stored under
    :func:`cache_dir` and reused on a rerun with the same inputs; ``cache=False`` bypasses it.
    ``precision``: ``"float32"`` (default) or ``"bfloat16"`` (see :func:`load_backbone`; cached
    apart from float32 features).

    Parameters
    ----------
    ds : Dataset
        The images.
    backbone : str
        A key of :data:`~alllib.features.BACKBONES`, or ``"auto"``.
    weights : str, path or None
        ``"imagenet"``, a weights file, or ``"random"``/``None`` (labelled as such).
    segmentation : dict, optional
        Arguments of :func:`~alllib.segmentation.segment`; ``None``: no segmentation.
    normalisation : {"backbone", "paper"}
        The backbone's own ImageNet preprocessing, or the paper's ``/255``.
    size, interpolation, batch_size : int, str, int
        The network input's side, the resize method, images per batch.
    cache, cache_path : bool, path
        Use the feature store, and where (:func:`alllib.paths.cache_dir`).
    progress : bool
        Show a progress bar.
    seed : int
        Seeds random weights.
    precision : {"float32", "bfloat16"}
        The precision the network computes in.

    Returns
    -------
    Features
        ``X`` (one row per image, in ``ds``'s order), the table, and what made them.
    """
    check_positive_int(batch_size, "batch_size")
    name = resolve_backbone(backbone)
    b = BACKBONES[name]
    transform = ImageTransform(segmentation, size, interpolation, normalisation)
    _, label, wid = weights_info(b, weights, seed)
    check_precision(precision)
    setting = {"backbone": name, "weights": wid, "transform": transform.describe(),
               "format": FEATURE_FORMAT_VERSION}
    if precision != "float32":  # float32 keys stay as they were: existing caches remain valid
        setting["precision"] = precision
    store = FeatureStore(cache_dir(cache_path), setting, b.dim) if cache else None
    keys = [ds.image_key(i) for i in range(len(ds))] if cache else []
    missing = [i for i in range(len(ds)) if not cache or keys[i] not in store.rows]
    X = np.zeros((len(ds), b.dim), np.float32)
    for i in range(len(ds)):
        if cache and keys[i] in store.rows:
            X[i] = store.rows[keys[i]]
    if missing:
        memo = (name, wid, size, precision)
        if memo not in _MODELS:
            _MODELS.clear()  # keep one network in memory at a time
            _MODELS[memo] = load_backbone(name, weights, seed=seed, input_size=size, precision=precision)[0]
        model = _MODELS[memo]
        storing = cache and store.writable()  # checked before the work, not after it
        new = _run_batches(model, ds, missing, transform, name, batch_size, progress)
        X[missing] = new
        if storing:
            store.save([keys[i] for i in missing], new)
    return Features(X, ds.table.copy(), name, label, transform, cached=len(ds) - len(missing),
                    computed=len(missing), info={"dataset": ds.name, "source": ds.source, "setting": setting})


def _run_batches(model, ds: Dataset, indices: list[int], transform: ImageTransform, backbone: str,
                 batch_size: int, progress: bool) -> np.ndarray:
    """The network over ``indices`` in batches; the next batch is read, augmented and
    preprocessed in a second thread while the network runs on the current one."""
    from concurrent.futures import ThreadPoolExecutor

    def prepare(chunk):
        return np.stack([transform.network_input(ds.image(i), backbone, image_id=ds.ids[i]) for i in chunk])

    chunks = [indices[start:start + batch_size] for start in range(0, len(indices), batch_size)]
    out = []
    bar = tqdm(total=len(indices), desc=f"{BACKBONES[backbone].label} features", unit="img", disable=not progress)
    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(prepare, chunks[0]) if chunks else None
        for k, chunk in enumerate(chunks):
            batch = pending.result()
            pending = reader.submit(prepare, chunks[k + 1]) if k + 1 < len(chunks) else None
            out.append(forward(model, batch))
            bar.update(len(chunk))
    bar.close()
    return np.concatenate(out) if out else np.zeros((0, BACKBONES[backbone].dim), np.float32)


class Featurizer:
    """Features of any dataset under one fixed setting, remembered in memory and on disk.

    The protocols call it on many subsets (training sides, test sides, augmented copies);
    each image is computed once. Arguments are those of :func:`extract_features`.

    >>> featurize = Featurizer("efficientnet_lite0")           # doctest: +SKIP
    >>> X = featurize(dataset)                                 # doctest: +SKIP
    """

    def __init__(self, backbone: str = "auto", **settings):
        self.backbone = resolve_backbone(backbone)
        self.settings = settings
        self.weights_label: str | None = None
        self._memo: dict[str, np.ndarray] = {}

    @property
    def weights_description(self) -> str:
        """The weights' label once features were computed, else what was asked for."""
        asked = self.settings.get("weights", "imagenet")
        return self.weights_label or ("ImageNet" if asked == "imagenet" else str(asked))

    @property
    def description(self) -> str:
        seg = self.settings.get("segmentation")
        return (f"{BACKBONES[self.backbone].label} features ({self.weights_description} weights), "
                f"segmentation: {seg or 'none'}")

    @property
    def recipe(self):
        """What defines these features (:func:`alllib.memo.recipe`): the backbone and the settings,
        the weights named by their file's SHA-256 (a file changed under the same name is another
        recipe)."""
        weights = weights_info(BACKBONES[self.backbone], self.settings.get("weights", "imagenet"),
                               self.settings.get("seed", 0))[2]
        settings = recipe({**self.settings, "weights": weights})
        return None if settings is None else {"Featurizer": {"backbone": self.backbone, "settings": settings}}

    def __call__(self, ds: Dataset) -> np.ndarray:
        keys = [ds.image_key(i) for i in range(len(ds))]
        missing = [i for i, k in enumerate(keys) if k not in self._memo]
        if missing:
            f = extract_features(ds.subset(missing), self.backbone, **self.settings)
            self.weights_label = f.weights
            self._memo.update(zip((keys[i] for i in missing), f.X))
        if not keys:
            return np.zeros((0, BACKBONES[self.backbone].dim), np.float32)
        return np.stack([self._memo[k] for k in keys])


class FeatureExtractor(BaseEstimator, TransformerMixin):
    """Scikit-learn transformer: a list (or array) of RGB ``uint8`` images -> deep features.

    The network is built on ``fit`` (``backbone="auto"`` is resolved there and kept in
    ``backbone_``) and is not pickled with the estimator: a reloaded pipeline rebuilds it from
    the same weights on first use.
    """

    def __init__(self, backbone: str = "auto", weights="imagenet", segmentation: dict | None = None,
                 normalisation: str = "backbone", size: int = 224, batch_size: int = 32, seed: int = 0):
        self.backbone = backbone
        self.weights = weights
        self.segmentation = segmentation
        self.normalisation = normalisation
        self.size = size
        self.batch_size = batch_size
        self.seed = seed

    #: What each parameter may be, checked by :meth:`check_params` on ``fit`` and when a model
    #: file is loaded (a crafted file must not ask for a 60,000-pixel input or batches of 0).
    _parameter_constraints = {
        "backbone": [Options(("auto",) + tuple(BACKBONES))],
        "weights": [str, os.PathLike, None],
        **TRANSFORM_PARAMETERS,
        "batch_size": [count(1, 1024)],
        "seed": [SEED],
    }

    def check_params(self) -> "FeatureExtractor":
        """Raise :class:`~alllib.errors.ParameterError` naming the first parameter outside
        :attr:`_parameter_constraints` (and a fitted ``backbone_`` that is not in the registry)."""
        validate_estimator(self)
        if hasattr(self, "backbone_") and self.backbone_ not in BACKBONES:
            raise ValueError(f"FeatureExtractor: backbone_={self.backbone_!r} is not a known backbone")
        return self

    #: The attributes a fitted extractor may hold besides its parameters.
    _FITTED = ("backbone_", "transform_", "_model", "weights_label_")

    def check_fitted(self) -> "FeatureExtractor":
        """Raise ``ValueError`` where the fitted state is not what :meth:`fit` makes of the (checked)
        parameters: an unknown attribute, a stored network, an image transform that does not follow
        from the parameters (a crafted ``transform_.size`` of 12,000 pixels), a backbone other than the
        one asked for. A model file's extractor is checked so when loaded."""
        self.check_params()
        extra = sorted(set(vars(self)) - set(self._parameter_constraints) - set(self._FITTED))
        if extra:
            raise ValueError(f"FeatureExtractor: unexpected attribute(s) {', '.join(extra)}")
        if getattr(self, "_model", None) is not None:
            raise ValueError("FeatureExtractor: holds a network (_model); a model file must rebuild it from the weights")
        expected = ImageTransform(self.segmentation, self.size, "area", self.normalisation)
        if getattr(self, "transform_", None) != expected:
            shown = repr(getattr(self, "transform_", None))[:200]
            raise ValueError(f"FeatureExtractor: transform_={shown} does not follow from its parameters ({expected})")
        if self.backbone != "auto" and getattr(self, "backbone_", self.backbone) != self.backbone:
            raise ValueError(f"FeatureExtractor: backbone_={self.backbone_!r} is not the backbone asked for "
                             f"({self.backbone!r})")
        if not isinstance(getattr(self, "weights_label_", ""), str):
            raise ValueError("FeatureExtractor: weights_label_ is not text")
        return self

    def fit(self, X=None, y=None):
        self.check_params()
        self.backbone_ = resolve_backbone(self.backbone, verbose=False)
        self.transform_ = ImageTransform(self.segmentation, self.size, "area", self.normalisation)
        self._model = None
        return self

    def _network(self):
        if getattr(self, "_model", None) is None:
            self._model, self.weights_label_ = load_backbone(self.backbone_, self.weights, seed=self.seed,
                                                                input_size=self.size)
        return self._model

    def network_input(self, img: np.ndarray, image_id=None) -> np.ndarray:
        """One image segmented, resized and normalised for the network (``image_id`` names it in
        warnings and errors)."""
        if not hasattr(self, "backbone_"):
            self.fit()
        return self.transform_.network_input(img, self.backbone_, image_id=image_id)

    def embed(self, inputs: list[np.ndarray]) -> np.ndarray:
        """Features of images already prepared by :meth:`network_input`, in batches."""
        if not hasattr(self, "backbone_"):
            self.fit()
        model = self._network()
        out = [forward(model, np.stack(inputs[start:start + self.batch_size]))
               for start in range(0, len(inputs), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, BACKBONES[self.backbone_].dim), np.float32)

    def transform(self, X):
        """Features of a list of RGB images (one batch of network inputs in memory at a time)."""
        out = [self.embed([self.network_input(X[i], image_id=f"#{i}") for i in range(s, min(s + self.batch_size, len(X)))])
               for s in range(0, len(X), self.batch_size)]
        return np.concatenate(out) if out else self.embed([])

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_model"] = None
        return state

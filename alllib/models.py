"""Trained image classifiers: fit on a whole dataset, save with metadata, load back, predict.

A trained model is a scikit-learn ``Pipeline`` from RGB images to labels::

    FeatureExtractor (segmentation, resize, normalisation, frozen backbone)
      -> StandardScaler -> SVM / random forest / XGBoost

saved with its metadata (backbone, weights, segmentation and preprocessing parameters, training
data summary, library version). A model file starts with a short text header, checked before
anything is unpickled, so a file that is not one of ours is refused with a clear message.
Only load model files you trust: the pipeline itself is a pickle.
"""
from __future__ import annotations

import datetime as _dt
import io
import json
import os
import pickle
from pathlib import Path

import joblib
import numpy as np
from sklearn.pipeline import Pipeline

from . import __version__
from .augmentation import Augmenter, balance
from .classifiers import fit_classifier
from .data import Dataset
from .features import BACKBONES, FeatureExtractor, Featurizer

__all__ = ["ModelFileError", "train_image_classifier", "save_model", "load_model", "predict_images", "MAGIC"]

MAGIC = b"ALLLIB-MODEL 1\n"


class ModelFileError(ValueError):
    """A file that is not an alllib model, or a damaged one."""


def train_image_classifier(ds: Dataset, *, backbone: str = "auto", weights="imagenet", classifier: str = "svm",
                           segmentation: dict | None = None, target_per_class: int | None = None,
                           search: str = "paper", size: int = 224, seed: int = 0, progress: bool = True,
                           cache: bool = True) -> tuple[Pipeline, dict]:
    """Train an image -> label pipeline on all of ``ds`` (optionally balanced with augmented
    copies); returns ``(pipeline, metadata)``. The SVM is calibrated for probabilities."""
    featurize = Featurizer(backbone, weights=weights, segmentation=segmentation, size=size, progress=progress,
                           seed=seed, cache=cache)
    train = balance(ds, target_per_class, Augmenter(seed=seed)) if target_per_class else ds
    X, y = featurize(train), train.labels
    clf, grid = fit_classifier(classifier, X, y, groups=train.groups, search=search, seed=seed, probability=True)
    extractor = FeatureExtractor(featurize.backbone, weights=weights, segmentation=segmentation, size=size,
                                 seed=seed).fit()
    pipe = Pipeline([("features", extractor), ("classifier", clf)])
    params = {k.split("__", 1)[1]: v for k, v in clf.get_params().items()
              if k.startswith(f"{classifier}__") and not callable(v) and isinstance(v, (int, float, str, bool, type(None)))}
    meta = {
        "alllib_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "backbone": featurize.backbone,
        "backbone_label": BACKBONES[featurize.backbone].label,
        "weights": featurize.weights_label,
        "segmentation": segmentation,
        "preprocessing": extractor.transform_.describe(),
        "classifier": classifier,
        "classifier_params": params,
        "search": search,
        "seed": seed,
        "training_data": {
            "dataset": ds.name, "source": ds.source, "originals": len(ds),
            "per_class": {str(k): int(v) for k, v in zip(*np.unique(ds.labels, return_counts=True))},
            "groups": int(ds.table["group"].nunique()), "augmented_to_per_class": target_per_class,
        },
    }
    return pipe, meta


def save_model(path: str | os.PathLike, pipeline: Pipeline, metadata: dict) -> Path:
    """Write ``pipeline`` and ``metadata`` to ``path`` (header line, metadata JSON line, pickle)."""
    path = Path(path)
    buf = io.BytesIO()
    joblib.dump(pipeline, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        f.write(json.dumps(metadata, default=str).encode() + b"\n")
        f.write(buf.getvalue())
    tmp.replace(path)
    return path


def load_model(path: str | os.PathLike) -> tuple[Pipeline, dict]:
    """Read a model written by :func:`save_model`; refuses any other file before unpickling it."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ModelFileError(f"{path}: not an alllib model file (train one with 'python -m alllib train')")
        try:
            meta = json.loads(f.readline())
            pipeline = joblib.load(io.BytesIO(f.read()))
        except (ValueError, EOFError, pickle.UnpicklingError, KeyError) as err:
            raise ModelFileError(f"{path}: a damaged alllib model file ({err})") from err
    if not isinstance(pipeline, Pipeline):
        raise ModelFileError(f"{path}: holds {type(pipeline).__name__}, not a scikit-learn Pipeline")
    return pipeline, meta


def predict_images(pipeline: Pipeline, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Labels and blast probabilities of RGB ``uint8`` images."""
    feats = pipeline.named_steps["features"].transform(images)
    clf = pipeline.named_steps["classifier"]
    labels = clf.predict(feats)
    proba = clf.predict_proba(feats)[:, 1] if hasattr(clf, "predict_proba") else np.full(len(labels), np.nan)
    return labels.astype(int), proba

"""Trained image classifiers: fit on a whole dataset, save with metadata, load back, predict.

A trained model is a scikit-learn ``Pipeline`` from RGB images to labels::

    FeatureExtractor (segmentation, resize, normalisation, frozen backbone)
      -> StandardScaler -> SVM / random forest / XGBoost

saved with its metadata (backbone, weights, segmentation and preprocessing parameters, training
data summary, library version). A model file is something people email and download, so loading
one never runs code from it. The file is::

    ALLLIB-MODEL 2
    {"sha256": "...", "metadata": {...}}      one line of JSON
    <the pipeline in skops.io format>

``skops.io`` stores objects as data (arrays, numbers, the state of known classes) and rebuilds
only types on an explicit list (:data:`TRUSTED_TYPES` besides skops' own defaults for
scikit-learn and numpy); XGBoost's booster is kept in XGBoost's own binary model format. The
SHA-256 of the metadata and the payload is checked before anything is rebuilt, so a damaged or
altered file is refused, naming it. Files of the old pickle format (``ALLLIB-MODEL 1``) are
refused too: retrain them.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline

from . import __version__
from .augmentation import Augmenter, balance
from .classifiers import fit_classifier
from .data import Dataset, ImageReadError, read_image
from .features import BACKBONES, FeatureExtractor, Featurizer
from .segmentation import MIN_SIZE, EmptyMaskWarning

__all__ = ["ModelFileError", "train_image_classifier", "save_model", "load_model", "predict_images", "predict_files",
           "Prediction", "visible_cell_problem", "LABEL_NAMES", "MAGIC", "FORMAT_VERSION", "TRUSTED_TYPES"]

MAGIC = b"ALLLIB-MODEL "
#: The model file format this alllib writes and reads.
FORMAT_VERSION = 2
#: Types a model file may rebuild besides skops' defaults (scikit-learn estimators, numpy).
TRUSTED_TYPES = [
    "alllib.features.FeatureExtractor", "alllib.features.ImageTransform",
    "sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration",
    "sklearn.tree._tree.Tree", "xgboost.core.Booster", "xgboost.sklearn.XGBClassifier",
]
_RETRAIN = "retrain it with 'python -m alllib train' (see the README)"


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
    inner = clf.estimator if isinstance(clf, CalibratedClassifierCV) else clf  # the tuned scaler + classifier
    params = {k.split("__", 1)[1]: v for k, v in inner.get_params().items()
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
        "cv_accuracy": cross_validated_accuracy(inner, X, y, train.groups, seed),
        "training_data": {
            "dataset": ds.name, "source": ds.source, "originals": len(ds),
            "per_class": {str(k): int(v) for k, v in zip(*np.unique(ds.labels, return_counts=True))},
            "groups": int(ds.table["group"].nunique()), "augmented_to_per_class": target_per_class,
        },
    }
    return pipe, meta


def cross_validated_accuracy(model, X: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int = 0) -> dict:
    """Grouped cross-validated accuracy of ``model``'s settings on the data it was trained on
    (copies and duplicates of one image in one fold; up to 5 folds), so that whoever saves a
    model knows roughly what it is worth. The hyper-parameters were tuned on the same data, so
    it is somewhat optimistic; chapter 9 measures a model honestly."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score

    folds = min(5, *(len(np.unique(groups[y == c])) for c in np.unique(y)))
    if folds < 2:
        return {"mean": None, "folds": 0, "note": "too few groups per class to cross-validate"}
    scores = cross_val_score(clone(model), X, y, groups=groups,
                             cv=StratifiedGroupKFold(folds, shuffle=True, random_state=seed))
    return {"mean": float(scores.mean()), "std": float(scores.std()), "folds": folds,
            "note": "grouped cross-validation on the training data, with the tuned settings (somewhat optimistic)"}


def _digest(metadata: dict, payload: bytes) -> str:
    return hashlib.sha256(json.dumps(metadata, sort_keys=True, default=str).encode() + b"\0" + payload).hexdigest()


def save_model(path: str | os.PathLike, pipeline: Pipeline, metadata: dict) -> Path:
    """Write ``pipeline`` and ``metadata`` to ``path`` (see the module's docstring for the
    format); an existing file is replaced only once the new one is complete."""
    import skops.io as sio

    path = Path(path)
    metadata = json.loads(json.dumps(metadata, default=str))  # stored as JSON: hash what is stored
    payload = sio.dumps(pipeline)
    header = {"sha256": _digest(metadata, payload), "metadata": metadata}
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + f"{FORMAT_VERSION}\n".encode())
            f.write(json.dumps(header).encode() + b"\n")
            f.write(payload)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_model(path: str | os.PathLike) -> tuple[Pipeline, dict]:
    """Read a model written by :func:`save_model`, without running code from the file: the
    format version and the checksum are checked first, and only known types are rebuilt."""
    import skops.io as sio

    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path}: a directory, not a model file")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ModelFileError(f"{path}: not an alllib model file (train one with 'python -m alllib train')")
    damaged = f"{path}: a damaged alllib model file"
    first, _, rest = data[len(MAGIC):].partition(b"\n")
    try:
        version = int(first)
    except ValueError:
        raise ModelFileError(f"{damaged} (unreadable format version)") from None
    line, _, payload = rest.partition(b"\n")
    if version == 1:
        raise ModelFileError(f"{path}: an old alllib model file (format 1, a pickle, which could run code when "
                             f"loaded); alllib no longer reads it: {_RETRAIN}")
    if version > FORMAT_VERSION:
        try:
            made_by = json.loads(line)["metadata"]["alllib_version"]
        except (ValueError, KeyError, TypeError):
            made_by = "unknown"
        raise ModelFileError(f"{path}: made by a newer alllib (version {made_by}, model format {version}); this is "
                             f"alllib {__version__} (format {FORMAT_VERSION}): upgrade alllib to read it")
    try:
        header = json.loads(line)
        metadata, expected = header["metadata"], header["sha256"]
        if not isinstance(metadata, dict):
            raise TypeError("metadata is not a mapping")
    except (ValueError, KeyError, TypeError) as err:
        raise ModelFileError(f"{damaged} (unreadable header: {err})") from None
    if _digest(metadata, payload) != expected:
        raise ModelFileError(f"{damaged} (its checksum does not match: changed or truncated since it was saved)")
    try:
        untrusted = [t for t in sio.get_untrusted_types(data=payload) if t not in TRUSTED_TYPES]
    except Exception as err:  # skops raises many types on malformed input
        raise ModelFileError(f"{damaged} ({type(err).__name__}: {err})") from None
    if untrusted:
        raise ModelFileError(f"{path}: refused, it holds types that alllib does not load: {', '.join(untrusted)}")
    try:
        pipeline = sio.loads(payload, trusted=TRUSTED_TYPES)
    except Exception as err:
        raise ModelFileError(f"{damaged} ({type(err).__name__}: {err})") from None
    if not isinstance(pipeline, Pipeline) or "features" not in pipeline.named_steps:
        raise ModelFileError(f"{path}: holds {type(pipeline).__name__}, not an alllib image pipeline")
    return pipeline, metadata


def predict_images(pipeline: Pipeline, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Labels and blast probabilities of RGB ``uint8`` images."""
    return _classify(pipeline, pipeline.named_steps["features"].transform(images))


def _classify(pipeline: Pipeline, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    clf = pipeline.named_steps["classifier"]
    labels = clf.predict(feats)
    proba = clf.predict_proba(feats)[:, 1] if hasattr(clf, "predict_proba") else np.full(len(labels), np.nan)
    return labels.astype(int), proba


@dataclass
class Prediction:
    """What :func:`predict_files` says about one input file. ``status`` is ``ok``, ``warning``
    (labelled, but the image shows no cell the method can read: see ``message``) or ``error``
    (not labelled: ``message`` says why)."""

    image: str
    status: str = "ok"
    message: str = ""
    label: int | None = None
    probability: float = float("nan")

    @property
    def label_name(self) -> str:
        return "" if self.label is None else LABEL_NAMES[self.label]


LABEL_NAMES = {1: "ALL blast", 0: "not a blast"}


def visible_cell_problem(img: np.ndarray) -> str | None:
    """Why an RGB image cannot show a stained cell, or ``None``: a uniform image (all black,
    all white, one colour) or a grayscale one (no stain colour to segment)."""
    if float(img.std()) < 2.0:
        return f"a uniform image (every pixel about {img.reshape(-1, 3).mean(axis=0).round().astype(int).tolist()}): no visible cell"
    if int(np.ptp(img.astype(np.int16), axis=2).max()) <= 2:
        return "a grayscale image: no stain colour for the segmentation and the features to read"
    return None


def predict_files(pipeline: Pipeline, paths: list, *, chunk: int = 64) -> list[Prediction]:
    """Label image files one by one: a file that cannot be read or is too small gets an
    ``error`` row and the others are still labelled; an image with no visible cell (uniform,
    grayscale, or where segmentation keeps no nucleus) gets a ``warning`` row naming the file.
    One row per input, in order. Files are prepared in chunks of ``chunk``."""
    extractor = pipeline.named_steps["features"]
    rows = [Prediction(str(p)) for p in paths]
    for start in range(0, len(rows), chunk):
        ready = []
        for row in rows[start:start + chunk]:
            try:
                img = read_image(row.image)
                if min(img.shape[:2]) < MIN_SIZE:
                    raise ImageReadError(f"{row.image}: {img.shape[1]}x{img.shape[0]} pixels, too small to hold a "
                                         f"cell (at least {MIN_SIZE}x{MIN_SIZE})")
                problems = [p for p in [visible_cell_problem(img)] if p]
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    x = extractor.network_input(img, image_id=row.image)
                for w in caught:
                    if issubclass(w.category, EmptyMaskWarning):
                        problems.append(str(w.message))
                    else:
                        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            except (ImageReadError, ValueError, TypeError, cv2.error) as err:
                text = str(err)
                row.status, row.message = "error", text if row.image in text else f"{row.image}: {text}"
                continue
            if problems:
                row.status, row.message = "warning", f"{row.image}: " + "; ".join(problems)
            ready.append((row, x))
        if ready:
            labels, proba = _classify(pipeline, extractor.embed([x for _, x in ready]))
            for (row, _), label, p in zip(ready, labels, proba):
                row.label, row.probability = int(label), float(p)
    return rows

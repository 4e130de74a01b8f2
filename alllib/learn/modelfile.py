"""The model file: a trained pipeline saved with its metadata and loaded back, as untrusted input.

A trained model (:mod:`alllib.learn.training` fits it, :mod:`alllib.learn.predict` applies it) is
a scikit-learn ``Pipeline`` from RGB images to labels::

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

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline

from alllib import __version__
from alllib.constraints import is_count
from alllib.errors import AlllibError
from alllib.features import BACKBONES, FeatureExtractor, file_sha256
from alllib.paths import atomic_file

__all__ = ["ModelFileError", "save_model", "load_model", "check_classifier_state", "MAGIC", "FORMAT_VERSION",
           "TRUSTED_TYPES"]

MAGIC = b"ALLLIB-MODEL "


#: The model file format this alllib writes and reads.
FORMAT_VERSION = 3  # 3: the package in layers (alllib.features.extract); files of 2 must be retrained


#: Types a model file may rebuild besides skops' defaults (scikit-learn estimators, numpy).
TRUSTED_TYPES = [
    "alllib.features.extract.FeatureExtractor", "alllib.features.extract.ImageTransform",
    "sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration",
    "sklearn.tree._tree.Tree", "xgboost.core.Booster", "xgboost.sklearn.XGBClassifier",
]


_RETRAIN = "retrain it with 'python -m alllib train' (see the README)"


#: Limits on what a model file may ask of memory: its size, and what each member of its payload
#: (a zip) declares it unpacks to. alllib's own files are a few megabytes.
MAX_FILE_BYTES = 1 << 30


MAX_MEMBER_BYTES = 1 << 30


MAX_SCHEMA_BYTES = 64 << 20


MAX_METADATA_DEPTH = 32


class ModelFileError(AlllibError, ValueError):
    """A file that is not an alllib model, or a damaged one."""


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
    with atomic_file(path) as f:  # a link or a FIFO at a temporary name cannot redirect the write
        f.write(MAGIC + f"{FORMAT_VERSION}\n".encode())
        f.write(json.dumps(header).encode() + b"\n")
        f.write(payload)
    return path


def load_model(path: str | os.PathLike) -> tuple[Pipeline, dict]:
    """Read a model written by :func:`save_model`, without running code from the file and
    within bounded memory: the size, the format version, the header and the checksum are checked
    first, then what the payload's parts declare they unpack to; only known types are rebuilt,
    and every rebuilt parameter is checked as at training time. Any failure is one
    :class:`ModelFileError` naming the file.

    Parameters
    ----------
    path : str or path
        A model file.

    Returns
    -------
    (Pipeline, dict)
        The pipeline and its metadata.

    Raises
    ------
    ModelFileError
        For any file that is not a sound alllib model file, naming it and the problem.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path}: a directory, not a model file")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ModelFileError(f"{path}: refused, {path.stat().st_size:,} bytes (an alllib model file has at most "
                             f"{MAX_FILE_BYTES:,})")
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
        except (ValueError, KeyError, TypeError, RecursionError):
            made_by = "unknown"
        raise ModelFileError(f"{path}: made by a newer alllib (version {made_by}, model format {version}); this is "
                             f"alllib {__version__} (format {FORMAT_VERSION}): upgrade alllib to read it")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{damaged} (format version {version} does not exist)")
    try:
        header = json.loads(line)
        metadata, expected = header["metadata"], header["sha256"]
        if not isinstance(metadata, dict):
            raise TypeError("metadata is not a mapping")
        _check_metadata(metadata)
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        raise ModelFileError(f"{damaged} (unreadable header: {type(err).__name__}: {str(err)[:200]})") from None
    if _digest(metadata, payload) != expected:
        raise ModelFileError(f"{damaged} (its checksum does not match: changed or truncated since it was saved)")
    _check_members(payload, path)
    import skops.io as sio

    try:
        untrusted = [t for t in sio.get_untrusted_types(data=payload) if t not in TRUSTED_TYPES]
    except Exception as err:  # skops raises many types on malformed input
        raise ModelFileError(f"{damaged} ({type(err).__name__}: {str(err)[:200]})") from None
    if untrusted:
        raise ModelFileError(f"{path}: refused, it holds types that alllib does not load: {', '.join(untrusted)}")
    try:
        pipeline = sio.loads(payload, trusted=TRUSTED_TYPES)
    except Exception as err:
        raise ModelFileError(f"{damaged} ({type(err).__name__}: {str(err)[:200]})") from None
    if not isinstance(pipeline, Pipeline) or "features" not in pipeline.named_steps:
        raise ModelFileError(f"{path}: holds {type(pipeline).__name__}, not an alllib image pipeline")
    _check_pipeline(pipeline, metadata, path)
    return pipeline, metadata


def _check_metadata(metadata: dict) -> None:
    """The header's metadata: nested at most :data:`MAX_METADATA_DEPTH` deep, and the entries
    that alllib reads of the types it reads them as."""
    stack = [(metadata, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(f"metadata nested more than {MAX_METADATA_DEPTH} levels deep")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    for key, kind in (("training_data", dict), ("grouped_cv", dict), ("classifier", str), ("backbone_label", str),
                      ("weights", str), ("threshold", dict), ("training_statistics", dict)):
        if key in metadata and metadata[key] is not None and not isinstance(metadata[key], kind):
            raise TypeError(f"metadata entry {key!r} is {type(metadata[key]).__name__}, not {kind.__name__}")
    if "neighbours" in metadata and not is_count(metadata["neighbours"], 1000):
        raise ValueError(f"metadata neighbours {metadata['neighbours']!r} is not a count of neighbours (0 to 1000)")
    cut = (metadata.get("threshold") or {}).get("probability")
    if cut is not None and not (isinstance(cut, (int, float)) and not isinstance(cut, bool) and 0 <= cut <= 1):
        raise ValueError(f"metadata threshold probability {cut!r} is not a probability")


def _check_members(payload: bytes, path: Path) -> None:
    """Refuse a payload whose zip members declare more than the limits once unpacked (a zip
    bomb), before anything is unpacked."""
    try:
        members = zipfile.ZipFile(io.BytesIO(payload)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise ModelFileError(f"{path}: a damaged alllib model file ({type(err).__name__}: {err})") from None
    total = 0
    for info in members:
        limit = MAX_SCHEMA_BYTES if info.filename.endswith(".json") else MAX_MEMBER_BYTES
        if info.file_size > limit:
            raise ModelFileError(f"{path}: refused, its part {info.filename!r} declares {info.file_size:,} bytes "
                                 f"unpacked (at most {limit:,})")
        total += info.file_size
    if total > MAX_MEMBER_BYTES:
        raise ModelFileError(f"{path}: refused, its parts declare {total:,} bytes unpacked (at most "
                             f"{MAX_MEMBER_BYTES:,})")


def _check_pipeline(pipeline: Pipeline, metadata: dict, path: Path) -> None:
    """Every loaded parameter within the constraints that hold at training time
    (:meth:`FeatureExtractor.check_params`), a weights file only where the model vouches for it
    (its SHA-256 in the metadata), and a classifier that reads the backbone's features."""
    extractor = pipeline.named_steps["features"]
    if not isinstance(extractor, FeatureExtractor) or list(pipeline.named_steps) != ["features", "classifier"]:
        raise ModelFileError(f"{path}: not an alllib image pipeline (features, then classifier)")
    if not hasattr(extractor, "backbone_"):
        raise ModelFileError(f"{path}: refused, its feature extractor was never fitted")
    try:
        extractor.check_fitted()
    except ValueError as err:
        raise ModelFileError(f"{path}: refused, {err}") from None
    if extractor.weights not in (None, "imagenet", "random"):
        weights = Path(extractor.weights)
        vouched = metadata.get("weights_sha256")
        if not vouched or not weights.is_file() or file_sha256(weights) != vouched:
            raise ModelFileError(f"{path}: refused, its weights point at {weights}, a file the model does not vouch "
                                 "for (missing, or not the file it was trained with)")
    dim = BACKBONES[extractor.backbone_].dim
    classifier = pipeline.named_steps["classifier"]
    n_in = getattr(classifier, "n_features_in_", dim)
    if n_in != dim:
        raise ModelFileError(f"{path}: refused, its classifier reads {n_in} features but {extractor.backbone_} "
                             f"gives {dim}")
    try:
        check_classifier_state(classifier, dim)
    except (ValueError, TypeError, AttributeError, IndexError) as err:
        raise ModelFileError(f"{path}: refused, {str(err)[:300]}") from None


def _array(obj, name: str, shape: tuple, kinds: str = "f") -> np.ndarray:
    """``obj.name`` as an array of ``shape`` (``None``: any length) and of a numpy kind in ``kinds``,
    finite where it is of floats; else ``ValueError`` naming it."""
    value = getattr(obj, name, None)
    if not isinstance(value, np.ndarray) or value.dtype.kind not in kinds or value.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(value.shape, shape)):
        desc = f"{type(value).__name__} {getattr(value, 'dtype', '')} {getattr(value, 'shape', '')}".strip()
        raise ValueError(f"{type(obj).__name__}.{name} is {desc}, not an array of shape {shape}")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise ValueError(f"{type(obj).__name__}.{name} holds values that are not finite")
    return value


def check_classifier_state(classifier, dim: int) -> None:
    """Raise ``ValueError`` where a loaded classifier's fitted state is not what fitting one on
    ``dim`` features makes: the arrays a prediction reads (the scaler's, the SVM's support
    vectors, coefficients and counts, each tree's nodes, the calibration's sigmoid) of the types,
    shapes and ranges it reads them with, so that no crafted file can make the compiled code
    behind them read outside an array."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    inner = [classifier]
    if isinstance(classifier, CalibratedClassifierCV):
        calibrated = getattr(classifier, "calibrated_classifiers_", None)
        if not isinstance(calibrated, list) or len(calibrated) != 1:
            raise ValueError("a calibrated classifier must hold one calibrated estimator")
        inner = [calibrated[0].estimator]
        for cal in calibrated[0].calibrators:
            for name in ("a_", "b_"):
                v = getattr(cal, name, None)
                if isinstance(v, bool) or not isinstance(v, (float, int, np.floating)) or not np.isfinite(v):
                    raise ValueError(f"the calibration's {name} is {v!r}, not a finite number")
        if len(calibrated[0].calibrators) != 1:
            raise ValueError("the calibration must hold one sigmoid")
    for model in inner:
        if not isinstance(model, Pipeline) or [type(s).__name__ for _, s in model.steps][:1] != ["StandardScaler"]:
            raise ValueError("the classifier is not a scaler followed by an estimator")
        scaler, est = model.steps[0][1], model.steps[-1][1]
        if not isinstance(scaler, StandardScaler) or len(model.steps) != 2:
            raise ValueError("the classifier is not a scaler followed by an estimator")
        _array(scaler, "mean_", (dim,))
        if (_array(scaler, "scale_", (dim,)) <= 0).any():
            raise ValueError("StandardScaler.scale_ holds values that are not positive")
        classes = getattr(est, "classes_", None)
        if not isinstance(classes, np.ndarray) or classes.tolist() != [0, 1]:
            raise ValueError(f"the classifier's classes are {classes!r}, not [0, 1]")
        if isinstance(est, SVC):
            _check_svc(est, dim)
        elif isinstance(est, RandomForestClassifier):
            _check_forest(est, dim)


def _check_svc(svc, dim: int) -> None:
    if svc.kernel not in ("rbf", "poly", "linear") or svc._sparse is not False:
        raise ValueError(f"the SVM's kernel {svc.kernel!r} (sparse {svc._sparse!r}) is not one alllib trains")
    sv = _array(svc, "support_vectors_", (None, dim))
    n = len(sv)
    for name in ("dual_coef_", "_dual_coef_"):
        _array(svc, name, (1, n))
    for name in ("intercept_", "_intercept_"):
        _array(svc, name, (1,))
    counts = _array(svc, "_n_support", (2,), "i")
    if (counts < 0).any() or int(counts.sum()) != n:
        raise ValueError(f"the SVM's support counts {counts.tolist()} do not add up to its {n} support vectors")
    _array(svc, "support_", (n,), "i")
    for name in ("_probA", "_probB"):
        _array(svc, name, (None,))
    gamma, degree, coef0 = svc._gamma, svc.degree, svc.coef0
    if not (isinstance(gamma, (float, np.floating)) and np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"the SVM's gamma {gamma!r} is not a positive number")
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or not 0 < degree <= 10:
        raise ValueError(f"the SVM's degree {degree!r} is not from 1 to 10")
    if not np.isfinite(coef0):
        raise ValueError(f"the SVM's coef0 {coef0!r} is not finite")


def _check_forest(forest, dim: int) -> None:
    for tree in forest.estimators_:
        t = tree.tree_
        n = t.node_count
        left, right, feature = t.children_left, t.children_right, t.feature
        leaf = left == -1
        if (len(left) != n or (left[~leaf] <= 0).any() or (left >= n).any() or (right[~leaf] <= 0).any()
                or (right >= n).any() or (right[leaf] != -1).any() or (feature[~leaf] < 0).any()
                or (feature >= dim).any() or t.value.shape[0] != n):
            raise ValueError("a tree of the forest has nodes that point outside it")

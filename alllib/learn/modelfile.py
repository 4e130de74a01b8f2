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
import io
import json
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline

from alllib import __version__
from alllib.augmentation import Augmenter, balance
from alllib.data import Dataset, ImageReadError, cnmc_subject, read_image
from alllib.errors import AlllibError
from alllib.features import BACKBONES, FeatureExtractor, Featurizer, file_sha256
from alllib.learn.classifiers import fit_classifier
from alllib.learn.evaluation import cohort_folds, grouped_folds, inner_fold_count, split_problem
from alllib.learn.metrics import choose_threshold
from alllib.learn.neighbours import neighbourhood_correction
from alllib.preprocessing import rgb_to_lab
from alllib.segmentation import MIN_SIZE, EmptyMaskWarning

__all__ = ["ModelFileError", "TrainingError", "calibration_problem", "train_image_classifier", "grouped_report",
           "probability_threshold", "THRESHOLDS", "REPORTED", "TRAIN_DEFAULTS", "train_defaults",
           "save_model", "load_model",
           "predict_images", "predict_files", "describe_model", "subject_calls",
           "Prediction", "visible_cell_problem", "training_statistics", "unfamiliar", "fitted_scaler", "LABEL_NAMES",
           "MAGIC", "FORMAT_VERSION", "TRUSTED_TYPES", "check_classifier_state"]

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


class TrainingError(AlllibError, ValueError):
    """Data too few or too odd to give a model whose labels can be trusted; nothing is saved."""


def calibration_problem(clf) -> str | None:
    """Why a calibrated SVM's probabilities cannot be trusted, or ``None``. Platt's sigmoid
    ``p = 1 / (1 + exp(a f + b))`` must rise with the decision value ``f`` (``a < 0``); fitted on
    too few held-out decisions it can come out flat or inverted, and since the label follows the
    probability, every label would then contradict the SVM's own decision."""
    if not isinstance(clf, CalibratedClassifierCV):
        return None
    a = float(getattr(clf.calibrated_classifiers_[0].calibrators[0], "a_", -1.0))
    if a < 0:
        return None
    return (f"the probability calibration came out {'inverted' if a > 0 else 'flat'} (Platt slope a = {a:+.2f}, "
            "where a rising probability needs a < 0): its labels would contradict the SVM's decisions")


def _measured_defaults() -> dict:
    """The defaults ``benchmarks/cnmc_specificity.py --write-defaults`` chose and recorded, with the
    measurement behind them (``train_defaults.json`` beside this module); none where it is absent."""
    from importlib import resources

    try:
        return json.loads(resources.files("alllib.learn").joinpath("train_defaults.json").read_text())
    except (OSError, ValueError):
        return {}


#: What ``train`` uses for a dataset where it is not told otherwise, and why: for C-NMC the setting
#: ``benchmarks/cnmc_specificity.py`` chose by the calibrated verdict on pooled people and recorded
#: with its measurement (its ``why`` says how sure it is); other datasets keep the paper's pipeline
#: (K-means segmentation, no correction).
TRAIN_DEFAULTS = {
    "*": {"segmentation": "kmeans", "neighbours": 0, "why": "the paper's pipeline"},
    "cnmc": {"segmentation": "none", "neighbours": 0,
             "why": "C-NMC cells come segmented; no setting was measured better (run benchmarks/cnmc_specificity.py)"},
    **{name: {k: v for k, v in d.items() if k in ("segmentation", "neighbours", "why")}
       for name, d in _measured_defaults().items()},
}


def train_defaults(dataset: str) -> dict:
    """The settings ``train`` uses for ``dataset`` unless told otherwise (:data:`TRAIN_DEFAULTS`): the
    segmentation method (as ``train --segmentation`` names it) and the neighbours of the correction.

    >>> train_defaults("cnmc")["segmentation"], train_defaults("all_idb2")["segmentation"]
    ('none', 'kmeans')
    """
    return dict(TRAIN_DEFAULTS.get(dataset, TRAIN_DEFAULTS["*"]))


def train_image_classifier(ds: Dataset, *, backbone: str = "auto", weights="imagenet", classifier: str = "svm",
                           segmentation: dict | None = None, target_per_class: int | None = None,
                           search: str = "paper", size: int = 224, seed: int = 0, threshold: str = "balanced",
                           neighbours: int = 0, progress: bool = True, cache: bool = True) -> tuple[Pipeline, dict]:
    """Train an image -> label pipeline on all of ``ds`` (optionally balanced with augmented
    copies); returns ``(pipeline, metadata)``. The SVM is calibrated for probabilities. The
    metadata hold what the model is worth for a new patient (:func:`grouped_report`) and the
    decision threshold on the probability of a blast (``threshold``, see :data:`THRESHOLDS`)
    that :func:`predict_files` applies.

    Parameters
    ----------
    ds : Dataset
        The training images.
    backbone, weights : str
        The feature extractor and its weights (see :func:`~alllib.features.load_backbone`).
    classifier : str
        A key of :data:`~alllib.learn.classifiers.CLASSIFIERS`.
    segmentation : dict, optional
        Arguments of :func:`~alllib.segmentation.segment`.
    target_per_class : int, optional
        Balance each class to this many images with augmented copies.
    search : str
        The hyper-parameter grid.
    size : int
        The network input's side.
    seed : int
        Seeds every random step.
    threshold : {"balanced", "default"}
        How the decision threshold is chosen.
    neighbours : int
        ``k > 0``: ``predict`` corrects each image by its ``k`` most similar images of the batch
        (Pan et al. 2019), and the grouped report measures the model so.
    progress, cache : bool
        Show progress; use the feature store.

    Returns
    -------
    (Pipeline, dict)
        The fitted pipeline (images in, labels out) and its metadata.
    """
    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {', '.join(THRESHOLDS)}, not {threshold!r}")
    featurize = Featurizer(backbone, weights=weights, segmentation=segmentation, size=size, progress=progress,
                           seed=seed, cache=cache)
    train = balance(ds, target_per_class, Augmenter(seed=seed)) if target_per_class else ds
    X, y = featurize(train), train.labels
    clf, grid = fit_classifier(classifier, X, y, groups=train.groups, search=search, seed=seed, probability=True)
    problem = calibration_problem(clf)
    if problem:
        raise TrainingError(f"{problem}. {len(ds)} images in {ds.table['group'].nunique()} groups are too few to "
                            "calibrate it; nothing was saved: train on more images")
    extractor = FeatureExtractor(featurize.backbone, weights=weights, segmentation=segmentation, size=size,
                                 seed=seed).fit()
    stats = training_statistics(ds, featurize(ds), fitted_scaler(clf))
    pipe = Pipeline([("features", extractor), ("classifier", clf)])
    inner = clf.estimator if isinstance(clf, CalibratedClassifierCV) else clf  # the tuned scaler + classifier
    originals = ~train.table["augmented"].to_numpy(bool) if "augmented" in train.table else None
    if not _is_count(neighbours):
        raise ValueError(f"neighbours must be a whole number >= 0, not {neighbours!r}")
    report = grouped_report(inner, X, y, train.groups, originals=originals, threshold=threshold, seed=seed,
                            neighbours=neighbours, progress=progress)
    if "fold" in train.table and train.table["fold"].nunique() >= 2:  # C-NMC with several cohorts
        report["cohorts"] = grouped_report(inner, X, y, train.groups, originals=originals, threshold=threshold,
                                           seed=seed, neighbours=neighbours, cohorts=train.table["fold"].to_numpy(),
                                           progress=progress)
    cut = report.get("final_threshold", 0.0 if classifier == "svm" else 0.5)
    params = {k.split("__", 1)[1]: v for k, v in inner.get_params().items()
              if k.startswith(f"{classifier}__") and not callable(v) and isinstance(v, (int, float, str, bool, type(None)))}
    meta = {
        "alllib_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "backbone": featurize.backbone,
        "backbone_label": BACKBONES[featurize.backbone].label,
        "weights": featurize.weights_label,
        **({"weights_sha256": file_sha256(Path(weights))} if weights not in (None, "imagenet", "random") else {}),
        "segmentation": segmentation,
        "preprocessing": extractor.transform_.describe(),
        "classifier": classifier,
        "classifier_params": params,
        "search": search,
        "seed": seed,
        "neighbours": neighbours,
        "grouped_cv": report,
        "threshold": {"rule": threshold, "decision": cut if threshold == "balanced" else None,
                      "probability": probability_threshold(clf, cut) if threshold == "balanced" else None},
        "training_statistics": stats,
        "training_data": {
            "dataset": ds.name, "source": ds.source, "originals": len(ds),
            "per_class": {str(k): int(v) for k, v in zip(*np.unique(ds.labels, return_counts=True))},
            "groups": int(ds.table["group"].nunique()), "augmented_to_per_class": target_per_class,
        },
    }
    return pipe, meta


def fitted_scaler(clf):
    """The ``StandardScaler`` fitted on all the training features, inside a classifier that
    :func:`~alllib.learn.classifiers.fit_classifier` returned (calibrated or not)."""
    if isinstance(clf, CalibratedClassifierCV):
        clf = clf.calibrated_classifiers_[0].estimator
    return clf.named_steps["scale"]


def _stain(img: np.ndarray) -> np.ndarray:
    """Mean L*, a*, b* (OpenCV's 8-bit encoding) of an image's non-black pixels (C-NMC cells lie on
    black), on a subsample of at most about 250,000 pixels."""
    step = max(1, int(np.ceil(np.sqrt(img.shape[0] * img.shape[1] / 250_000))))
    lab = rgb_to_lab(np.ascontiguousarray(img[::step, ::step])).reshape(-1, 3)
    lit = img[::step, ::step].reshape(-1, 3).max(axis=1) > 10
    return lab[lit].mean(axis=0) if lit.any() else lab.mean(axis=0)


def _distance(scaler, X: np.ndarray) -> np.ndarray:
    """Root-mean-square standardised feature of each row: how far from the training features' centre."""
    return np.sqrt(np.mean(np.square(scaler.transform(np.asarray(X, np.float64))), axis=1))


def training_statistics(ds: Dataset, X: np.ndarray, scaler) -> dict:
    """What the training images looked like, for :func:`unfamiliar`: their size range, the range
    (1st to 99th percentile) of their mean stain colour in L*a*b*, and the 99th percentile of their
    features' distance from the training centre (:func:`_distance`)."""
    stains, sizes = [], []
    for img in ds.iter_images():  # each image read once
        stains.append(_stain(img))
        sizes.append(img.shape[:2])
    stains, sizes = np.array(stains), np.array(sizes)
    return {"height": [int(sizes[:, 0].min()), int(sizes[:, 0].max())],
            "width": [int(sizes[:, 1].min()), int(sizes[:, 1].max())],
            "stain_low": np.percentile(stains, 1, axis=0).round(2).tolist(),
            "stain_high": np.percentile(stains, 99, axis=0).round(2).tolist(),
            "distance_q99": round(float(np.percentile(_distance(scaler, X), 99)), 4)}


def unfamiliar(stats: dict | None, img: np.ndarray | None = None, distance: float | None = None) -> list[str]:
    """Why an input lies far outside what the model was trained on (``stats`` from
    :func:`training_statistics`), or nothing: a size beyond half to twice the training range, a
    mean stain colour well outside the training range (by half the range plus 5 levels), or
    features farther from the training centre than 1.5 times the training images' 99th
    percentile. Such an image is labelled, but the label is a guess."""
    if not stats:
        return []
    out = []
    if distance is not None and distance > 1.5 * stats["distance_q99"]:
        out.append(f"features far from the training images ({distance:.2f} against at most "
                   f"{stats['distance_q99']:.2f} for 99 % of them)")
    if img is None:
        return out
    h, w = img.shape[:2]
    (h0, h1), (w0, w1) = stats["height"], stats["width"]
    if not (h0 / 2 <= h <= 2 * h1 and w0 / 2 <= w <= 2 * w1):
        out.append(f"{w}x{h} pixels, unlike the training images ({w0}-{w1} x {h0}-{h1})")
    low, high = np.asarray(stats["stain_low"]), np.asarray(stats["stain_high"])
    margin = (high - low) / 2 + 5
    stain = _stain(img)
    off = [name for name, v, lo, hi, m in zip("Lab", stain, low, high, margin) if not lo - m <= v <= hi + m]
    if off:
        out.append(f"stain colour unlike the training images (mean L*a*b* {stain.round().astype(int).tolist()} "
                   f"against {low.round().astype(int).tolist()} to {high.round().astype(int).tolist()}; "
                   f"{', '.join(off)} outside)")
    return out


#: How ``train`` sets the decision threshold: ``"balanced"``, the threshold that maximises balanced
#: accuracy on cross-validated decisions, grouped; ``"default"``, the classifier's own (a calibrated
#: probability of one half).
THRESHOLDS = ("balanced", "default")
#: The metrics a model file reports for new patients, in the order they are printed.
REPORTED = ("balanced_accuracy", "sensitivity", "specificity", "weighted_f1", "accuracy", "roc_auc")


def _refit(model: Pipeline, X: np.ndarray, y: np.ndarray) -> Pipeline:
    """``clone(model).fit(X, y)``; an SVM through one Gram matrix (:func:`~alllib.learn.svm_search.fit_svc`)."""
    from sklearn.base import clone
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from alllib.learn.svm_search import fit_svc

    if isinstance(model[-1], SVC):
        scaler = StandardScaler().fit(X)
        params = {k: v for k, v in model[-1].get_params().items()}
        return Pipeline([("scale", scaler), (model.steps[-1][0], fit_svc(scaler.transform(X), y, **params))])
    return clone(model).fit(X, y)


def grouped_report(model: Pipeline, X: np.ndarray, y: np.ndarray, groups: np.ndarray, *, originals=None,
                   threshold: str = "balanced", n_splits: int = 5, seed: int = 0, neighbours: int = 0,
                   cohorts=None, progress: bool = True) -> dict:
    """What a model with ``model``'s settings is worth for a new patient (slide): grouped
    cross-validation on the training data (no group on both sides; up to ``n_splits`` folds,
    fewer where a class has fewer groups), scored on the original images of each held-out fold
    (``originals``: a mask; augmented copies train but are never scored).

    With ``threshold="balanced"`` each fold's decision threshold is chosen on its training side
    alone, by a grouped inner cross-validation (:func:`~alllib.learn.metrics.choose_threshold`), so the scores are not
    tuned on what they score. Returns the folds' metrics (:data:`REPORTED`: mean and standard
    deviation), each group's share of correctly labelled images for the class with fewer groups
    (its specificity, for C-NMC's normal donors), the pooled out-of-fold decisions' threshold
    for the final model, and the settings. The hyper-parameters were tuned on all of the data,
    which makes the figures somewhat optimistic; chapters 9, 10 and 13 measure honestly. With
    ``cohorts`` (each image's cohort: C-NMC's fold), each cohort is held out in turn instead
    (:func:`~alllib.learn.evaluation.cohort_folds`), and each fold's figures are kept with the
    cohorts it was trained on and scored on. Every person scored gets one call
    (:func:`~alllib.learn.metrics.person_call`), counted per class in ``people``. With
    ``neighbours``, every held-out decision is first corrected by its most similar held-out images
    of the same group (:func:`~alllib.learn.neighbours.neighbourhood_correction`), as ``predict``
    does within each person.
    """
    from sklearn.model_selection import StratifiedGroupKFold
    from tqdm import tqdm

    from alllib.learn.classifiers import decision_scores
    from alllib.learn.metrics import binary_metrics

    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {', '.join(THRESHOLDS)}, not {threshold!r}")
    X, y, groups = np.asarray(X), np.asarray(y, int), np.asarray(groups)
    originals = np.ones(len(y), bool) if originals is None else np.asarray(originals, bool)
    if split_problem(y, groups):
        return {"folds": 0, "note": "too few groups per class to cross-validate"}
    from sklearn.svm import SVC

    default = 0.0 if isinstance(model[-1], SVC) else 0.5  # the decision function's zero, or a probability's half
    rows, oof = [], np.full(len(y), np.nan)
    pred_all = np.full(len(y), -1)
    if cohorts is None:
        splits = grouped_folds(y, groups, n_splits=n_splits, seed=seed)
    else:
        cohorts = np.asarray(cohorts)
        splits = cohort_folds(y, groups, cohorts, seed=seed)
    folds = len(splits)
    for fold in tqdm(splits, desc="grouped cross-validation", unit="fold", disable=not progress):
        train, test = fold.train, fold.test[originals[fold.test]]
        cut = default
        if threshold == "balanced":
            inner = inner_fold_count(y[train], groups[train])
            if inner >= 2:
                inner_scores = np.full(len(train), np.nan)
                for a, b in StratifiedGroupKFold(inner, shuffle=True, random_state=fold.seed).split(
                        X[train], y[train], groups[train]):
                    inner_scores[b] = _corrected(decision_scores(_refit(model, X[train][a], y[train][a]), X[train][b]),
                                                 X[train][b], neighbours, groups[train][b])
                keep = originals[train]
                cut = choose_threshold(y[train][keep], inner_scores[keep], default)
        scores = _corrected(decision_scores(_refit(model, X[train], y[train]), X[test]), X[test], neighbours,
                            groups[test])
        pred = (scores >= cut).astype(int)
        oof[test], pred_all[test] = scores, pred
        rows.append({**binary_metrics(y[test], pred, scores), "threshold": cut,
                     **({} if cohorts is None else {"trained on": _names(cohorts[train]),
                                                    "scored on": _names(cohorts[test]),
                                                    "people": _people(y[test], pred, groups[test])})})
    table = pd.DataFrame(rows)
    scored = pred_all >= 0
    smaller = min(np.unique(y), key=lambda c: len(np.unique(groups[y == c])))
    per_group = {}
    for g in np.unique(groups[scored & (y == smaller)]):
        at = scored & (groups == g)
        per_group[str(g)] = {"correct": float(np.mean(pred_all[at] == y[at])), "images": int(at.sum())}
    return {
        "folds": folds, "threshold_rule": threshold, "scored": int(scored.sum()),
        "metrics": {m: {"mean": float(table[m].mean()), "std": float(table[m].std(ddof=0))} for m in REPORTED},
        "people": _people(y[scored], pred_all[scored], groups[scored]),
        **({} if cohorts is None else {"per_cohort": [{k: (r[k] if k in ("trained on", "scored on", "people")
                                                          else float(r[k])) for k in (*REPORTED, "trained on",
                                                                                      "scored on", "people")}
                                                     for r in rows]}),
        "fold_thresholds": [round(float(t), 6) for t in table["threshold"]],
        "smaller_class": int(smaller), "per_group": per_group, "neighbours": neighbours,
        "final_threshold": choose_threshold(y[scored], oof[scored], default) if threshold == "balanced" else default,
        "note": "grouped cross-validation on the training data; hyper-parameters tuned on all of it (somewhat "
                "optimistic)",
    }


def _calls(people: dict) -> str:
    """A :func:`_people` count in words."""
    parts = []
    for word, c in people.items():
        if c["people"]:
            few = c["with 3 cells or fewer"]
            parts.append(f"{word} {c['called right']} of {c['people']} right ({c['uncertain']} uncertain, "
                         f"{c['called wrong']} wrong" + (f", {few} with 3 cells or fewer)" if few else ")"))
    return "; ".join(parts)


def _names(cohorts: np.ndarray) -> str:
    return " and ".join(f"fold_{c}" for c in np.unique(cohorts))


def _people(y: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> dict:
    """One call per person (:func:`~alllib.learn.metrics.person_call`), counted per class: people,
    called right, uncertain, and how many had 3 cells or fewer (always uncertain)."""
    from alllib.learn.metrics import person_call

    out = {}
    for label, word in ((1, "ALL"), (0, "normal")):
        calls = [(person_call(int(pred[groups == g].sum()), int((groups == g).sum())), int((groups == g).sum()))
                 for g in np.unique(groups[y == label])]
        out[word] = {"people": len(calls), "called right": sum(c == word for c, _ in calls),
                     "uncertain": sum(c == "uncertain" for c, _ in calls),
                     "called wrong": sum(c not in (word, "uncertain") for c, _ in calls),
                     "with 3 cells or fewer": sum(n <= 3 for _, n in calls)}
    return out


def _is_count(value, most: int | None = None) -> bool:
    return (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0
            and (most is None or value <= most))


def _corrected(scores: np.ndarray, X: np.ndarray, neighbours: int, groups: np.ndarray) -> np.ndarray:
    """The neighbourhood correction within each group (person), as ``predict`` applies it."""
    return neighbourhood_correction(X, scores, k=neighbours, weight=0.5, groups=groups) if neighbours else scores


_UNITS = {"cnmc": "subject", "all_idb2": "slide"}


def subject_calls(rows: list["Prediction"], subjects: dict[str, str] | None = None) -> pd.DataFrame:
    """One call per person from their cells' labels: for each subject (``subjects`` maps an image
    to its subject; by default each row's own ``subject``, which :func:`predict_files` reads from
    C-NMC file names), the cells labelled, how many were called blasts, that share with its 95 %
    Wilson interval, the mean probability of a blast, and the call (:func:`~alllib.learn.metrics.person_call`):
    ``ALL`` where the whole interval lies above one half, ``normal`` where it lies below,
    ``uncertain`` otherwise. Cells that could not be labelled, or whose subject is unknown, are
    left out (their count is in ``table.attrs["unassigned"]``)."""
    from alllib.learn.metrics import person_call, wilson_interval

    found = [((r.subject or cnmc_subject(r.image)) if subjects is None else subjects.get(r.image), r) for r in rows]
    labelled = [(s, r) for s, r in found if s is not None and r.label is not None]
    out = []
    for subject in sorted({s for s, _ in labelled}):
        mine = [r for s, r in labelled if s == subject]
        blasts = sum(r.label == 1 for r in mine)
        low, high = wilson_interval(blasts, len(mine))
        out.append({"subject": subject, "cells": len(mine), "blast cells": blasts, "share blast": blasts / len(mine),
                    "share 95% low": low, "share 95% high": high,
                    "mean p(blast)": float(np.mean([r.probability for r in mine])),
                    "call": person_call(blasts, len(mine))})
    table = pd.DataFrame(out, columns=["subject", "cells", "blast cells", "share blast", "share 95% low",
                                       "share 95% high", "mean p(blast)", "call"]).set_index("subject")
    table.attrs["unassigned"] = len(rows) - len(labelled)
    return table


def describe_model(meta: dict) -> str:
    """What a model file says about itself, in a few lines: what it is, what it was trained on,
    what grouped cross-validation found for a new patient (:func:`grouped_report`), each group's
    result for the class with the fewest groups, and the threshold ``predict`` applies."""
    data = meta.get("training_data") or {}
    unit = _UNITS.get(data.get("dataset"), "group")
    lines = [f"{meta.get('classifier')} on {meta.get('backbone_label')} features ({meta.get('weights')} weights), "
             f"trained on {data.get('originals')} {data.get('dataset')} images in {data.get('groups')} {unit}s"]
    cv = meta.get("grouped_cv") or {}
    if cv.get("folds"):
        rule = ("the threshold chosen inside each training side, for balanced accuracy"
                if cv.get("threshold_rule") == "balanced" else "the classifier's own threshold")
        m = cv["metrics"]
        figures = ", ".join(f"{name.replace('_', ' ')} {100 * m[name]['mean']:.1f} % (+/- {100 * m[name]['std']:.1f})"
                            for name in REPORTED if name in m and m[name]["mean"] == m[name]["mean"])
        lines.append(f"for a new {unit} (grouped cross-validation, {cv['folds']} folds by {unit}, {cv['scored']} "
                     f"original images scored, {rule}): {figures}")
        groups = cv.get("per_group") or {}
        what = {0: "specificity", 1: "sensitivity"}.get(cv.get("smaller_class"), "share right")
        if groups and len(groups) <= 12:
            lines.append(f"{what} of each {unit} of class {cv.get('smaller_class')}: " + ", ".join(
                f"{g} {100 * r['correct']:.1f} % ({r['images']} images)" for g, r in groups.items()))
        elif groups:
            shares = np.array([r["correct"] for r in groups.values()])
            lines.append(f"{what} per {unit} of class {cv.get('smaller_class')} ({len(shares)} {unit}s): lowest "
                         f"{100 * shares.min():.1f} %, median {100 * np.median(shares):.1f} %")
        if cv.get("people"):
            lines.append(f"one call per {unit} while held out: {_calls(cv['people'])}")
        lines.append(f"({cv.get('note')})")
        for r in (cv.get("cohorts") or {}).get("per_cohort", []):
            lines.append(f"across cohorts, trained on {r['trained on']}, scored on {r['scored on']}: "
                         + ", ".join(f"{name.replace('_', ' ')} {100 * r[name]:.1f} %" for name in REPORTED[:4]
                                     if r[name] == r[name])
                         + (f"; one call per {unit}: {_calls(r['people'])}" if r.get("people") else ""))
    elif cv:
        lines.append(f"not cross-validated: {cv.get('note')}")
    if meta.get("neighbours"):
        lines.append(f"predict corrects each cell by its {meta['neighbours']} most similar cells of the batch "
                     "(neighbourhood correction, Pan et al. 2019; the figures above include it; --neighbours 0 "
                     "turns it off)")
    if meta.get("defaults"):
        lines.append(f"settings: the default for {data.get('dataset')} ({meta['defaults']})")
    cut = meta.get("threshold") or {}
    if cut.get("probability") is not None:
        lines.append(f"decision threshold: a blast where p(blast) >= {cut['probability']:.3f} (chosen for balanced "
                     "accuracy on the grouped cross-validated decisions)")
    elif cut:
        lines.append("decision threshold: the classifier's own (p(blast) >= 0.5)")
    return "\n".join(lines)


def probability_threshold(clf, decision_threshold: float) -> float:
    """The calibrated probability of a blast at a decision value (for an SVM calibrated by Platt's
    sigmoid); a forest's or XGBoost's score is already that probability."""
    if isinstance(clf, CalibratedClassifierCV):
        calibrator = clf.calibrated_classifiers_[0].calibrators[0]
        return float(calibrator.predict(np.array([decision_threshold]))[0])
    return float(decision_threshold)


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
    if "neighbours" in metadata and not _is_count(metadata["neighbours"], 1000):
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


def predict_images(pipeline: Pipeline, images: list[np.ndarray], threshold: float | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Labels and blast probabilities of RGB ``uint8`` images; with ``threshold`` (a model's
    ``metadata["threshold"]["probability"]``) the label is 1 where the probability reaches it."""
    return _classify(pipeline, pipeline.named_steps["features"].transform(images), threshold)


def _classify(pipeline: Pipeline, feats: np.ndarray, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    clf = pipeline.named_steps["classifier"]
    labels = clf.predict(feats)
    proba = clf.predict_proba(feats)[:, 1] if hasattr(clf, "predict_proba") else np.full(len(labels), np.nan)
    if threshold is not None and not np.isnan(proba).any():
        labels = (proba >= threshold).astype(int)
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
    subject: str | None = None  # the person the cell belongs to, where known
    corrected: bool = False  # the neighbourhood correction, within its person, moved its probability

    @property
    def label_name(self) -> str:
        return "" if self.label is None else LABEL_NAMES[self.label]


LABEL_NAMES = {1: "ALL blast", 0: "not a blast"}


def visible_cell_problem(img: np.ndarray) -> str | None:
    """Why an RGB image cannot show a stained cell, or ``None``: a uniform image (all black,
    all white, any single colour) or a grayscale one (no stain colour to segment). Measured on a
    regular subsample of at most about 250,000 pixels, so any image costs a few megabytes.

    >>> visible_cell_problem(np.full((8, 8, 3), (200, 0, 0), np.uint8))
    'a uniform image (every pixel about [200, 0, 0]): no visible cell'
    """
    step = max(1, int(np.ceil(np.sqrt(img.shape[0] * img.shape[1] / 250_000))))
    sample = img[::step, ::step].reshape(-1, 3)
    if float(sample.std(axis=0).max()) < 2.0:
        return f"a uniform image (every pixel about {sample.mean(axis=0).round().astype(int).tolist()}): no visible cell"
    if int(np.ptp(sample.astype(np.int16), axis=1).max()) <= 2:
        return "a grayscale image: no stain colour for the segmentation and the features to read"
    return None


def predict_files(pipeline: Pipeline, paths: list, *, chunk: int = 64, metadata: dict | None = None,
                  neighbours: int | None = None, subjects: dict[str, str] | None = None) -> list[Prediction]:
    """Label image files one by one, at the model's saved threshold (``metadata``): a file that
    cannot be read or is too small gets an
    ``error`` row and the others are still labelled; an image with no visible cell (uniform,
    grayscale, or where segmentation keeps no nucleus), or one unlike the training images
    (:func:`unfamiliar`, with the model's ``metadata``), gets a ``warning`` row naming the file
    and the reason. One row per input, in order. Files are prepared in chunks of ``chunk``.

    Parameters
    ----------
    pipeline : Pipeline
        From :func:`load_model` or :func:`train_image_classifier`.
    paths : list
        Image files.
    chunk : int
        Files prepared at a time.
    metadata : dict, optional
        The model's metadata (its threshold and training statistics).
    neighbours : int, optional
        With ``k > 0``, each file's probability is mixed half and half with those of its ``k``
        most similar files of the same person in this batch
        (:func:`~alllib.learn.neighbours.neighbourhood_correction`, Pan et al. 2019), before the
        threshold. A file whose person is unknown is left as it is (its ``corrected`` is False):
        the correction was measured within a person, and across people it would pull a healthy
        donor's cells toward a patient's. ``None``: the model's own setting
        (``metadata["neighbours"]``, 0 where absent).
    subjects : dict, optional
        Each file's person (as given); by default read from C-NMC file names
        (:func:`~alllib.data.cnmc_subject`).

    Returns
    -------
    list of Prediction
        One row per file, in order: label, probability, or the error or warning.
    """
    extractor = pipeline.named_steps["features"]
    neighbours = int((metadata or {}).get("neighbours") or 0) if neighbours is None else neighbours
    stats = (metadata or {}).get("training_statistics")
    threshold = ((metadata or {}).get("threshold") or {}).get("probability")
    rows = [Prediction(str(p)) for p in paths]
    labelled, features = [], []  # for the neighbourhood correction, once the whole batch is in
    for start in range(0, len(rows), chunk):
        ready = []
        for row in rows[start:start + chunk]:
            try:
                img = read_image(row.image)
                if min(img.shape[:2]) < MIN_SIZE:
                    raise ImageReadError(f"{row.image}: {img.shape[1]}x{img.shape[0]} pixels, too small to hold a "
                                         f"cell (at least {MIN_SIZE}x{MIN_SIZE})")
                problems = [p for p in [visible_cell_problem(img)] if p] or unfamiliar(stats, img)  # one reason is enough
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
            ready.append((row, x, problems))
        if ready:
            feats = extractor.embed([x for _, x, _ in ready])
            labels, proba = _classify(pipeline, feats, threshold)
            far = _distance(fitted_scaler(pipeline.named_steps["classifier"]), feats) if stats else [None] * len(ready)
            for (row, _, problems), label, p, d in zip(ready, labels, proba, far):
                row.label, row.probability = int(label), float(p)
                problems = problems + unfamiliar(stats, distance=d)
                if problems:
                    row.status, row.message = "warning", f"{row.image}: " + "; ".join(problems)
            if neighbours:
                labelled += [row for row, _, _ in ready]
                features.append(feats)
    for row in rows:
        row.subject = subjects.get(row.image) if subjects is not None else cnmc_subject(row.image)
    if neighbours and labelled:
        people = np.array([r.subject or "" for r in labelled], dtype=object)
        names, counts = np.unique(people, return_counts=True)
        known = (people != "") & np.isin(people, names[counts > 1])  # a person with one cell has no neighbour
        feats = np.concatenate(features)[known]
        mine = [r for r, k in zip(labelled, known) if k]
        proba = neighbourhood_correction(feats, np.array([r.probability for r in mine]), k=neighbours, weight=0.5,
                                         groups=people[known]) if mine else []
        for row, p in zip(mine, proba):
            row.probability, row.label, row.corrected = float(p), int(p >= (0.5 if threshold is None else threshold)), True
    return rows

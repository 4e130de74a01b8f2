"""Training an image classifier on a whole dataset, and what it is worth for a new patient.

``train`` (and :func:`train_image_classifier`) fits the pipeline of :mod:`alllib.learn.modelfile`
on every image, says what grouped cross-validation finds for a new patient (:func:`grouped_report`:
by subject for C-NMC, by slide for ALL-IDB2, and across cohorts where a dataset has several),
chooses the decision threshold the same way, and takes the dataset's default settings where it is
not told otherwise (:data:`TRAIN_DEFAULTS`, for C-NMC the choice ``benchmarks/cnmc_specificity.py``
measured and recorded).

>>> THRESHOLDS
('balanced', 'default')
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline

from alllib import __version__
from alllib.augmentation import Augmenter, balance
from alllib.constraints import is_count
from alllib.data import Dataset
from alllib.errors import AlllibError
from alllib.features import BACKBONES, FeatureExtractor, Featurizer, file_sha256
from alllib.learn.classifiers import fit_classifier, refit
from alllib.learn.evaluation import (
    Evaluation,
    Fold,
    Samples,
    cross_validate,
    inner_fold_count,
    score_evaluation,
    split_problem,
)
from alllib.learn.familiarity import fitted_scaler, training_statistics
from alllib.learn.metrics import choose_threshold, person_calls
from alllib.learn.neighbours import neighbourhood_correction

__all__ = ["TrainingError", "calibration_problem", "TRAIN_DEFAULTS", "train_defaults", "train_image_classifier",
           "THRESHOLDS", "REPORTED", "probability_threshold", "grouped_report"]


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
    that :func:`~alllib.learn.predict.predict_files` applies.

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
    if not is_count(neighbours):  # checked before any work
        raise ValueError(f"neighbours must be a whole number >= 0, not {neighbours!r}")
    featurize = Featurizer(backbone, weights=weights, segmentation=segmentation, size=size, progress=progress,
                           seed=seed, cache=cache)
    train = balance(ds, target_per_class, Augmenter(seed=seed)) if target_per_class else ds
    X, y = featurize(train), train.labels
    # the final model is searched on 5 grouped inner folds, as the paper's GridSearchCV (fewer where groups are few)
    clf, grid = fit_classifier(classifier, X, y, groups=train.groups, search=search, cv_splits=5, seed=seed,
                               probability=True)
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
            **({"acquisitions": sorted(map(str, ds.table["acquisition"].dropna().unique()))}
               if "acquisition" in ds.table else {}),
        },
    }
    return pipe, meta


#: How ``train`` sets the decision threshold: ``"balanced"``, the threshold that maximises balanced
#: accuracy on cross-validated decisions, grouped; ``"default"``, the classifier's own (a calibrated
#: probability of one half).
THRESHOLDS = ("balanced", "default")


#: The metrics a model file reports for new patients, in the order they are printed.
REPORTED = ("balanced_accuracy", "sensitivity", "specificity", "weighted_f1", "accuracy", "roc_auc")


def probability_threshold(clf, decision_threshold: float) -> float:
    """The calibrated probability of a blast at a decision value (for an SVM calibrated by Platt's
    sigmoid); a forest's or XGBoost's score is already that probability."""
    if isinstance(clf, CalibratedClassifierCV):
        calibrator = clf.calibrated_classifiers_[0].calibrators[0]
        return float(calibrator.predict(np.array([decision_threshold]))[0])
    return float(decision_threshold)


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
    (its specificity, for C-NMC's normal donors), the pooled out-of-fold errors per class (``errors``:
    what a slide screen's rule is derived from, :class:`~alllib.learn.screening.SlideRule`), the pooled
    out-of-fold decisions' threshold
    for the final model, and the settings. The hyper-parameters were tuned on all of the data,
    which makes the figures somewhat optimistic; chapters 9, 10 and 13 measure honestly. With
    ``cohorts`` (each image's cohort: C-NMC's fold), each cohort is held out in turn instead
    (:func:`~alllib.learn.evaluation.cohort_folds`), and each fold's figures are kept with the
    cohorts it was trained on and scored on. Every person scored gets one call
    (:func:`~alllib.learn.metrics.person_calls`), counted per class in ``people``. With
    ``neighbours``, every held-out decision is first corrected by its most similar held-out images
    of the same group (:func:`~alllib.learn.neighbours.neighbourhood_correction`), as ``predict``
    does within each person.
    """
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.svm import SVC

    from alllib.learn.classifiers import decision_scores

    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {', '.join(THRESHOLDS)}, not {threshold!r}")
    X, y, groups = np.asarray(X), np.asarray(y, int), np.asarray(groups)
    originals = np.ones(len(y), bool) if originals is None else np.asarray(originals, bool)
    if split_problem(y, groups):
        return {"folds": 0, "note": "too few groups per class to cross-validate"}
    default = 0.0 if isinstance(model[-1], SVC) else 0.5  # the decision function's zero, or a probability's half

    def fit(train: Samples, test: Samples, fold: Fold) -> Evaluation:
        test = test.subset(np.flatnonzero(test.table["original"]))  # augmented copies train, never scored
        cut = default
        inner = inner_fold_count(train.labels, train.groups)
        if threshold == "balanced" and inner >= 2:  # chosen on the training side alone
            inner_scores = np.full(len(train), np.nan)
            for a, b in StratifiedGroupKFold(inner, shuffle=True, random_state=fold.seed).split(
                    train.X, train.labels, train.groups):
                inner_scores[b] = _corrected(decision_scores(refit(model, train.X[a], train.labels[a]), train.X[b]),
                                             train.X[b], neighbours, train.groups[b])
            keep = train.table["original"].to_numpy(bool)
            cut = choose_threshold(train.labels[keep], inner_scores[keep], default)
        scores = _corrected(decision_scores(refit(model, train.X, train.labels), test.X), test.X, neighbours,
                            test.groups)
        return score_evaluation("model", test.labels, scores, test.ids, threshold=cut, groups=test.groups,
                                best_params={"threshold": cut})

    samples = Samples.of(X, y, groups, original=originals, **({} if cohorts is None else {"fold": cohorts}))
    result = cross_validate(samples, {"model": fit}, n_splits=n_splits, seed=seed, protocol="grouped report",
                            progress=progress, desc="grouped cross-validation",
                            cohorts=None if cohorts is None else "fold")["model"]
    folds = len(result.evaluations)
    rows, oof, pred_all = [], np.full(len(y), np.nan), np.full(len(y), -1)
    for k, e in enumerate(result.evaluations):
        oof[e.test_ids], pred_all[e.test_ids] = e.scores, e.y_pred
        rows.append({**e.metrics, "threshold": e.best_params["threshold"],
                     **({} if cohorts is None else {"trained on": result.settings["trained_on"][k],
                                                    "scored on": result.settings["held_out"][k],
                                                    "people": person_calls(e.y_true, e.y_pred, e.groups)})})
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
        "people": person_calls(y[scored], pred_all[scored], groups[scored]),
        "errors": {"false_positives": int(np.sum(scored & (y == 0) & (pred_all == 1))),
                   "negatives": int(np.sum(scored & (y == 0))),
                   "false_negatives": int(np.sum(scored & (y == 1) & (pred_all == 0))),
                   "positives": int(np.sum(scored & (y == 1)))},
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


def _corrected(scores: np.ndarray, X: np.ndarray, neighbours: int, groups: np.ndarray) -> np.ndarray:
    """The neighbourhood correction within each group (person), as ``predict`` applies it."""
    return neighbourhood_correction(X, scores, k=neighbours, weight=0.5, groups=groups) if neighbours else scores

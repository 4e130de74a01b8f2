"""Evaluation protocols: the paper's, which leaks, and an honest one that cannot.

**Paper protocol** (:func:`paper_protocol`): balance / augment the *whole* dataset, then split
the augmented set 80/20 by image (stratified), tune on the training part (inner CV by image),
report test metrics (and training metrics, for Table III). Augmented copies of one cell, and
ALL-IDB2's duplicate crops, land on both sides of the split: the test set holds near-copies
of training images.

**Honest protocol** (:func:`honest_protocol`): split the *originals* first by group (the
duplicate group for ALL-IDB2, the patient for C-NMC), augment the training side only, tune with
grouped inner cross-validation, test on untouched originals; repeated (5 times 5-fold by
default, grouped and stratified), with mean and 95 % intervals.

:func:`leak_audit` counts, for any split, the test samples that share a source image or a group
with a training sample. The paper protocol reports its count; the honest protocol's is zero by
construction, and the tests prove it.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, cross_val_score, train_test_split

from alllib.augmentation import Augmenter, balance, transformed
from alllib.data import Dataset
from alllib.learn.classifiers import CLASSIFIERS, fit_classifier, n_jobs, param_grid, predictions
from alllib.learn.evaluation import (
    Evaluation,
    Fold,
    ProtocolResult,
    cross_validate,
    dataset_digest,
    fold_count,
    load_evaluation,
    split_problem,
    store_evaluation,
)
from alllib.learn.metrics import binary_metrics
from alllib.memo import memo_path, recipe, source_digest, with_recipe
from alllib.preprocessing import Macenko

__all__ = ["leak_audit", "paper_protocol", "honest_protocol", "per_group_accuracy", "subject_probe",
           "confound_probe", "stain_probe", "shared_source_example"]

Featurize = Callable[[Dataset], np.ndarray]


def leak_audit(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    """How many test samples share a source image, or a group, with a training sample.

    ``source`` is the original image a sample was made from (its own id for an original);
    ``group`` joins duplicate crops of one cell (ALL-IDB2) or one patient's cells (C-NMC).
    """
    def sources(t):
        return t["source"] if "source" in t.columns else t["id"]

    shared_source = sources(test).isin(set(sources(train)))
    shared_group = test["group"].isin(set(train["group"]))
    n = len(test)
    return {
        "n_test": n,
        "shared_source": int(shared_source.sum()),
        "shared_group": int(shared_group.sum()),
        "fraction_shared_source": float(shared_source.mean()) if n else 0.0,
        "fraction_shared_group": float(shared_group.mean()) if n else 0.0,
    }


def shared_source_example(augmented: Dataset, test_ids, n: int = 5) -> list[int]:
    """Where the paper protocol leaks, shown: the position in ``augmented`` (the set it split, with a
    ``source`` column) of the first test image (of ``test_ids``) that is an augmented copy, then of
    up to ``n`` training images made from the same source. Raises ``ValueError`` where no test
    image is a copy."""
    t = augmented.table.reset_index(drop=True)
    in_test = t["id"].isin(set(test_ids))
    copies = t.index[in_test & t["augmented"]]
    if not len(copies):
        raise ValueError("no test image is an augmented copy: the split leaks no source")
    first = int(copies[0])
    siblings = t.index[(t["source"] == t.loc[first, "source"]) & ~in_test][:n]
    return [first, *map(int, siblings)]


def _check(classifiers: Sequence[str]) -> list[str]:
    classifiers = [classifiers] if isinstance(classifiers, str) else list(classifiers)
    for c in classifiers:
        if c not in CLASSIFIERS:
            raise ValueError(f"unknown classifier {c!r}; choose from {', '.join(CLASSIFIERS)}")
    return classifiers


def _evaluate(name, model, X_test, y_test, ids, leak, grid=None, train=None, keep_model=False):
    pred, scores = predictions(model, X_test)
    train_metrics = None
    if train is not None:
        X_tr, y_tr = train
        train_metrics = binary_metrics(y_tr, *predictions(model, X_tr))
    best = {k.split("__", 1)[1]: v for k, v in model.get_params().items()
            if k.startswith(f"{name}__") and k.split("__", 1)[1] in ("C", "gamma", "kernel")}
    return Evaluation(name, np.asarray(y_test), np.asarray(pred), np.asarray(scores), np.asarray(ids),
                      binary_metrics(y_test, pred, scores), leak, train_metrics, best, grid,
                      model=model if keep_model else None)


def paper_protocol(ds: Dataset, featurize: Featurize, classifiers: Sequence[str] = CLASSIFIERS, *,
                   target_per_class: int | None = 750, augmenter: Augmenter | None = None,
                   test_size: float = 0.2, search: str = "paper", seed: int = 0,
                   keep_models: bool = False, checkpoint=False) -> dict[str, ProtocolResult]:
    """The paper's protocol: augment everything, then split by image (see module docstring).

    ``target_per_class=None`` skips augmentation (the paper's "NoAug" ablation), still split
    by image. Returns one :class:`ProtocolResult` per classifier, all on the same split.

    Parameters
    ----------
    ds : Dataset
        The originals.
    featurize : callable
        ``Dataset -> features``.
    classifiers : sequence of str
        Keys of :data:`~alllib.learn.classifiers.CLASSIFIERS`.
    target_per_class : int or None
        Images per class after augmenting the whole dataset; ``None``: no augmentation.
    augmenter : Augmenter, optional
        How copies are made.
    test_size : float
        The test share of the split by image.
    search : str
        The grid of the inner search.
    seed : int
        Seeds the split, the augmentation and the search.
    keep_models : bool
        Keep each fitted model in its evaluation.
    checkpoint : bool or path
        Keep each classifier's evaluation as it ends (a folder; ``True``: the cache's ``paper-v1``,
        :func:`alllib.memo.memo_path`) and take it from there in a later run with the same data,
        settings, features (their :func:`~alllib.memo.recipe`) and code; never with
        ``keep_models`` (a model file is not a memo).

    Returns
    -------
    dict of str to ProtocolResult
        One result per classifier, one evaluation each, with the leak audit and training metrics.
    """
    classifiers = _check(classifiers)
    augmenter = augmenter or Augmenter(seed=seed)
    full = balance(ds, target_per_class, augmenter) if target_per_class else ds
    X, y = featurize(full), full.labels
    idx = np.arange(len(full))
    train, test = train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
    leak = leak_audit(full.table.iloc[train], full.table.iloc[test])
    settings = {"dataset": ds.name, "n_originals": len(ds), "n_total": len(full), "target_per_class": target_per_class,
                "test_size": test_size, "search": search, "seed": seed, "split": "by image, after augmentation"}
    made = None if keep_models or not checkpoint else recipe({"featurize": featurize, "augmenter": augmenter})
    key = None if made is None else (dataset_digest(ds), made, settings, source_digest())  # once, not per classifier
    out = {}
    for name in classifiers:
        memo = None if key is None else memo_path(checkpoint, "paper", *key, name)
        e = load_evaluation(memo)
        if e is None:
            t0 = time.perf_counter()
            model, grid = fit_classifier(name, X[train], y[train], search=search, seed=seed)
            e = _evaluate(name, model, X[test], y[test], full.ids[test], leak, grid, train=(X[train], y[train]),
                          keep_model=keep_models)
            e.seconds = time.perf_counter() - t0
            store_evaluation(memo, e)
        out[name] = ProtocolResult("paper", name, [e], settings)
    return out


def honest_protocol(ds: Dataset, featurize: Featurize, classifiers: Sequence[str] = CLASSIFIERS, *,
                    target_per_class: int | None = 600, scale_target: bool = False,
                    augmenter: Augmenter | None = None, n_splits: int = 5, n_repeats: int = 5,
                    inner_splits: int = 3, search: str = "paper", seed: int = 0,
                    progress: bool = True, checkpoint=False) -> dict[str, ProtocolResult]:
    """The leak-free protocol: split originals by group, augment the training side only.

    Each of ``n_repeats`` x ``n_splits`` outer folds (``StratifiedGroupKFold``, reshuffled per
    repeat): the training originals are balanced to ``target_per_class`` per class with
    augmented copies (``None``: no augmentation), the classifier is tuned by grouped inner CV
    (``inner_splits`` folds) and scored on the fold's untouched test originals. The default
    target, 600, matches the training size of the paper's 750 + 750 after its 80/20 split.
    With ``scale_target``, ``target_per_class`` is the size for the whole dataset and each fold
    uses its share (training originals / all originals): the paper's augmentation ratio.

    The folds are :func:`~alllib.learn.evaluation.grouped_folds`: never more than the groups of the smaller class; where a
    training side has too few groups for a grouped inner CV, the classifier keeps its default
    parameters (the paper's best) and ``Evaluation.best_params`` says ``{"tuned": False}``.
    ``settings["n_splits"]`` is the number of folds really used.

    Parameters
    ----------
    ds : Dataset
        The originals, with their groups (slides, subjects).
    featurize : callable
        ``Dataset -> features`` (e.g. a :class:`~alllib.features.Featurizer`).
    classifiers : sequence of str
        Keys of :data:`~alllib.learn.classifiers.CLASSIFIERS`.
    target_per_class : int or None
        Images per class on each training side after augmentation; ``None``: none.
    scale_target : bool
        Read ``target_per_class`` for the whole dataset; each fold takes its share.
    augmenter : Augmenter, optional
        How training copies are made.
    n_splits, n_repeats, inner_splits : int
        Outer folds asked for, repeats, inner folds at most.
    search : str
        The grid of the inner search (:func:`~alllib.learn.classifiers.param_grid`).
    seed : int
        The root of every fold's seed.
    progress : bool
        Show a progress bar.
    checkpoint : bool or path
        Keep each fold's fit as it ends and resume from there
        (:func:`~alllib.learn.evaluation.cross_validate`); only where ``featurize`` has a
        :func:`~alllib.memo.recipe` (a :class:`~alllib.features.Featurizer` has).

    Returns
    -------
    dict of str to ProtocolResult
        One result per classifier, one evaluation per fold of every repeat.
    """
    classifiers = _check(classifiers)
    augmenter = augmenter or Augmenter(seed=seed)
    sides: dict[int, tuple] = {}  # per fold: the augmented training side's features, shared by the classifiers

    def prepared(train_ds: Dataset, test_ds: Dataset, fold: Fold) -> tuple:
        if fold.index not in sides:
            sides.clear()
            if target_per_class:
                target = round(target_per_class * len(train_ds) / len(ds)) if scale_target else target_per_class
                train_ds = balance(train_ds, max(target, int(np.bincount(train_ds.labels).max())), augmenter)
            sides[fold.index] = (train_ds, featurize(train_ds), featurize(test_ds),
                                 leak_audit(train_ds.table, test_ds.table))
        return sides[fold.index]

    def fitter(name: str):
        def fit(train_ds: Dataset, test_ds: Dataset, fold: Fold) -> Evaluation:
            train_ds, X_tr, X_te, leak = prepared(train_ds, test_ds, fold)
            t0 = time.perf_counter()
            model, grid = fit_classifier(name, X_tr, train_ds.labels, groups=train_ds.groups, search=search,
                                         cv_splits=inner_splits, seed=fold.seed)
            e = _evaluate(name, model, X_te, test_ds.labels, test_ds.ids, leak, grid)
            e.seconds = time.perf_counter() - t0
            if grid is None and param_grid(name, search):  # too few groups to tune (fit_classifier)
                e.best_params["tuned"] = False
            return e

        return with_recipe(fit, "honest_protocol", classifier=name, featurize=featurize, augmenter=augmenter,
                           target_per_class=target_per_class, scale_target=scale_target, inner_splits=inner_splits,
                           search=search)

    settings = {"target_per_class": target_per_class, "scale_target": scale_target, "inner_splits": inner_splits,
                "search": search, "split": "by group, before augmentation"}
    return cross_validate(ds, {name: fitter(name) for name in classifiers}, n_splits=n_splits, n_repeats=n_repeats,
                          seed=seed, protocol="honest", settings=settings, progress=progress,
                          desc="honest protocol folds x classifiers", checkpoint=checkpoint)


def per_group_accuracy(result: ProtocolResult, ds: Dataset, column: str = "group") -> pd.DataFrame:
    """Accuracy on each group's (for C-NMC: each subject's) test cells, pooled over folds and
    repeats: columns ``label, n_test, correct, accuracy``. For the paper protocol's test
    originals and copies alike, a test id's group is that of its source image."""
    lookup = ds.table.set_index("id")[[column, "label"]]
    rows = []
    for e in result.evaluations:
        src = pd.Series(e.test_ids).str.split("~aug").str[0]
        rows.append(pd.DataFrame({column: lookup.loc[src, column].to_numpy(), "label": e.y_true,
                                  "correct": e.y_true == e.y_pred}))
    t = pd.concat(rows, ignore_index=True)
    out = t.groupby(column).agg(label=("label", "first"), n_test=("correct", "size"), correct=("correct", "sum"))
    out["accuracy"] = out["correct"] / out["n_test"]
    return out.sort_values(["label", "accuracy"])


def subject_probe(X: np.ndarray, ds: Dataset, *, column: str = "patient", n_splits: int = 5, seed: int = 0,
                  within_class: bool = True) -> pd.DataFrame:
    """How well the features tell *which subject* a cell comes from (why splitting by image
    inflates: a test cell's subject is also in training).

    A standardised multinomial logistic regression predicts ``column`` from ``X`` with
    stratified ``n_splits``-fold CV by image (every subject on both sides, as in the paper's
    split). One row per task (all subjects; with ``within_class`` the ALL patients among
    themselves, and the normal subjects among themselves): accuracy, balanced accuracy, the
    chance levels (the largest subject's share; 1 / subjects), the number of subjects, and how
    many subjects were left out because they have a single cell (one cell cannot be both
    trained on and tested; a task left with fewer than two subjects is skipped).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    subjects, labels = ds.table[column].to_numpy(), ds.labels
    tasks = [("all subjects", np.ones(len(ds), bool))]
    if within_class:
        tasks += [("ALL patients only", labels == 1), ("normal subjects only", labels == 0)]
    rows = []
    for task, keep in tasks:
        counts = pd.Series(subjects[keep]).value_counts()
        lonely = counts.index[counts < 2]  # a subject with one cell cannot be both trained on and tested
        keep = keep & ~np.isin(subjects, lonely)
        s, counts = subjects[keep], counts[counts >= 2]
        if len(counts) < 2:
            continue
        folds = min(n_splits, int(counts.min()))
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))
        pred = cross_val_predict(model, X[keep], s, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                                 n_jobs=n_jobs())  # the folds' fits are independent: the same result, sooner
        rows.append({"task": task, "subjects": len(counts), "cells": int(keep.sum()), "accuracy": float(np.mean(pred == s)),
                     "chance (largest subject)": float(counts.max() / keep.sum()),
                     "balanced accuracy": float(balanced_accuracy_score(s, pred)), "chance (1 / subjects)": 1 / len(counts),
                     "subjects left out (one cell)": len(lonely)})
    return pd.DataFrame(rows).set_index("task")


def confound_probe(X: np.ndarray, ds: Dataset, target: str = "acquisition", *, among_label: int | None = 1,
                   groups: str = "slide", seed: int = 0) -> dict:
    """How well the features tell ``target`` (ALL-IDB2's acquisition set-up) apart among the
    images of one class (``among_label``; ``None``: all), with a logistic-regression probe
    scored by balanced accuracy in cross-validation grouped by ``groups`` (no slide on both
    sides). Far above one half means that the features carry the acquisition, so a classifier
    can learn it instead of the cell when the label is confounded with it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    keep = np.ones(len(ds), bool) if among_label is None else ds.labels == among_label
    t = ds.table[keep]
    values = t[target].astype(str).to_numpy()
    kinds, y = np.unique(values, return_inverse=True)
    g = t[groups].astype(str).to_numpy()
    if len(kinds) < 2 or split_problem(y, g):
        raise ValueError(f"{target}: needs two values with at least 2 {groups}s each among the chosen images")
    folds = fold_count(y, g, 5)  # the probe's own (outer) folds
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.1))
    scores = cross_val_score(probe, X[keep], y, groups=g, scoring="balanced_accuracy",
                             cv=StratifiedGroupKFold(folds, shuffle=True, random_state=seed))
    return {"target": target, "among": "all images" if among_label is None else f"label {among_label}",
            "images": int(keep.sum()), "values": ", ".join(f"{k} ({(values == k).sum()})" for k in kinds),
            "folds": folds, "balanced accuracy": float(scores.mean()), "chance": 0.5 if len(kinds) == 2 else 1 / len(kinds)}




def stain_probe(ds: Dataset, featurize: Featurize, normaliser=None, *, seed: int = 0) -> pd.DataFrame:
    """:func:`subject_probe` on ``featurize``'s features of ``ds`` as they are (``"frozen"``) and after
    stain normalisation (``"after Macenko"``, or ``normaliser``'s name: anything with
    ``transform_image`` and ``recipe``, by default :class:`~alllib.preprocessing.Macenko`): how much
    of a subject's signature is colour, one block of rows per ``features``."""
    normaliser = normaliser or Macenko()
    after = transformed(ds, normaliser.transform_image, normaliser.recipe)
    return pd.concat({"frozen": subject_probe(featurize(ds), ds, seed=seed),
                      f"after {type(normaliser).__name__}": subject_probe(featurize(after), ds, seed=seed)},
                     names=["features"])

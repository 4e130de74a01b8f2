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
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, cross_val_score, train_test_split
from tqdm import tqdm

from .augmentation import Augmenter, balance
from .classifiers import CLASSIFIERS, decision_scores, fit_classifier, n_jobs, param_grid
from .data import Dataset
from .metrics import METRICS, binary_metrics, mean_interval, wilson_interval

__all__ = ["Evaluation", "ProtocolResult", "leak_audit", "paper_protocol", "honest_protocol", "outer_splits",
           "split_problem",
           "compare_protocols", "per_group_accuracy", "confound_probe", "layers_table", "layers_study", "subject_probe", "Study", "protocol_study"]

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


@dataclass
class Evaluation:
    """One fitted classifier scored on one test set."""

    classifier: str
    y_true: np.ndarray
    y_pred: np.ndarray
    scores: np.ndarray
    test_ids: np.ndarray
    metrics: dict
    leak: dict
    train_metrics: dict | None = None
    best_params: dict = field(default_factory=dict)
    grid: pd.DataFrame | None = None
    fold: int | None = None
    model: object | None = field(default=None, repr=False)
    seconds: float = 0.0  # fitting, tuning and scoring time


@dataclass
class ProtocolResult:
    """Every evaluation of one classifier under one protocol (one, or one per fold)."""

    protocol: str
    classifier: str
    evaluations: list[Evaluation]
    settings: dict

    def fold_metrics(self) -> pd.DataFrame:
        return pd.DataFrame([{m: e.metrics[m] for m in METRICS} for e in self.evaluations])

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """Per metric: the value (mean over folds) and its interval.

        One test set: Wilson interval for accuracy, sensitivity and specificity, none for the
        others. Several folds: Student-t interval of the per-fold values.
        """
        rows = []
        if len(self.evaluations) == 1:
            e = self.evaluations[0]
            m = e.metrics
            counts = {"accuracy": (m["tp"] + m["tn"], len(e.y_true)), "sensitivity": (m["tp"], m["tp"] + m["fn"]),
                      "specificity": (m["tn"], m["tn"] + m["fp"])}
            for name in METRICS:
                lo = hi = np.nan
                if name in counts and counts[name][1]:
                    lo, hi = wilson_interval(*counts[name], confidence)
                rows.append({"metric": name, "value": m[name], "low": lo, "high": hi})
        else:
            folds = self.fold_metrics()
            for name in METRICS:
                mean, lo, hi = mean_interval(folds[name], confidence)
                rows.append({"metric": name, "value": mean, "low": max(0.0, lo), "high": min(1.0, hi)})
        return pd.DataFrame(rows).set_index("metric")

    @property
    def leaks(self) -> int:
        """Test samples sharing a source image with the training side, summed over folds."""
        return sum(e.leak["shared_source"] for e in self.evaluations)

    @property
    def group_leaks(self) -> int:
        return sum(e.leak["shared_group"] for e in self.evaluations)

    def pooled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(y_true, y_pred, scores)`` of all folds' test predictions (one repeat's folds
        cover each original once)."""
        return tuple(np.concatenate([getattr(e, a) for e in self.evaluations]) for a in ("y_true", "y_pred", "scores"))


def _check(classifiers: Sequence[str]) -> list[str]:
    classifiers = [classifiers] if isinstance(classifiers, str) else list(classifiers)
    for c in classifiers:
        if c not in CLASSIFIERS:
            raise ValueError(f"unknown classifier {c!r}; choose from {', '.join(CLASSIFIERS)}")
    return classifiers


def _evaluate(name, model, X_test, y_test, ids, leak, grid=None, train=None, fold=None, keep_model=False):
    pred = model.predict(X_test)
    scores = decision_scores(model, X_test)
    train_metrics = None
    if train is not None:
        X_tr, y_tr = train
        train_metrics = binary_metrics(y_tr, model.predict(X_tr), decision_scores(model, X_tr))
    best = {k.split("__", 1)[1]: v for k, v in model.get_params().items()
            if k.startswith(f"{name}__") and k.split("__", 1)[1] in ("C", "gamma", "kernel")}
    return Evaluation(name, np.asarray(y_test), np.asarray(pred), np.asarray(scores), np.asarray(ids),
                      binary_metrics(y_test, pred, scores), leak, train_metrics, best, grid, fold,
                      model if keep_model else None)


def paper_protocol(ds: Dataset, featurize: Featurize, classifiers: Sequence[str] = CLASSIFIERS, *,
                   target_per_class: int | None = 750, augmenter: Augmenter | None = None,
                   test_size: float = 0.2, search: str = "paper", seed: int = 0,
                   keep_models: bool = False) -> dict[str, ProtocolResult]:
    """The paper's protocol: augment everything, then split by image (see module docstring).

    ``target_per_class=None`` skips augmentation (the paper's "NoAug" ablation), still split
    by image. Returns one :class:`ProtocolResult` per classifier, all on the same split.
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
    out = {}
    for name in classifiers:
        t0 = time.perf_counter()
        model, grid = fit_classifier(name, X[train], y[train], search=search, seed=seed)
        e = _evaluate(name, model, X[test], y[test], full.ids[test], leak, grid, train=(X[train], y[train]),
                      keep_model=keep_models)
        e.seconds = time.perf_counter() - t0
        out[name] = ProtocolResult("paper", name, [e], settings)
    return out


def _groups_per_class(labels, groups) -> dict[int, int]:
    """How many distinct groups each class has."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    return {int(c): pd.Series(groups[labels == c]).nunique() for c in np.unique(labels)}


def split_problem(labels: np.ndarray, groups: np.ndarray) -> str | None:
    """Why the data cannot be split by group, or ``None``: a single class, or a class with fewer
    than 2 groups (one normal subject of a partial C-NMC download cannot be both tested and
    trained on).

    >>> split_problem([0, 0, 1, 1], ["H1", "H1", "2", "3"])
    'class 0 has 1 group (subject/cell); a split by group needs at least 2 per class, so one can be tested while another trains'
    """
    per_class = _groups_per_class(labels, groups)
    if len(per_class) < 2:
        return "the dataset holds a single class; a classifier needs both"
    lonely = [c for c, n in per_class.items() if n < 2]
    if lonely:
        return (f"class {lonely[0]} has {per_class[lonely[0]]} group (subject/cell); a split by group needs "
                "at least 2 per class, so one can be tested while another trains")
    return None


def outer_splits(labels: np.ndarray, groups: np.ndarray, n_splits: int) -> int:
    """The number of grouped outer folds the data allow: ``n_splits``, or fewer where a class has
    fewer groups (C-NMC's fold_1 has 3 normal subjects, so at most 3 folds). Data that cannot be
    split by group at all (:func:`split_problem`): :class:`ValueError`."""
    problem = split_problem(labels, groups)
    if problem:
        raise ValueError(problem)
    return min(n_splits, *_groups_per_class(labels, groups).values())


def honest_protocol(ds: Dataset, featurize: Featurize, classifiers: Sequence[str] = CLASSIFIERS, *,
                    target_per_class: int | None = 600, scale_target: bool = False,
                    augmenter: Augmenter | None = None, n_splits: int = 5, n_repeats: int = 5,
                    inner_splits: int = 3, search: str = "paper", seed: int = 0,
                    progress: bool = True) -> dict[str, ProtocolResult]:
    """The leak-free protocol: split originals by group, augment the training side only.

    Each of ``n_repeats`` x ``n_splits`` outer folds (``StratifiedGroupKFold``, reshuffled per
    repeat): the training originals are balanced to ``target_per_class`` per class with
    augmented copies (``None``: no augmentation), the classifier is tuned by grouped inner CV
    (``inner_splits`` folds) and scored on the fold's untouched test originals. The default
    target, 600, matches the training size of the paper's 750 + 750 after its 80/20 split.
    With ``scale_target``, ``target_per_class`` is the size for the whole dataset and each fold
    uses its share (training originals / all originals): the paper's augmentation ratio.

    Folds never outnumber the groups of the smaller class (:func:`outer_splits`); where a
    training side has too few groups for a grouped inner CV, the classifier keeps its default
    parameters (the paper's best) and ``Evaluation.best_params`` says ``{"tuned": False}``.
    ``settings["n_splits"]`` is the number of folds really used.
    """
    classifiers = _check(classifiers)
    augmenter = augmenter or Augmenter(seed=seed)
    y_all, groups = ds.labels, ds.groups
    used = outer_splits(y_all, groups, n_splits)
    settings = {"dataset": ds.name, "n_originals": len(ds), "target_per_class": target_per_class,
                "scale_target": scale_target, "n_splits": used, "n_splits_asked": n_splits, "n_repeats": n_repeats,
                "inner_splits": inner_splits, "search": search, "seed": seed, "split": "by group, before augmentation"}
    evals: dict[str, list[Evaluation]] = {c: [] for c in classifiers}
    bar = tqdm(total=used * n_repeats, desc="honest protocol folds", disable=not progress)
    fold = 0
    for r in range(n_repeats):
        outer = StratifiedGroupKFold(n_splits=used, shuffle=True, random_state=seed + r)
        for train, test in outer.split(np.zeros(len(ds)), y_all, groups):
            train_ds, test_ds = ds.subset(train), ds.subset(test)
            if target_per_class:
                target = round(target_per_class * len(train) / len(ds)) if scale_target else target_per_class
                biggest = int(np.bincount(train_ds.labels).max())
                train_ds = balance(train_ds, max(target, biggest), augmenter)
            X_tr, y_tr = featurize(train_ds), train_ds.labels
            X_te, y_te = featurize(test_ds), test_ds.labels
            leak = leak_audit(train_ds.table, test_ds.table)
            inner = min(inner_splits, *_groups_per_class(y_tr, train_ds.groups).values())
            for name in classifiers:
                t0 = time.perf_counter()
                model, grid = fit_classifier(name, X_tr, y_tr, groups=train_ds.groups,
                                             search=search if inner >= 2 else "none", cv_splits=max(inner, 2),
                                             seed=seed + fold)
                e = _evaluate(name, model, X_te, y_te, test_ds.ids, leak, grid, fold=fold)
                e.seconds = time.perf_counter() - t0
                if inner < 2 and param_grid(name, search):
                    e.best_params["tuned"] = False
                evals[name].append(e)
            fold += 1
            bar.update(1)
    bar.close()
    return {name: ProtocolResult("honest", name, evals[name], settings) for name in classifiers}


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


def compare_protocols(paper: dict[str, ProtocolResult], honest: dict[str, ProtocolResult],
                      metric: str = "accuracy") -> pd.DataFrame:
    """One row per classifier: paper-protocol value, honest mean and interval, inflation, and the
    leak counts (test samples sharing a source image or a group with the training side; the
    honest count adds both and is zero by construction)."""
    rows = []
    for name in paper:
        p = paper[name].summary().loc[metric]
        h = honest[name].summary().loc[metric] if name in honest else None
        rows.append({
            "classifier": name,
            f"paper protocol {metric}": p["value"],
            f"honest {metric}": np.nan if h is None else h["value"],
            "honest 95% low": np.nan if h is None else h["low"],
            "honest 95% high": np.nan if h is None else h["high"],
            "inflation (points)": np.nan if h is None else 100 * (p["value"] - h["value"]),
            "paper leaks (test sharing a source)": paper[name].leaks,
            "paper leaks (test sharing a group)": paper[name].group_leaks,
            "honest leaks": np.nan if h is None else honest[name].leaks + honest[name].group_leaks,
        })
    return pd.DataFrame(rows).set_index("classifier")


class _TimedFeaturize:
    """A featurize callable that adds up the seconds spent in it."""

    def __init__(self, featurize: Featurize):
        self.featurize, self.seconds = featurize, 0.0

    def __call__(self, ds: Dataset) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return self.featurize(ds)
        finally:
            self.seconds += time.perf_counter() - t0


@dataclass
class Study:
    """The paper's protocol and the honest one on one dataset, each with and without the
    paper's augmentation, plus the subject probe: everything the C-NMC chapter shows."""

    ds: Dataset
    paper: dict[str, ProtocolResult]
    paper_noaug: dict[str, ProtocolResult]
    honest: dict[str, ProtocolResult]
    honest_noaug: dict[str, ProtocolResult]
    probe: pd.DataFrame | None
    timings: pd.DataFrame

    def comparison(self, metric: str = "accuracy") -> pd.DataFrame:
        """:func:`compare_protocols` of the augmented runs (the paper's headline setting)."""
        return compare_protocols(self.paper, self.honest, metric)


def protocol_study(ds: Dataset, featurize: Featurize, classifiers: Sequence[str] = CLASSIFIERS, *,
                   target_per_class: int, augmenter: Augmenter | None = None, search: str = "paper",
                   n_splits: int = 5, n_repeats: int = 1, inner_splits: int = 3, probe_column: str | None = "patient",
                   seed: int = 0, progress: bool = True) -> Study:
    """Run the four protocol settings and the subject probe, timing each stage.

    The paper protocol balances the whole ``ds`` to ``target_per_class`` per class (at least the
    larger class) and splits by image; the honest one splits by group first and grows each
    training side by the same ratio (``scale_target``). ``timings`` has one row per stage:
    feature extraction (reading, augmenting and running the network, cached features read back)
    and each classifier's fitting and tuning, in seconds.
    """
    timed = _TimedFeaturize(featurize)
    target = max(int(target_per_class), int(np.bincount(ds.labels).max()))
    rows, runs = [], {}
    for key, label, run in (
        ("paper", "paper protocol, augmented", lambda: paper_protocol(
            ds, timed, classifiers, target_per_class=target, augmenter=augmenter, search=search, seed=seed)),
        ("paper_noaug", "paper protocol, no augmentation", lambda: paper_protocol(
            ds, timed, classifiers, target_per_class=None, search=search, seed=seed)),
        ("honest", "honest protocol, augmented", lambda: honest_protocol(
            ds, timed, classifiers, target_per_class=target, scale_target=True, augmenter=augmenter,
            n_splits=n_splits, n_repeats=n_repeats, inner_splits=inner_splits, search=search, seed=seed,
            progress=progress)),
        ("honest_noaug", "honest protocol, no augmentation", lambda: honest_protocol(
            ds, timed, classifiers, target_per_class=None, n_splits=n_splits, n_repeats=n_repeats,
            inner_splits=inner_splits, search=search, seed=seed, progress=progress)),
    ):
        before = timed.seconds
        runs[key] = run()
        rows.append({"stage": f"{label}: features", "seconds": timed.seconds - before})
        for name, res in runs[key].items():
            rows.append({"stage": f"{label}: {name}", "seconds": sum(e.seconds for e in res.evaluations)})
    probe = None
    if probe_column is not None:
        t0 = time.perf_counter()
        probe = subject_probe(timed(ds), ds, column=probe_column, seed=seed)
        rows.append({"stage": "subject probe", "seconds": time.perf_counter() - t0})
    return Study(ds, runs["paper"], runs["paper_noaug"], runs["honest"], runs["honest_noaug"], probe,
                 pd.DataFrame(rows).set_index("stage"))


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
    folds = min(5, *(len(np.unique(g[y == k])) for k in range(len(kinds))))
    if len(kinds) < 2 or folds < 2:
        raise ValueError(f"{target}: needs two values with at least 2 {groups}s each among the chosen images")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.1))
    scores = cross_val_score(probe, X[keep], y, groups=g, scoring="balanced_accuracy",
                             cv=StratifiedGroupKFold(folds, shuffle=True, random_state=seed))
    return {"target": target, "among": "all images" if among_label is None else f"label {among_label}",
            "images": int(keep.sum()), "values": ", ".join(f"{k} ({(values == k).sum()})" for k in kinds),
            "folds": folds, "balanced accuracy": float(scores.mean()), "chance": 0.5 if len(kinds) == 2 else 1 / len(kinds)}


def layers_table(evaluations: dict[str, tuple[ProtocolResult, Dataset]]) -> pd.DataFrame:
    """One row per evaluation (name -> its result and the dataset it ran on): images, groups,
    accuracy, balanced accuracy and the balanced accuracy's interval, as fractions. For setting
    the paper protocol, the duplicate-grouped, the slide-grouped and the same-acquisition
    honest estimates side by side."""
    rows = []
    for name, (result, ds) in evaluations.items():
        s = result.summary()
        rows.append({"evaluation": name, "images": len(ds), "groups": int(ds.table["group"].nunique()),
                     "accuracy": s.loc["accuracy", "value"], "balanced accuracy": s.loc["balanced_accuracy", "value"],
                     "balanced 95% low": s.loc["balanced_accuracy", "low"],
                     "balanced 95% high": s.loc["balanced_accuracy", "high"]})
    return pd.DataFrame(rows).set_index("evaluation")


def layers_study(ds: Dataset, featurize: Featurize, *, paper_target: int | None, honest_target: int | None,
                 acquisition: str = "2592x1944", n_splits: int = 5, n_repeats: int = 1, search: str = "paper",
                 seed: int = 0, paper: ProtocolResult | None = None,
                 honest: ProtocolResult | None = None) -> tuple[pd.DataFrame, dict]:
    """ALL-IDB2's layers of structure for one feature setting, with the SVM: the paper protocol,
    the honest protocol split by duplicate group (``dup_group``), split by slide (``group``),
    and split by slide on the crops of one ``acquisition`` only; then the acquisition probe
    among the blast crops. Returns ``(layers_table(...), confound_probe(...))``. ``paper`` and
    ``honest`` reuse SVM results already computed on ``ds`` with the same settings."""
    run = dict(target_per_class=honest_target, n_splits=n_splits, n_repeats=n_repeats, search=search, seed=seed,
               progress=False)
    paper = paper or paper_protocol(ds, featurize, ["svm"], target_per_class=paper_target, search=search,
                                    seed=seed)["svm"]
    honest = honest or honest_protocol(ds, featurize, ["svm"], **run)["svm"]
    by_duplicates = ds.regroup("dup_group")
    one = ds.subset(np.flatnonzero(ds.table["acquisition"] == acquisition))
    table = layers_table({
        "the paper protocol (split by image after augmenting)": (paper, ds),
        "the honest protocol split by duplicate group": (
            honest_protocol(by_duplicates, featurize, ["svm"], **run)["svm"], by_duplicates),
        "the honest protocol split by slide": (honest, ds),
        f"the honest protocol on {acquisition} slides only, split by slide": (
            honest_protocol(one, featurize, ["svm"], **run)["svm"], one),
    })
    return table, confound_probe(featurize(ds), ds, "acquisition", among_label=1, seed=seed)

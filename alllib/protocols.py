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

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split
from tqdm import tqdm

from .augmentation import Augmenter, balance
from .classifiers import CLASSIFIERS, decision_scores, fit_classifier
from .data import Dataset
from .metrics import METRICS, binary_metrics, mean_interval, wilson_interval

__all__ = ["Evaluation", "ProtocolResult", "leak_audit", "paper_protocol", "honest_protocol", "compare_protocols"]

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
        model, grid = fit_classifier(name, X[train], y[train], search=search, seed=seed)
        e = _evaluate(name, model, X[test], y[test], full.ids[test], leak, grid, train=(X[train], y[train]),
                      keep_model=keep_models)
        out[name] = ProtocolResult("paper", name, [e], settings)
    return out


def honest_protocol(ds: Dataset, featurize: Featurize, classifiers: Sequence[str] = CLASSIFIERS, *,
                    target_per_class: int | None = 600, augmenter: Augmenter | None = None,
                    n_splits: int = 5, n_repeats: int = 5, inner_splits: int = 3, search: str = "paper",
                    seed: int = 0, progress: bool = True) -> dict[str, ProtocolResult]:
    """The leak-free protocol: split originals by group, augment the training side only.

    Each of ``n_repeats`` x ``n_splits`` outer folds (``StratifiedGroupKFold``, reshuffled per
    repeat): the training originals are balanced to ``target_per_class`` per class with
    augmented copies (``None``: no augmentation), the classifier is tuned by grouped inner CV
    (``inner_splits`` folds) and scored on the fold's untouched test originals. The default
    target, 600, matches the training size of the paper's 750 + 750 after its 80/20 split.
    """
    classifiers = _check(classifiers)
    augmenter = augmenter or Augmenter(seed=seed)
    y_all, groups = ds.labels, ds.groups
    n_groups = min(pd.Series(groups[y_all == c]).nunique() for c in (0, 1))
    if n_groups < n_splits:
        raise ValueError(f"{ds.name}: a class has only {n_groups} groups, fewer than n_splits={n_splits}")
    settings = {"dataset": ds.name, "n_originals": len(ds), "target_per_class": target_per_class,
                "n_splits": n_splits, "n_repeats": n_repeats, "inner_splits": inner_splits, "search": search,
                "seed": seed, "split": "by group, before augmentation"}
    evals: dict[str, list[Evaluation]] = {c: [] for c in classifiers}
    bar = tqdm(total=n_splits * n_repeats, desc="honest protocol folds", disable=not progress)
    fold = 0
    for r in range(n_repeats):
        outer = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed + r)
        for train, test in outer.split(np.zeros(len(ds)), y_all, groups):
            train_ds, test_ds = ds.subset(train), ds.subset(test)
            if target_per_class:
                biggest = int(np.bincount(train_ds.labels).max())
                train_ds = balance(train_ds, max(target_per_class, biggest), augmenter)
            X_tr, y_tr = featurize(train_ds), train_ds.labels
            X_te, y_te = featurize(test_ds), test_ds.labels
            leak = leak_audit(train_ds.table, test_ds.table)
            for name in classifiers:
                model, grid = fit_classifier(name, X_tr, y_tr, groups=train_ds.groups, search=search,
                                             cv_splits=inner_splits, seed=seed + fold)
                evals[name].append(_evaluate(name, model, X_te, y_te, test_ds.ids, leak, grid, fold=fold))
            fold += 1
            bar.update(1)
    bar.close()
    return {name: ProtocolResult("honest", name, evals[name], settings) for name in classifiers}


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

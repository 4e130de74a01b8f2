"""Classifiers on deep features: SVM (the paper's choice), random forest and XGBoost (step 5).

Each classifier is a scikit-learn ``Pipeline`` of a ``StandardScaler`` and the estimator, so
scaling is learnt on the training side only, whatever the protocol. The SVM is tuned with the
paper's grid (Table II):

* ``C`` in 0.1, 1, 10, 100, 1000
* ``gamma`` in 1, 0.1, 0.01, 0.001, 0.0001
* ``kernel`` rbf or poly

(the paper's best: C = 10, gamma = 0.01, rbf). Random forest and XGBoost use the documented
defaults below; the paper does not tune them.

>>> clf = make_classifier("rf", seed=0)
>>> [name for name, _ in clf.steps]
['scale', 'rf']
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from alllib.constraints import Options, check_param, positive_int
from alllib.learn.evaluation import inner_fold_count
from alllib.learn.svm_search import fit_svc, svc_decision, svm_grid_search

__all__ = ["CLASSIFIERS", "SEARCHES", "SVM_GRID", "make_classifier", "param_grid", "fit_classifier", "refit",
           "decision_scores", "predictions", "n_jobs"]

CLASSIFIERS = ("svm", "rf", "xgboost")
#: The grid searches :func:`param_grid` knows: the paper's, a small one, none.
SEARCHES = ("paper", "small", "none")
#: The paper's GridSearchCV grid for the SVM (Table II).
SVM_GRID = {"C": [0.1, 1, 10, 100, 1000], "gamma": [1, 0.1, 0.01, 0.001, 0.0001], "kernel": ["rbf", "poly"]}


def n_jobs() -> int:
    """Worker processes for grid searches and forests: every core (``$ALLLIB_JOBS``, a positive
    integer, overrides)."""
    return positive_int("ALLLIB_JOBS", os.cpu_count() or 1, "worker processes")


def make_classifier(name: str, seed: int = 0, **params) -> Pipeline:
    """``StandardScaler`` + the named estimator (``"svm"``, ``"rf"`` or ``"xgboost"``).

    Defaults: SVM ``C=10, gamma=0.01, kernel="rbf"`` (the paper's best); random forest 300
    trees; XGBoost 300 rounds of depth-4 trees, learning rate 0.1, row and column subsampling
    0.8 / 0.5. ``params`` override the estimator's parameters. ``seed`` fixes every random draw.
    """
    if name == "svm":
        est = SVC(**{"C": 10, "gamma": 0.01, "kernel": "rbf", "random_state": seed, **params})
    elif name == "rf":
        est = RandomForestClassifier(**{"n_estimators": 300, "n_jobs": n_jobs(), "random_state": seed, **params})
    elif name == "xgboost":
        from xgboost import XGBClassifier

        est = XGBClassifier(**{"n_estimators": 300, "max_depth": 4, "learning_rate": 0.1, "subsample": 0.8,
                               "colsample_bytree": 0.5, "tree_method": "hist", "n_jobs": n_jobs(),
                               "random_state": seed, "eval_metric": "logloss", **params})
    else:
        raise ValueError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")
    return Pipeline([("scale", StandardScaler()), (name, est)])


def param_grid(name: str, search: str = "paper") -> dict:
    """The grid searched for ``name``: ``"paper"`` (the SVM's Table II grid; none for RF and
    XGBoost, as in the paper), ``"small"`` (a 4-point SVM grid around the paper's best, for
    quick runs) or ``"none"``."""
    check_param("search", search, [Options(SEARCHES)])
    if name != "svm" or search == "none":
        return {}
    grid = SVM_GRID if search == "paper" else {"C": [1, 10], "gamma": [0.01, 0.001], "kernel": ["rbf"]}
    return {f"svm__{k}": v for k, v in grid.items()}


def fit_classifier(name: str, X: np.ndarray, y: np.ndarray, *, groups=None, search: str = "paper",
                   cv_splits: int | None = None, seed: int = 0, probability: bool = False,
                   class_weight: str | None = None):
    """Fit (and, where a grid is given, tune) a classifier on the training side only.

    With ``groups``, the inner cross-validation is ``StratifiedGroupKFold``: no sample's
    duplicates or augmented copies are both fitted and scored in one inner fold. Without
    ``groups``, it is ``StratifiedKFold`` by image, as the paper did. The SVM's grid is searched
    by :func:`alllib.learn.svm_search.svm_grid_search`, which scores exactly the models that
    ``GridSearchCV`` would, many times faster. Returns the refitted best
    pipeline and the grid's results table (``None`` without a grid). ``probability`` wraps the
    final SVM in ``CalibratedClassifierCV`` (Platt scaling on the same folds) for
    ``predict_proba``.

    Parameters
    ----------
    name : str
        ``"svm"``, ``"rf"`` or ``"xgboost"``.
    X, y : array
        Training features and labels.
    groups : array, optional
        Training groups, for a grouped inner cross-validation.
    search : str
        The grid (:func:`param_grid`); ``"none"``: the defaults.
    cv_splits : int, optional
        Inner folds asked for. With ``groups``, the engine's one inner rule decides
        (:func:`~alllib.learn.evaluation.inner_fold_count`): at most ``cv_splits`` (3 where not
        given), never more than the smaller class has groups, and below 2 nothing is searched (the
        defaults are kept; the probabilities are still calibrated on 2 grouped folds). Without
        ``groups``, by image: ``cv_splits``, or 5 where not given (the paper's ``GridSearchCV``).
    seed : int
        Seeds the folds and the classifier.
    probability : bool
        Calibrate the SVM for probabilities.
    class_weight : {None, "balanced"}
        ``"balanced"``: each class weighs the same in the fit (the SVM's and the forest's
        ``class_weight``, XGBoost's ``scale_pos_weight``), whatever its number of images.

    Returns
    -------
    (Pipeline, pandas.DataFrame or None)
        The refitted best pipeline, and the grid's results.
    """
    X, y = np.asarray(X), np.asarray(y, int)
    if class_weight not in (None, "balanced"):
        raise ValueError(f"class_weight must be None or 'balanced', not {class_weight!r}")
    weights = {}
    if class_weight and name == "xgboost":
        weights = {"scale_pos_weight": float((y == 0).sum() / max((y == 1).sum(), 1))}
    elif class_weight:
        weights = {"class_weight": "balanced"}
    base = make_classifier(name, seed, **weights)
    grid = param_grid(name, search)
    if groups is not None:
        inner = inner_fold_count(y, groups, *([] if cv_splits is None else [cv_splits]))
        grid = grid if inner >= 2 else {}
        cv = StratifiedGroupKFold(n_splits=max(inner, 2), shuffle=True, random_state=seed)
    else:
        cv = StratifiedKFold(n_splits=5 if cv_splits is None else cv_splits, shuffle=True, random_state=seed)
    table = None
    if grid or (probability and name == "svm"):
        splits = list(cv.split(X, y, groups))
    if grid and name == "svm":  # exact, with one Gram matrix per fold (alllib.learn.svm_search)
        best, table = svm_grid_search(X, y, splits, {k.split("__", 1)[1]: v for k, v in grid.items()},
                                      svc_params=base.named_steps["svm"].get_params(), n_jobs=n_jobs())
        base = clone(base).set_params(**{f"svm__{k}": v for k, v in best.items()})
    elif grid:
        gs = GridSearchCV(base, grid, cv=splits, scoring="accuracy", n_jobs=n_jobs(), refit=False)
        gs.fit(X, y)
        base = clone(base).set_params(**gs.best_params_)
        cols = [c for c in gs.cv_results_ if c.startswith("param_")]
        cols += ["mean_test_score", "std_test_score", "rank_test_score"]
        table = pd.DataFrame(gs.cv_results_)[cols].rename(columns=lambda c: c.split("__", 1)[-1])
        table = table.sort_values("rank_test_score", kind="stable").reset_index(drop=True)
    if probability and name == "svm":  # Platt scaling on held-out folds, then refit on everything
        return CalibratedClassifierCV(base, method="sigmoid", cv=splits, ensemble=False).fit(X, y), table
    return refit(base, X, y), table


def refit(model: Pipeline, X: np.ndarray, y: np.ndarray) -> Pipeline:
    """``clone(model).fit(X, y)`` for a scaler + classifier pipeline; an SVM's the same fit through
    one Gram matrix (:func:`~alllib.learn.svm_search.fit_svc`), as every SVM of the library is fitted."""
    if isinstance(model[-1], SVC):
        scaler = clone(model[0]).fit(X)
        svc = fit_svc(scaler.transform(X), y, **model[-1].get_params())
        return Pipeline([(model.steps[0][0], scaler), (model.steps[-1][0], svc)])
    return clone(model).fit(X, y)


def decision_scores(model, X: np.ndarray) -> np.ndarray:
    """A score per sample that grows with the blast likelihood (for ROC curves): the SVM's
    decision function (through BLAS, :func:`~alllib.learn.svm_search.svc_decision`), the forests'
    predicted probability of class 1."""
    if _is_svm(model):
        return svc_decision(model[-1], model[:-1].transform(X))
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)[:, 1]
    return model.decision_function(X)


def predictions(model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(model.predict(X), decision_scores(model, X))`` with one pass for an SVM: its label is
    the side of zero its decision value lies on (libsvm's own rule, ``classes_[1]`` from 0 up),
    so the kernel values are made once, not twice.

    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(40, 3)), np.repeat([0, 1], 20)
    >>> model = make_classifier("svm").fit(X, y)
    >>> bool((predictions(model, X)[0] == model.predict(X)).all())
    True
    """
    scores = decision_scores(model, X)
    if _is_svm(model) and len(model.classes_) == 2:
        return model.classes_[(scores >= 0).astype(int)], scores
    return model.predict(X), scores


def _is_svm(model) -> bool:
    return isinstance(model, Pipeline) and isinstance(model[-1], SVC)

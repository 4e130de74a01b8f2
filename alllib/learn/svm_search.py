"""The SVM grid search, exact and fast: one Gram matrix per fold, reused for every C and gamma.

The paper tunes its SVM over 50 points (Table II: five ``C``, five ``gamma``, ``rbf`` or
``poly``) with 5-fold cross-validation. Done plainly (``GridSearchCV`` over a ``Pipeline`` of
``StandardScaler`` and ``SVC``), each of the 250 fits recomputes kernel values from the
features; on C-NMC's 12,800 training images of 1,280 features that takes hours on two cores.

Every kernel of the grid is a function of two matrices that do not depend on ``C`` or
``gamma``: the inner products ``G = Z Z'`` and the squared distances ``D`` of the fold's
standardised features ``Z``::

    rbf:  K = exp(-gamma * D)            poly: K = (gamma * G + coef0) ** degree

:func:`svm_grid_search` computes ``G`` once per fold with one BLAS call (in float64, as libsvm
does), derives each kernel with a few array operations and fits ``SVC(kernel="precomputed")``.
The scaler is fitted on each fold's training side, as the pipeline does, so the search scores
exactly the models that ``GridSearchCV`` scores: the same support vectors, decision values
equal to rounding (the tests check 1e-6) and the same table of scores and best parameters.
:func:`fit_svc` fits the final model the same way and returns a plain ``SVC``.

>>> import numpy as np
>>> from sklearn.model_selection import StratifiedKFold
>>> rng = np.random.default_rng(0)
>>> X, y = rng.normal(size=(60, 5)), np.repeat([0, 1], 30)
>>> X[y == 1] += 1.0
>>> splits = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
>>> best, table = svm_grid_search(X, y, splits, {"C": [1, 10], "gamma": [0.1], "kernel": ["rbf"]})
>>> sorted(best), len(table)
(['C', 'gamma', 'kernel'], 2)
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import ParameterGrid
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from tqdm import tqdm

__all__ = ["svm_grid_search", "fit_svc", "svc_decision", "fold_kernels", "kernel_from_gram", "KERNEL_BUDGET"]

#: The most memory (bytes) that training kernels of different (kernel, gamma) may take at once in
#: :func:`svm_grid_search`; beyond it the threads share one kernel.
KERNEL_BUDGET = 2**30


def _scaled(X: np.ndarray, train: np.ndarray, test: np.ndarray, scale: bool) -> tuple[np.ndarray, np.ndarray]:
    """Both sides of a fold in float64, standardised by a scaler fitted on the training rows
    only and applied in the features' own dtype, exactly as the ``Pipeline`` feeds ``SVC``."""
    X_tr, X_te = X[train], X[test]
    if scale:
        scaler = StandardScaler().fit(X_tr)
        X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    return np.asarray(X_tr, np.float64), np.asarray(X_te, np.float64)


def fold_kernels(X: np.ndarray, train: np.ndarray, test: np.ndarray, *, scale: bool = True):
    """Inner products of one fold: ``(G_train, G_test, norms_train, norms_test)`` in float64,
    on features standardised with the training rows' scaler (``scale``)."""
    Z_tr, Z_te = _scaled(X, train, test, scale)
    return Z_tr @ Z_tr.T, Z_te @ Z_tr.T, np.einsum("ij,ij->i", Z_tr, Z_tr), np.einsum("ij,ij->i", Z_te, Z_te)


def kernel_from_gram(gram: np.ndarray, norms_a: np.ndarray, norms_b: np.ndarray, kernel: str, gamma: float,
                     degree: int = 3, coef0: float = 0.0, *, inplace: bool = False) -> np.ndarray:
    """The ``rbf`` or ``poly`` kernel matrix from inner products ``gram`` (rows a, columns b)
    and the squared norms of both sides, in libsvm's own formulas. One new matrix, or none with
    ``inplace`` (``gram`` is overwritten)."""
    if kernel not in ("rbf", "poly", "linear"):
        raise ValueError(f"kernel must be 'rbf', 'poly' or 'linear' for the precomputed search, not {kernel!r}")
    out = gram if inplace else np.empty_like(gram)
    if kernel == "rbf":  # exp(-gamma * (|a|^2 + |b|^2 - 2 a.b))
        np.multiply(gram, -2.0, out=out)
        out += norms_a[:, None]
        out += norms_b[None, :]
        np.maximum(out, 0.0, out=out)
        out *= -gamma
        np.exp(out, out=out)
    elif kernel == "poly":  # (gamma * a.b + coef0) ** degree
        np.multiply(gram, gamma, out=out)
        if coef0:
            out += coef0
        np.power(out, degree, out=out)
    elif not inplace:
        out[...] = gram
    return out


def fit_svc(X: np.ndarray, y: np.ndarray, *, C: float, gamma: float, kernel: str, **svc_params) -> SVC:
    """``SVC(C=C, gamma=gamma, kernel=kernel, **svc_params).fit(X, y)``, solved on a kernel
    matrix made with one BLAS call: a plain, fitted ``SVC`` (it predicts, pickles and inspects as
    usual) with the same support vectors and decision function as the plain fit.

    libsvm's own fit recomputes kernel rows from the features as it goes; at 12,800 images of
    1,280 features that alone takes minutes.
    """
    Z = np.ascontiguousarray(X, dtype=np.float64)  # what SVC.fit itself converts X to
    norms = np.einsum("ij,ij->i", Z, Z)
    K = kernel_from_gram(Z @ Z.T, norms, norms, kernel, gamma, int(svc_params.get("degree", 3)),
                         float(svc_params.get("coef0", 0.0)), inplace=True)
    pre = SVC(kernel="precomputed", C=C, **svc_params).fit(K, y)
    del K
    svc = SVC(C=C, gamma=gamma, kernel=kernel, **svc_params)
    svc.__dict__.update({k: v for k, v in vars(pre).items() if k.endswith("_") or k.startswith("_")})
    svc.support_vectors_ = Z[pre.support_]
    svc._gamma, svc.shape_fit_, svc.n_features_in_ = float(gamma), Z.shape, Z.shape[1]
    return svc


def svc_decision(svc: SVC, Z: np.ndarray, *, chunk_mb: int = 64) -> np.ndarray:
    """A fitted two-class ``svc``'s ``decision_function`` on the rows ``Z`` (already scaled, as the
    pipeline hands them on), with its kernel values made by BLAS, ``chunk_mb`` of them at a time.

    libsvm computes every kernel value of a prediction in its own loop, on one core: at 12,800
    images and thousands of support vectors, two minutes a call. This is the same sum,
    ``sum_i a_i K(s_i, z) + b``, in libsvm's formulas (:func:`kernel_from_gram`), equal to
    ``svc.decision_function`` to rounding (the tests check 1e-8). Kernels other than ``rbf``, ``poly``
    and ``linear``, and more than two classes, go to ``svc.decision_function`` itself.
    """
    if svc.kernel not in ("rbf", "poly", "linear") or len(svc.classes_) != 2 or not hasattr(svc, "support_vectors_"):
        return svc.decision_function(Z)
    Z = np.ascontiguousarray(Z, dtype=np.float64)  # what SVC.decision_function converts to
    sv, a, b = svc.support_vectors_, svc.dual_coef_[0], float(svc.intercept_[0])
    sv_norms = np.einsum("ij,ij->i", sv, sv)
    step = max(1, chunk_mb * 2**20 // (8 * max(len(sv), 1)))
    out = np.empty(len(Z))
    for s in range(0, len(Z), step):
        z = Z[s:s + step]
        k = kernel_from_gram(z @ sv.T, np.einsum("ij,ij->i", z, z), sv_norms, svc.kernel, float(svc._gamma),
                             int(svc.degree), float(svc.coef0), inplace=True)
        out[s:s + step] = k @ a + b
    return out


def _predict_from_columns(svc: SVC, k_columns: np.ndarray, columns: np.ndarray, n_train: int) -> np.ndarray:
    """``svc.predict(K)`` for a precomputed-kernel ``svc``, given only the columns ``columns``
    of the test kernel ``K`` (they hold at least its support vectors). Two classes: libsvm's
    rule on the public attributes, ``classes_[1]`` where the decision value is ``>= 0``."""
    if len(svc.classes_) != 2:
        full = np.zeros((len(k_columns), n_train))
        full[:, columns] = k_columns
        return svc.predict(full)
    decision = k_columns[:, np.searchsorted(columns, svc.support_)] @ svc.dual_coef_[0] + svc.intercept_[0]
    return svc.classes_[(decision >= 0).astype(int)]


def svm_grid_search(X: np.ndarray, y: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]], grid: dict, *,
                    svc_params: dict | None = None, scale: bool = True, n_jobs: int = 1, scoring: str = "accuracy",
                    progress: bool = False) -> tuple[dict, pd.DataFrame]:
    """Score every point of ``grid`` (keys ``C``, ``gamma``, ``kernel``) by ``scoring``
    (``"accuracy"`` or ``"balanced_accuracy"``) over ``splits``, as
    ``GridSearchCV(Pipeline([StandardScaler(), SVC()]), grid, scoring=scoring, refit=False)``
    would, and return ``(best_params, table)``.

    ``table`` has ``C, gamma, kernel, mean_test_score, std_test_score, rank_test_score`` and
    ``mean_fit_time`` (seconds), ranked like ``GridSearchCV`` (ties go to
    the earlier grid point). ``svc_params`` are the other ``SVC`` parameters (``degree``,
    ``coef0``, ``tol``, ``class_weight``...). ``n_jobs`` threads work at once (numpy and libsvm
    release the GIL): on different kernels of a fold, each holding its own kernel matrix, where
    they fit in :data:`KERNEL_BUDGET`; beyond it, on the C values of one kernel, which they
    share. At 12,800 images (inner folds of 10,240) that holds the Gram matrix of the fold and
    one kernel, 1.7 GB, not one more kernel per thread.
    """
    if scoring not in ("accuracy", "balanced_accuracy"):
        raise ValueError(f"scoring must be 'accuracy' or 'balanced_accuracy', not {scoring!r}")
    score = {"accuracy": lambda t, p: float(np.mean(p == t)), "balanced_accuracy": balanced_accuracy_score}[scoring]
    svc_params = dict(svc_params or {})
    for k in ("C", "gamma", "kernel"):
        svc_params.pop(k, None)
    degree, coef0 = int(svc_params.get("degree", 3)), float(svc_params.get("coef0", 0.0))
    points = list(ParameterGrid({k: list(v) for k, v in grid.items()}))
    for p in points:
        if set(p) != {"C", "gamma", "kernel"}:
            raise ValueError(f"the grid must have exactly the keys C, gamma and kernel, not {sorted(p)}")
        if not isinstance(p["gamma"], (int, float)):
            raise ValueError(f"gamma must be a number for the precomputed search, not {p['gamma']!r}")
    X, y = np.asarray(X), np.asarray(y)
    scores = np.full((len(points), len(splits)), np.nan)
    fit_seconds = np.zeros_like(scores)
    kernels = sorted({(p["kernel"], float(p["gamma"])) for p in points})
    bar = tqdm(total=len(points) * len(splits), desc="SVM grid (precomputed kernels)", disable=not progress)

    # libsvm's row cache only saves copying from a precomputed matrix; a small one is as fast
    # and does not change the solution
    fit_params = {**svc_params, "cache_size": min(float(svc_params.get("cache_size", 200)), 50.0)}

    def fit_one(i, k_tr, y_tr, f):
        t0 = time.perf_counter()
        model = SVC(kernel="precomputed", C=points[i]["C"], **fit_params).fit(k_tr, y_tr)
        fit_seconds[i, f] = time.perf_counter() - t0
        return model

    def one_kernel(f, kernel, gamma, g_tr, g_te, n_tr, n_te, y_tr, y_te, pool=None):
        """Every C of one (kernel, gamma) on fold f: the training kernel while fitting (its fits
        on ``pool``'s threads, which share it, where a pool is given), then the test kernel on the
        support vectors' columns only (the only ones a decision function reads) while scoring."""
        todo = [i for i, p in enumerate(points) if p["kernel"] == kernel and float(p["gamma"]) == gamma]
        k_tr = kernel_from_gram(g_tr, n_tr, n_tr, kernel, gamma, degree, coef0)
        fit = partial(fit_one, k_tr=k_tr, y_tr=y_tr, f=f)
        models = dict(zip(todo, pool.map(fit, todo) if pool else map(fit, todo)))
        del k_tr
        columns = np.unique(np.concatenate([m.support_ for m in models.values()]))
        k_te = kernel_from_gram(g_te[:, columns], n_te, n_tr[columns], kernel, gamma, degree, coef0, inplace=True)
        for i in todo:
            scores[i, f] = score(y_te, _predict_from_columns(models[i], k_te, columns, len(n_tr)))
            bar.update(1)

    with ThreadPoolExecutor(max(1, n_jobs)) as pool:
        for f, (train, test) in enumerate(splits):
            Z_tr, Z_te = _scaled(X, train, test, scale)
            g_tr, g_te = Z_tr @ Z_tr.T, Z_te @ Z_tr.T
            n_tr, n_te = np.einsum("ij,ij->i", Z_tr, Z_tr), np.einsum("ij,ij->i", Z_te, Z_te)
            del Z_tr, Z_te
            args = (g_tr, g_te, n_tr, n_te, y[train], y[test])
            if max(1, n_jobs) * g_tr.nbytes <= KERNEL_BUDGET:  # a kernel per thread
                for job in [pool.submit(one_kernel, f, kernel, gamma, *args) for kernel, gamma in kernels]:
                    job.result()
            else:  # one kernel at a time, its C values on the threads
                for kernel, gamma in kernels:
                    one_kernel(f, kernel, gamma, *args, pool=pool)
            del g_tr, g_te, args
    bar.close()
    means, stds = np.average(scores, axis=1), np.std(scores, axis=1)
    ranks = rankdata(-means, method="min").astype(np.int32)
    table = pd.DataFrame({"C": [p["C"] for p in points], "gamma": [p["gamma"] for p in points],
                          "kernel": [p["kernel"] for p in points], "mean_test_score": means,
                          "std_test_score": stds, "rank_test_score": ranks,
                          "mean_fit_time": fit_seconds.mean(axis=1)})
    best = dict(points[int(np.argmin(ranks))])
    return best, table.sort_values("rank_test_score", kind="stable").reset_index(drop=True)

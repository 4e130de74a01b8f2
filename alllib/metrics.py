r"""Metrics, confidence intervals and McNemar's test (the paper's step 6).

With blasts as the positive class (label 1) and the confusion counts TP, TN, FP, FN:

.. math::

   \text{accuracy} = \frac{TP + TN}{TP + TN + FP + FN}, \quad
   \text{sensitivity} = \frac{TP}{TP + FN}, \quad
   \text{specificity} = \frac{TN}{TN + FP},

   \text{precision} = \frac{TP}{TP + FP}, \quad
   F_1 = \frac{2\,\text{precision}\cdot\text{sensitivity}}{\text{precision} + \text{sensitivity}}, \quad
   \text{balanced accuracy} = \tfrac12(\text{sensitivity} + \text{specificity}).

The C-NMC-2019 challenge ranked entries by the *weighted* F1: the F1 of each class (blasts and
normal cells in turn as the positive class) weighted by the class's share of the test set.

>>> m = binary_metrics([1, 1, 0, 0], [1, 0, 0, 0])
>>> m["accuracy"], m["sensitivity"], m["specificity"]
(0.75, 0.5, 1.0)
"""
from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.metrics import confusion_matrix, roc_auc_score

__all__ = [
    "METRICS",
    "binary_metrics",
    "wilson_interval",
    "bootstrap_interval",
    "mean_interval",
    "mcnemar",
]

#: The metrics reported everywhere in the book, in this order.
METRICS = ("accuracy", "balanced_accuracy", "specificity", "sensitivity", "precision", "f1", "roc_auc", "weighted_f1")


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def binary_metrics(y_true, y_pred, scores=None) -> dict:
    """Every metric of :data:`METRICS` plus the confusion counts ``tp, tn, fp, fn``.

    ``scores`` (higher = more likely a blast) gives ROC AUC; without it, or with a single class
    in ``y_true``, ROC AUC is NaN. A ratio with a zero denominator is NaN, never a made-up 0.
    """
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and of equal length, got {y_true.shape} and {y_pred.shape}")
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    sens, spec, prec = _ratio(tp, tp + fn), _ratio(tn, tn + fp), _ratio(tp, tp + fp)
    auc = float("nan")
    if scores is not None and len(np.unique(y_true)) == 2:
        auc = float(roc_auc_score(y_true, np.asarray(scores, float)))
    return {
        "accuracy": _ratio(tp + tn, len(y_true)),
        "balanced_accuracy": (sens + spec) / 2,
        "specificity": spec,
        "sensitivity": sens,
        "precision": prec,
        "f1": _ratio(2 * prec * sens, prec + sens) if not np.isnan(prec) else float("nan"),
        "roc_auc": auc,
        "weighted_f1": _weighted_f1(tp, tn, fp, fn),
        "tp": int(tp), "tn": int(tn), "fp": int(fp), "fn": int(fn),
    }


def _weighted_f1(tp: int, tn: int, fp: int, fn: int) -> float:
    """Each class's F1 weighted by its support (a class absent from the truth weighs nothing)."""
    n = tp + tn + fp + fn
    blasts = (tp + fn) * 2 * tp / (2 * tp + fp + fn) if tp + fn else 0.0
    normal = (tn + fp) * 2 * tn / (2 * tn + fp + fn) if tn + fp else 0.0
    return _ratio(blasts + normal, n)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; sensible at 0 % and 100 % (unlike the normal one).

    >>> lo, hi = wilson_interval(52, 52)
    >>> round(lo, 3), hi
    (0.931, 1.0)
    """
    if n <= 0:
        raise ValueError("n must be positive")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, not {successes}")
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def bootstrap_interval(y_true, y_pred, scores=None, metric: str = "accuracy", n_boot: int = 2000,
                       confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of any metric of :func:`binary_metrics` (test samples resampled)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y_true), len(y_true))
        s = None if scores is None else np.asarray(scores)[idx]
        values.append(binary_metrics(y_true[idx], y_pred[idx], s)[metric])
    values = np.array(values, float)
    values = values[~np.isnan(values)]
    a = (1 - confidence) / 2
    return float(np.quantile(values, a)), float(np.quantile(values, 1 - a))


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of per-fold scores: ``(mean, low, high)``.

    Folds of repeated cross-validation share training data, so this interval is somewhat too
    narrow; the book says so where it uses it.
    """
    v = np.asarray(values, float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if len(v) == 1 or v.std() == 0:
        return m, m, m
    half = stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return m, float(m - half), float(m + half)


def mcnemar(y_true, pred_a, pred_b) -> dict:
    """McNemar's test: do two classifiers err on the same test set at different rates?

    Counts ``b`` (A right, B wrong) and ``c`` (A wrong, B right). Exact two-sided binomial
    p-value when ``b + c < 25``, else the chi-squared statistic with continuity correction.
    """
    y_true, a, b_ = (np.asarray(v, int) for v in (y_true, pred_a, pred_b))
    ra, rb = a == y_true, b_ == y_true
    b, c = int(np.sum(ra & ~rb)), int(np.sum(~ra & rb))
    if b + c == 0:
        return {"b": b, "c": c, "statistic": 0.0, "p_value": 1.0, "method": "no discordant pairs"}
    if b + c < 25:
        p = float(min(1.0, 2 * stats.binom.cdf(min(b, c), b + c, 0.5)))
        return {"b": b, "c": c, "statistic": float(min(b, c)), "p_value": p, "method": "exact binomial"}
    chi2 = (abs(b - c) - 1) ** 2 / (b + c)
    return {"b": b, "c": c, "statistic": float(chi2), "p_value": float(stats.chi2.sf(chi2, 1)),
            "method": "chi-squared, continuity-corrected"}

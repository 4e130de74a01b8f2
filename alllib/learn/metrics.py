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
    "person_call",
    "person_calls",
    "mean_interval",
    "mcnemar",
    "grouped_bootstrap",
    "metric_from_counts",
    "corrected_resampled_ttest",
    "detectable_difference",
    "choose_threshold",
]

#: The metrics reported everywhere in the book, in this order.
METRICS = ("accuracy", "balanced_accuracy", "specificity", "sensitivity", "precision", "f1", "roc_auc", "weighted_f1")


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def binary_metrics(y_true, y_pred, scores=None) -> dict:
    """Every metric of :data:`METRICS` plus the confusion counts ``tp, tn, fp, fn``.

    ``scores`` (higher = more likely a blast) gives ROC AUC; without it, or with a single class
    in ``y_true``, ROC AUC is NaN. A ratio with a zero denominator is NaN, never a made-up 0.

    Parameters
    ----------
    y_true, y_pred : array-like
        True and predicted labels (1: ALL).
    scores : array-like, optional
        Decision values or probabilities (higher: more likely ALL).

    Returns
    -------
    dict
        Every metric of :data:`METRICS` and the counts ``tp, tn, fp, fn``.
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


def person_call(blasts: int, cells: int) -> str:
    """One call per person from their cells: ``"ALL"`` where the 95 % Wilson interval of the share
    of cells called blasts lies wholly above one half, ``"normal"`` where it lies wholly below,
    ``"uncertain"`` otherwise (a subject is either a patient or a healthy donor).

    >>> person_call(30, 40), person_call(5, 40), person_call(22, 40)
    ('ALL', 'normal', 'uncertain')
    """
    low, high = wilson_interval(blasts, cells)
    return "ALL" if low > 0.5 else "normal" if high < 0.5 else "uncertain"


def person_calls(y_true, y_pred, groups, names: dict[int, str] | None = None) -> dict:
    """One call per person (group) from their cells (:func:`person_call`), counted per class
    (``names``, by default ``{1: "ALL", 0: "normal"}``): people, called right, left uncertain,
    called the other class, and how many had 3 cells or fewer (always uncertain: no share of so
    few cells can be told from one half at 95 %). A person's class is that of their cells.

    >>> y = np.array([1, 1, 1, 1, 0, 0]); g = np.array(["a"] * 4 + ["b"] * 2)
    >>> person_calls(y, y, g)["ALL"], person_calls(y, y, g)["normal"]["uncertain"]
    ({'people': 1, 'called right': 1, 'uncertain': 0, 'called wrong': 0, 'with 3 cells or fewer': 0}, 1)
    """
    y, pred, groups = np.asarray(y_true, int), np.asarray(y_pred, int), np.asarray(groups)
    out = {}
    for label, word in (names or {1: "ALL", 0: "normal"}).items():
        calls = [(person_call(int(pred[groups == g].sum()), int((groups == g).sum())), int((groups == g).sum()))
                 for g in np.unique(groups[y == label])]
        out[word] = {"people": len(calls), "called right": sum(c == word for c, _ in calls),
                     "uncertain": sum(c == "uncertain" for c, _ in calls),
                     "called wrong": sum(c not in (word, "uncertain") for c, _ in calls),
                     "with 3 cells or fewer": sum(n <= 3 for _, n in calls)}
    return out


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


def metric_from_counts(tp, tn, fp, fn, metric: str):
    """``metric`` from (possibly weighted, possibly arrays of) confusion counts: accuracy,
    balanced accuracy, sensitivity, specificity or weighted F1."""
    with np.errstate(invalid="ignore", divide="ignore"):
        n = tp + tn + fp + fn
        sens, spec = tp / (tp + fn), tn / (tn + fp)
        if metric == "accuracy":
            return (tp + tn) / n
        if metric == "sensitivity":
            return sens
        if metric == "specificity":
            return spec
        if metric == "balanced_accuracy":
            return (sens + spec) / 2
        if metric == "weighted_f1":
            blasts = np.where(tp + fn > 0, (tp + fn) * 2 * tp / (2 * tp + fp + fn), 0.0)
            normal = np.where(tn + fp > 0, (tn + fp) * 2 * tn / (2 * tn + fp + fn), 0.0)
            return (blasts + normal) / n
    raise ValueError(f"grouped bootstrap supports accuracy, balanced_accuracy, sensitivity, specificity and "
                     f"weighted_f1, not {metric!r}")


def grouped_bootstrap(y_true, groups, predictions: list, metric: str = "balanced_accuracy", *, n_boot: int = 2000,
                      seed: int = 0) -> np.ndarray:
    """Bootstrap distribution of ``metric`` when whole groups (C-NMC subjects, ALL-IDB2 slides)
    are resampled, the unit of evidence when images of one group are alike: each draw resamples
    the groups of each class with replacement (so both classes stay present; a group's class is
    its most frequent label) and computes the metric on every image of the drawn groups.

    ``predictions`` are several label vectors of the same images (the repeats of a repeated
    cross-validation); each draw scores every one on the same groups and averages them, so that
    all repeats count. Returns ``n_boot`` values (the cluster bootstrap of Davison and Hinkley,
    1997, section 3.8; Field and Welsh, 2007).

    >>> y, g = np.array([1, 1, 0, 0, 1, 0]), np.array(["a", "a", "b", "b", "c", "d"])
    >>> d = grouped_bootstrap(y, g, [y.copy()], "accuracy", n_boot=50)
    >>> bool((d == 1).all()), len(d)
    (True, 50)
    """
    y = np.asarray(y_true, int)
    groups = np.asarray(groups)
    preds = [np.asarray(p, int) for p in predictions]
    names, codes = np.unique(groups, return_inverse=True)
    label_of = np.array([np.bincount(y[codes == k], minlength=2).argmax() for k in range(len(names))])
    # confusion counts of each group under each prediction: (repeats, groups, 4)
    counts = np.stack([np.stack([np.bincount(codes, weights=((y == a) & (p == b)).astype(float), minlength=len(names))
                                 for a, b in ((1, 1), (0, 0), (0, 1), (1, 0))], axis=1) for p in preds])
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_boot, len(names)))
    for c in (0, 1):
        members = np.flatnonzero(label_of == c)
        if len(members):
            draws = rng.integers(0, len(members), (n_boot, len(members)))
            np.add.at(weights, (np.arange(n_boot)[:, None], members[draws]), 1.0)
    drawn = np.einsum("bg,rgk->brk", weights, counts)  # (boot, repeats, 4)
    values = metric_from_counts(drawn[..., 0], drawn[..., 1], drawn[..., 2], drawn[..., 3], metric)
    return np.nanmean(values, axis=1)


def corrected_resampled_ttest(differences, n_train: float, n_test: float) -> dict:
    """Nadeau and Bengio's corrected resampled t-test (Machine Learning 52, 2003) of per-fold
    differences between two methods scored on the same folds of a (repeated) cross-validation.

    The folds share training data, so their differences are correlated and the plain t-test is
    too confident; the correction inflates the variance to ``(1 / J + n_test / n_train) s^2``
    for ``J`` folds. Returns the mean difference, ``t``, the degrees of freedom (``J - 1``) and
    the two-sided p-value (NaN with fewer than two folds).

    >>> round(corrected_resampled_ttest([0.02, 0.03, 0.01, 0.02, 0.02], 80, 20)["p_value"], 4)
    0.0135
    """
    d = np.asarray(differences, float)
    d = d[~np.isnan(d)]
    j = len(d)
    if j < 2:
        return {"mean": float(d.mean()) if j else float("nan"), "t": float("nan"), "df": j - 1, "p_value": float("nan")}
    var = (1 / j + n_test / n_train) * d.var(ddof=1)
    if var == 0:
        t = 0.0 if d.mean() == 0 else float(np.sign(d.mean()) * np.inf)
    else:
        t = float(d.mean() / np.sqrt(var))
    return {"mean": float(d.mean()), "t": t, "df": j - 1, "p_value": float(2 * stats.t.sf(abs(t), j - 1))}


def detectable_difference(standard_error: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true difference that a two-sided test at level ``alpha`` would find with
    probability ``power``, given the standard error of the estimated difference (normal
    approximation: ``(z_{1 - alpha / 2} + z_{power}) * se``, 2.80 standard errors by default).

    >>> round(detectable_difference(0.01), 4)
    0.028
    """
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * standard_error)


def choose_threshold(y: np.ndarray, scores: np.ndarray, default: float) -> float:
    """The cut on ``scores`` (label 1 where ``score >= cut``) that maximises balanced accuracy on
    ``y``; among equal ones, the nearest to ``default``.

    >>> choose_threshold(np.array([0, 0, 1, 1]), np.array([-2.0, 0.5, 1.0, 3.0]), 0.0)
    0.75
    """
    y, scores = np.asarray(y), np.asarray(scores, float)
    pos, neg = np.sort(scores[y == 1]), np.sort(scores[y == 0])
    if not len(pos) or not len(neg):
        return float(default)
    s = np.unique(scores)
    cuts = np.concatenate([[s[0] - 1.0], (s[1:] + s[:-1]) / 2, [s[-1] + 1.0]])
    balanced = (1 - np.searchsorted(pos, cuts, side="left") / len(pos) + np.searchsorted(neg, cuts) / len(neg)) / 2
    best = np.flatnonzero(balanced >= balanced.max() - 1e-12)
    return float(cuts[best[np.argmin(np.abs(cuts[best] - default))]])

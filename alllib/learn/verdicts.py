r"""Verdicts on paired comparisons that hold when nothing differs: "better", "worse" or "could not tell".

Two pipelines scored on the same test images of a grouped cross-validation (C-NMC subjects,
ALL-IDB2 slides) differ by chance in two ways: the groups that happen to be tested, and the
training sides the folds happen to draw. Each test here guards against one:

* :func:`sign_flip_test`, a paired permutation test over the **groups**: under "no difference"
  the two pipelines' predictions of a whole group could have come from either, so the labels
  "A" and "B" are swapped group by group (all repeats of a group together) and the metric's
  difference recomputed. It conditions on the groups seen, so three normal donors do not make it
  overconfident the way a bootstrap over donors is (which can redraw that class in only ten
  ways); but it takes the groups of one fold as independent while they share that fold's fitted
  models, so alone it says "better" too often where the folds' models differ by chance (up to
  8 % of null runs in the simulation);
* Nadeau and Bengio's corrected resampled t-test over the **folds**
  (:func:`~alllib.learn.metrics.corrected_resampled_ttest`), which widens the variance for the
  training data the folds share.

:func:`paired_comparison` asks both: its p-value is the larger of the two (an intersection-union
test, level alpha whenever each test is; measured well below it), and :func:`holm` controls the
family-wise error over a chapter's candidates. The rule was chosen by measurement: :func:`simulate_verdicts` plays
grouped cross-validations of two candidates whose expected error is the same (and, for power,
one whose error is not) with the library's own :func:`~alllib.learn.evaluation.grouped_folds`,
and counts how often each rule of :data:`RULES` says "better" or "worse"
(``benchmarks/verdict_calibration.py`` prints the table; ``tests/test_verdicts.py`` holds the
rule to at most 5 % within its Monte Carlo error).

>>> holm([0.01, 0.04, 0.03])
[0.03, 0.06, 0.06]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from alllib.learn.metrics import corrected_resampled_ttest, grouped_bootstrap, metric_from_counts

__all__ = ["sign_flip_test", "paired_comparison", "holm", "verdict", "RULES", "NullSetting", "SETTINGS",
           "simulate_verdicts"]


def _group_counts(y, codes, n_groups: int, pred) -> np.ndarray:
    """Confusion counts (tp, tn, fp, fn) of each group: an array (groups, 4)."""
    pred = np.asarray(pred, int)
    return np.stack([np.bincount(codes, weights=((y == a) & (pred == b)).astype(float), minlength=n_groups)
                     for a, b in ((1, 1), (0, 0), (0, 1), (1, 0))], axis=1)


def _flips(n_groups: int, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """Swap patterns (rows of 0/1 per group): every pattern where there are at most ``n_perm``,
    else ``n_perm`` random ones; the identity first."""
    if 2 ** n_groups <= n_perm:
        codes = np.arange(2 ** n_groups)[:, None]
        return ((codes >> np.arange(n_groups)) & 1).astype(float)
    return np.vstack([np.zeros(n_groups), rng.integers(0, 2, (n_perm, n_groups))]).astype(float)


def sign_flip_test(y_true, groups, preds_a: list, preds_b: list, metric: str = "balanced_accuracy", *,
                   n_perm: int = 5000, seed: int = 0) -> dict:
    """Paired permutation test of ``metric(A) - metric(B)``, swapping whole groups.

    ``preds_a`` and ``preds_b`` are label vectors of the same images, one per repeat of the
    cross-validation; a swap exchanges A's and B's predictions of one group in every repeat at
    once. With 2^G at most ``n_perm`` every swap pattern is enumerated (an exact test), else ``n_perm`` patterns are drawn
    and ``p = (1 + k) / (1 + n_perm)``. Returns the observed
    ``difference`` (mean over repeats), the two-sided ``p_value`` and the number of ``patterns``.

    >>> y = np.array([1] * 20 + [0] * 20); g = np.repeat(np.arange(8), 5)
    >>> sign_flip_test(y, g, [y], [y])["p_value"]
    1.0
    """
    y = np.asarray(y_true, int)
    names, codes = np.unique(np.asarray(groups), return_inverse=True)
    ca = np.stack([_group_counts(y, codes, len(names), p) for p in preds_a], axis=1)  # (groups, repeats, 4)
    cb = np.stack([_group_counts(y, codes, len(names), p) for p in preds_b], axis=1)
    flips = _flips(len(names), n_perm, np.random.default_rng(seed))
    a = np.einsum("pg,grk->prk", 1 - flips, ca) + np.einsum("pg,grk->prk", flips, cb)
    b = np.einsum("pg,grk->prk", flips, ca) + np.einsum("pg,grk->prk", 1 - flips, cb)
    diff = np.nanmean(metric_from_counts(*np.moveaxis(a, -1, 0), metric)
                      - metric_from_counts(*np.moveaxis(b, -1, 0), metric), axis=1)
    observed = float(diff[0])
    p = float(np.mean(np.abs(diff) >= abs(observed) - 1e-12))  # the identity is among the patterns either way
    return {"difference": observed, "p_value": p, "patterns": len(flips), "exact": len(flips) == 2 ** len(names)}


def holm(p_values) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error at most alpha over all of them;
    NaN stays NaN and counts in no family)."""
    p = np.asarray(p_values, float)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        out[i] = running
    return [round(float(v), 12) if v == v else float("nan") for v in out]


def verdict(p_value: float, difference: float, alpha: float = 0.05) -> str:
    """``"better"`` or ``"worse"`` where ``p_value < alpha``, else ``"could not tell"``."""
    if not p_value < alpha:
        return "could not tell"
    return "better" if difference > 0 else "worse"


def paired_comparison(y_true, groups, preds_a: list, preds_b: list, fold_a: list, fold_b: list, *, n_train: float,
                      n_test: float, metric: str = "balanced_accuracy", n_boot: int = 2000, n_perm: int = 5000,
                      seed: int = 0, alpha: float = 0.05, draws: tuple | None = None) -> dict:
    """Candidate A against baseline B on the same grouped folds: the difference of ``metric``
    (pooled out-of-fold predictions, mean over repeats), its 95 % interval by a bootstrap over
    the groups (shown, not used for the verdict: with three donors it covers the truth about 80 %
    of the time), the corrected t-test over the per-fold values ``fold_a - fold_b`` with its
    interval, the group sign-flip test, their intersection-union ``p_value`` (the larger) and
    the smallest difference both tests could detect with 80 % power (the larger of the two
    detectable differences), and the :func:`verdict` before any correction for many candidates.
    ``draws``: A's and B's :func:`~alllib.learn.metrics.grouped_bootstrap` distributions where the
    caller has them already (drawn with the same ``seed`` and ``n_boot``).
    """
    y = np.asarray(y_true, int)
    flip = sign_flip_test(y, groups, preds_a, preds_b, metric, n_perm=n_perm, seed=seed)
    per_fold = np.asarray(fold_a, float) - np.asarray(fold_b, float)
    t = corrected_resampled_ttest(per_fold, n_train, n_test)
    a, b = draws or (grouped_bootstrap(y, groups, p, metric, n_boot=n_boot, seed=seed) for p in (preds_a, preds_b))
    boot = a - b
    d = per_fold[~np.isnan(per_fold)]
    half_t = detect_t = float("nan")
    if len(d) > 1:
        se_t = float(np.sqrt((1 / len(d) + n_test / n_train) * d.var(ddof=1)))
        half_t = float(stats.t.ppf(1 - alpha / 2, len(d) - 1) * se_t)
        detect_t = float((stats.t.ppf(1 - alpha / 2, len(d) - 1) + stats.t.ppf(0.8, len(d) - 1)) * se_t)
    detect_boot = float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(0.8)) * np.nanstd(boot))
    p = max(flip["p_value"], t["p_value"]) if t["p_value"] == t["p_value"] else float("nan")
    diff = flip["difference"]
    return {"difference": diff,
            "bootstrap low": float(np.nanpercentile(boot, 2.5)), "bootstrap high": float(np.nanpercentile(boot, 97.5)),
            "t low": t["mean"] - half_t, "t high": t["mean"] + half_t, "p (corrected t)": t["p_value"],
            "p (sign flip)": flip["p_value"], "p": p, "detectable": float(np.nanmax([detect_t, detect_boot])),
            "higher in folds": int((d > 0).sum()), "folds": len(d), "verdict": verdict(p, diff, alpha)}


# --- calibration by simulation -------------------------------------------------------------------

#: The verdict rules :func:`simulate_verdicts` measures: the interval-only rule the book used
#: before (a grouped bootstrap interval that excludes zero), each test alone, and both together
#: (the rule of :func:`paired_comparison`).
RULES = ("bootstrap interval", "corrected t", "sign flip", "sign flip and corrected t")


@dataclass(frozen=True)
class NullSetting:
    """A grouped cross-validation to simulate: groups per class, cells per group, folds, repeats.
    ``spread`` is the SD of each group's offset from its class centre (what makes a person's cells
    alike), in units of the cells' own SD; ``separation`` the distance of the class centres."""

    name: str
    positive_groups: int
    negative_groups: int
    cells_per_group: int = 20
    n_splits: int = 3
    n_repeats: int = 1
    spread: float = 0.8
    separation: float = 1.0


#: The group counts the book meets: C-NMC fold_1 (11 patients, 3 donors; 3 subject folds, once and
#: five times), both C-NMC folds (23 patients and 13 donors, 5 folds), ALL-IDB2 (about 100 slides;
#: 5 folds, once and five times) and 30 groups in the smaller class.
SETTINGS = (
    NullSetting("C-NMC fold_1: 11 + 3 subjects, 3 folds x 1", 11, 3, 20, 3, 1),
    NullSetting("C-NMC fold_1: 11 + 3 subjects, 3 folds x 5", 11, 3, 20, 3, 5),
    NullSetting("C-NMC both folds: 23 + 13 subjects, 5 folds x 1", 23, 13, 10, 5, 1),
    NullSetting("ALL-IDB2: 44 + 58 slides, 5 folds x 1", 44, 58, 3, 5, 1, spread=0.5, separation=2.0),
    NullSetting("ALL-IDB2: 44 + 58 slides, 5 folds x 5", 44, 58, 3, 5, 5, spread=0.5, separation=2.0),
    NullSetting("30 + 30 groups, 5 folds x 1", 30, 30, 10, 5, 1),
)


def _lda_predict(x_train, y_train, x_test) -> np.ndarray:
    """Fisher's linear discriminant with equal priors (fitted in closed form: fast enough for
    thousands of simulated folds)."""
    m1, m0 = x_train[y_train == 1].mean(axis=0), x_train[y_train == 0].mean(axis=0)
    centred = np.vstack([x_train[y_train == 1] - m1, x_train[y_train == 0] - m0])
    w = np.linalg.solve(np.cov(centred, rowvar=False) + 1e-6 * np.eye(x_train.shape[1]), m1 - m0)
    return ((x_test - (m1 + m0) / 2) @ w >= 0).astype(int)


def _score(y, pred, metric: str) -> float:
    tp, tn = np.sum((y == 1) & (pred == 1)), np.sum((y == 0) & (pred == 0))
    return float(metric_from_counts(tp, tn, np.sum((y == 0) & (pred == 1)), np.sum((y == 1) & (pred == 0)), metric))


def _simulated_run(setting: NullSetting, effect: float, rng: np.random.Generator, *, metric: str, dims: int = 6,
                   n_boot: int = 500, n_perm: int = 500) -> dict[str, float]:
    """One grouped cross-validation of two linear discriminants, each on its own noisy view of
    the same cells (noise of SD 0.5); the candidate's view also moves each blast by ``effect``
    along the class axis (``effect = 0``: the same expected error). Returns whether each rule of
    :data:`RULES` gave a verdict, and the candidate's observed gain."""
    from alllib.learn.evaluation import grouped_folds

    n_groups = setting.positive_groups + setting.negative_groups
    label_of = np.r_[np.ones(setting.positive_groups, int), np.zeros(setting.negative_groups, int)]
    groups = np.repeat(np.arange(n_groups), setting.cells_per_group)
    y = label_of[groups]
    centre = np.zeros(dims)
    centre[0] = setting.separation
    x = (y[:, None] * centre + rng.normal(0, setting.spread, (n_groups, dims))[groups]
         + rng.normal(0, 1, (len(y), dims)))
    views = {"baseline": x + rng.normal(0, 0.5, x.shape),
             "candidate": x + effect * y[:, None] * centre / setting.separation + rng.normal(0, 0.5, x.shape)}
    folds = grouped_folds(y, groups, n_splits=setting.n_splits, n_repeats=setting.n_repeats,
                          seed=int(rng.integers(2 ** 31)))
    preds = {k: np.zeros((setting.n_repeats, len(y)), int) for k in views}
    per_fold = {k: [] for k in views}
    for f in folds:
        for k, v in views.items():
            p = _lda_predict(v[f.train], y[f.train], v[f.test])
            preds[k][f.repeat, f.test] = p
            per_fold[k].append(_score(y[f.test], p, metric))
    n_train = float(np.mean([len(f.train) for f in folds]))
    n_test = float(np.mean([len(f.test) for f in folds]))
    c = paired_comparison(y, groups, list(preds["candidate"]), list(preds["baseline"]), per_fold["candidate"],
                          per_fold["baseline"], n_train=n_train, n_test=n_test, metric=metric, n_boot=n_boot,
                          n_perm=n_perm, seed=int(rng.integers(2 ** 31)))
    return {"bootstrap interval": c["bootstrap low"] > 0 or c["bootstrap high"] < 0,
            "corrected t": c["p (corrected t)"] < 0.05, "sign flip": c["p (sign flip)"] < 0.05,
            "sign flip and corrected t": c["p"] < 0.05, "difference": c["difference"]}


def simulate_verdicts(setting: NullSetting, *, runs: int = 200, effect: float = 0.0, metric: str = "balanced_accuracy",
                      seed: int = 0, n_boot: int = 500, n_perm: int = 500) -> dict[str, float]:
    """How often each rule of :data:`RULES` says "better" or "worse" over ``runs`` simulated
    cross-validations of ``setting``: under a true null (``effect = 0``) its false-positive rate,
    which a calibrated rule keeps at or below 5 %; with a planted ``effect`` (the candidate's
    classes further apart, in units of the cells' SD) its power. Also ``runs``, the Monte Carlo standard error of a
    5 % rate and the mean observed difference in ``metric`` (``"balanced_accuracy"`` or
    ``"weighted_f1"``)."""
    rng = np.random.default_rng(seed)
    said = [_simulated_run(setting, effect, rng, metric=metric, n_boot=n_boot, n_perm=n_perm) for _ in range(runs)]
    return {**{rule: float(np.mean([s[rule] for s in said])) for rule in RULES}, "runs": runs,
            "monte carlo se at 5 %": float(np.sqrt(0.05 * 0.95 / runs)),
            "mean difference (points)": 100 * float(np.nanmean([s["difference"] for s in said]))}

"""Metrics against hand-computed confusion matrices, interval edge cases, McNemar."""
import math

import numpy as np
import pytest

from alllib.learn.metrics import binary_metrics, mcnemar, mean_interval, wilson_interval


def test_hand_computed_confusion_matrix():
    # TP=3, FN=1, TN=4, FP=2
    y = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    p = [1, 1, 1, 0, 0, 0, 0, 0, 1, 1]
    m = binary_metrics(y, p)
    assert (m["tp"], m["fn"], m["tn"], m["fp"]) == (3, 1, 4, 2)
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert m["balanced_accuracy"] == pytest.approx((0.75 + 4 / 6) / 2)
    assert math.isnan(m["roc_auc"])


def test_roc_auc_from_scores():
    m = binary_metrics([0, 0, 1, 1], [0, 1, 1, 1], scores=[0.1, 0.6, 0.4, 0.9])
    assert m["roc_auc"] == pytest.approx(0.75)


def test_undefined_ratios_are_nan_not_zero():
    m = binary_metrics([0, 0, 0], [0, 0, 0], scores=[0.1, 0.2, 0.3])
    assert m["accuracy"] == 1.0 and m["specificity"] == 1.0
    assert math.isnan(m["sensitivity"]) and math.isnan(m["precision"]) and math.isnan(m["roc_auc"])


def test_shape_mismatch():
    with pytest.raises(ValueError, match="equal length"):
        binary_metrics([0, 1], [0])


def test_wilson_edges():
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0.1 < hi < 0.2
    lo, hi = wilson_interval(20, 20)
    assert hi == 1.0 and 0.8 < lo < 0.9
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_bootstrap_edges_and_seed():
    """Each image its own group: the grouped bootstrap is the plain one."""
    from alllib.learn.metrics import grouped_bootstrap

    y = np.array([0, 1] * 20)
    groups = np.arange(len(y))
    assert set(grouped_bootstrap(y, groups, [y], "accuracy", n_boot=200)) == {1.0}
    assert set(grouped_bootstrap(y, groups, [1 - y], "accuracy", n_boot=200)) == {0.0}
    noisy = y.copy()
    noisy[:8] = 1 - noisy[:8]
    a = grouped_bootstrap(y, groups, [noisy], "accuracy", n_boot=300, seed=1)
    assert np.array_equal(a, grouped_bootstrap(y, groups, [noisy], "accuracy", n_boot=300, seed=1))
    assert np.percentile(a, 2.5) < 0.8 < np.percentile(a, 97.5)


def test_mean_interval():
    m, lo, hi = mean_interval([0.8, 0.9, 0.85, 0.95, 0.75])
    assert m == pytest.approx(0.85) and lo < m < hi
    assert mean_interval([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)


def test_mcnemar():
    y = np.zeros(40, int)
    a = np.zeros(40, int)
    b = np.zeros(40, int)
    b[:10] = 1  # B wrong on 10 that A gets right
    r = mcnemar(y, a, b)
    assert (r["b"], r["c"]) == (10, 0) and r["method"] == "exact binomial"
    assert r["p_value"] == pytest.approx(2 * 0.5**10)
    assert mcnemar(y, a, a)["p_value"] == 1.0
    b[:35] = 1
    big = mcnemar(y, a, b)
    assert big["method"].startswith("chi-squared") and big["statistic"] == pytest.approx((35 - 1) ** 2 / 35)


def test_weighted_f1_is_the_challenge_metric():
    """The C-NMC challenge's weighted F1 equals scikit-learn's f1_score(average="weighted")."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        y, p = rng.integers(0, 2, n), rng.integers(0, 2, n)
        assert binary_metrics(y, p)["weighted_f1"] == pytest.approx(f1_score(y, p, average="weighted", zero_division=0))
    # unlike the blast-class F1, it counts the normal class too
    m = binary_metrics([1, 1, 1, 0], [1, 1, 1, 1])
    assert m["f1"] == pytest.approx(6 / 7) and m["weighted_f1"] == pytest.approx(0.75 * 6 / 7)


def test_grouped_bootstrap_resamples_whole_groups_of_each_class():
    from alllib.learn.metrics import grouped_bootstrap

    # two groups per class; one normal group is always wrong: the specificity is 0, 1/2 or 1, by groups
    y = np.array([1] * 6 + [0] * 6)
    g = np.array(["a"] * 3 + ["b"] * 3 + ["h1"] * 3 + ["h2"] * 3)
    pred = np.array([1] * 6 + [0] * 3 + [1] * 3)
    spec = grouped_bootstrap(y, g, [pred], "specificity", n_boot=400, seed=1)
    assert set(np.round(spec, 6)) == {0.0, 0.5, 1.0}
    assert (grouped_bootstrap(y, g, [pred], "sensitivity", n_boot=50) == 1).all()  # both classes in every draw
    both = grouped_bootstrap(y, g, [pred, y], "accuracy", n_boot=200, seed=1)  # two repeats are averaged
    assert both.min() >= 0.75 and np.allclose(both, (grouped_bootstrap(y, g, [pred], "accuracy", n_boot=200, seed=1)
                                                     + 1) / 2)


def test_corrected_resampled_ttest_is_wider_than_the_plain_one():
    from scipy import stats

    from alllib.learn.metrics import corrected_resampled_ttest, detectable_difference

    d = np.array([0.02, 0.03, 0.01, 0.02, 0.04, 0.0, 0.03, 0.02, 0.01, 0.02])
    plain = stats.ttest_1samp(d, 0).pvalue
    corrected = corrected_resampled_ttest(d, n_train=80, n_test=20)
    assert corrected["p_value"] > plain and corrected["df"] == 9
    assert np.isnan(corrected_resampled_ttest([0.1], 80, 20)["p_value"])
    assert detectable_difference(0.02) == pytest.approx(0.02 * (1.959964 + 0.841621), rel=1e-5)

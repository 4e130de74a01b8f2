"""Grad-CAM through the real SVM, occlusion and the nucleus share: exact where they claim to be."""
from __future__ import annotations

import numpy as np
import pytest

from alllib.attribution import grad_cam, inside_share, occlusion_map, svm_feature_gradient
from alllib.learn.classifiers import fit_classifier, make_classifier


def _data(seed=0, n=80, d=12):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 5, d) + rng.normal(size=d)
    return X, (X[:, 0] + X[:, 1] * 0.5 > X[:, 0].mean()).astype(int)


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
@pytest.mark.parametrize("fitter", ["plain", "alllib"])
def test_svm_gradient_matches_the_decision_function_and_finite_differences(kernel, fitter):
    X, y = _data()
    model = (make_classifier("svm", kernel=kernel, gamma=0.05).fit(X, y) if fitter == "plain"
             else fit_classifier("svm", X, y, search="none")[0].set_params(svm__kernel=kernel).fit(X, y))
    f, g = svm_feature_gradient(model, X[:4])
    np.testing.assert_allclose(f, model.decision_function(X[:4]), atol=1e-10)
    eps = 1e-6
    for i in range(2):
        num = [(model.decision_function(X[i:i + 1] + eps * e) - model.decision_function(X[i:i + 1] - eps * e))[0]
               / (2 * eps) for e in np.eye(X.shape[1])]
        np.testing.assert_allclose(g[i], num, rtol=1e-4, atol=1e-7)


def test_svm_gradient_refuses_what_it_cannot_differentiate():
    X, y = _data()
    with pytest.raises(TypeError, match="SVC"):
        svm_feature_gradient(make_classifier("rf").fit(X, y), X)
    with pytest.raises(ValueError, match="poly"):
        svm_feature_gradient(make_classifier("svm", kernel="poly").fit(X, y), X)


def test_grad_cam_weights_each_channel_by_its_mean_gradient():
    maps = np.zeros((1, 2, 2, 2))
    maps[0, 0, 0, 0], maps[0, 1, 1, 1] = 4.0, 8.0
    cam = grad_cam(maps, np.array([[1.0, -1.0]]))
    np.testing.assert_allclose(cam[0], [[1.0, 0.0], [0.0, 0.0]])  # 4 / 4; the other cell -8 / 4 is cut by ReLU
    with pytest.raises(ValueError, match="do not match"):
        grad_cam(maps, np.ones((1, 3)))


def test_occlusion_finds_the_square_the_score_reads():
    def score(batch):  # the decision is the mean of the top-left 8 x 8 square
        return np.asarray(batch)[:, :8, :8].mean(axis=(1, 2, 3))

    x = np.ones((32, 32, 3), np.float32)
    occ = occlusion_map(score, x, patch=8, stride=8)
    assert occ[:8, :8].min() > 0.9 and np.abs(occ[8:, 8:]).max() == 0
    mask = np.zeros((32, 32), bool)
    mask[:8, :8] = True
    assert inside_share(occ, mask) == pytest.approx(1.0)
    assert inside_share(-occ, mask) != inside_share(-occ, mask)  # no positive attribution: NaN
    with pytest.raises(ValueError, match="stride"):
        occlusion_map(score, x, patch=8, stride=16)


@pytest.mark.slow
def test_attribution_study_explains_each_cell_with_a_model_that_never_saw_its_group():
    pytest.importorskip("keras")
    from alllib.book.studies import attribution_study, inside_table
    from alllib.data import load_dataset
    from alllib.features import FeatureExtractor

    ds = load_dataset("synthetic", n=24, size=64, verbose=False)
    study = attribution_study(ds, FeatureExtractor("efficientnet_lite0", weights="random", size=64), n_splits=3,
                              search="none", progress=False)
    t = study.table
    assert len(t) == len(ds) and set(t["fold"]) == {0, 1, 2}
    for fold, model in enumerate(study.models):
        n_train = model[-1].shape_fit_[0]
        assert n_train == (t["fold"] != fold).sum()  # fitted on the other folds only
        assert not set(t.loc[t["fold"] == fold, "group"]) & set(t.loc[t["fold"] != fold, "group"])
    X = study.extractor.embed([study.network_input(i) for i in range(3)])
    np.testing.assert_allclose(study.models[t["fold"].iloc[0]].decision_function(X[:1])[0], t["score"].iloc[0],
                               rtol=1e-4, atol=1e-5)  # the maps' means are the features
    assert study.masks.shape == (len(ds), 64, 64) and "ground truth" in study.description
    table = inside_table({"random": study})
    assert set(table.index.get_level_values("class")) == {"ALL blast", "not a blast"}
    picks = study.pick(2)
    assert all(not t["correct"].iloc[i] for i in picks["largest errors"])

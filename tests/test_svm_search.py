"""The precomputed-kernel SVM grid search scores exactly the models that GridSearchCV scores."""
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from alllib.learn.classifiers import SVM_GRID, fit_classifier, make_classifier
from alllib.learn.svm_search import fold_kernels, kernel_from_gram, svm_grid_search


@pytest.fixture(scope="module")
def data():
    """Two overlapping classes whose features differ in scale and offset (so scaling matters)."""
    rng = np.random.default_rng(7)
    y = np.repeat([0, 1], 45)
    X = rng.normal(size=(90, 12)) * rng.uniform(0.2, 5, 12) + rng.uniform(-3, 3, 12)
    X[y == 1, :4] += 0.8
    return X.astype(np.float32), y


def _plain(X, y, splits, grid):
    pipe = Pipeline([("scale", StandardScaler()), ("svm", SVC(random_state=0))])
    gs = GridSearchCV(pipe, {f"svm__{k}": v for k, v in grid.items()}, cv=splits, scoring="accuracy", refit=False)
    return gs.fit(X, y)


def test_same_scores_ranks_and_best_as_gridsearchcv(data):
    X, y = data
    splits = list(StratifiedKFold(5, shuffle=True, random_state=1).split(X, y))
    grid = {"C": [0.1, 1, 10, 100], "gamma": [0.3, 0.03, 0.003], "kernel": ["rbf", "poly"]}
    gs = _plain(X, y, splits, grid)
    best, table = svm_grid_search(X, y, splits, grid, svc_params={"random_state": 0}, n_jobs=2)
    assert best == {k.split("__")[1]: v for k, v in gs.best_params_.items()}
    plain = pd.DataFrame({"C": gs.cv_results_["param_svm__C"], "gamma": gs.cv_results_["param_svm__gamma"],
                          "kernel": gs.cv_results_["param_svm__kernel"],
                          "mean": gs.cv_results_["mean_test_score"], "rank": gs.cv_results_["rank_test_score"]})
    merged = plain.merge(table, on=["C", "gamma", "kernel"])
    assert len(merged) == 24
    np.testing.assert_array_equal(merged["mean"], merged["mean_test_score"])
    np.testing.assert_array_equal(merged["rank"], merged["rank_test_score"])
    assert merged["mean"].nunique() > 3  # the grid really discriminates


@pytest.mark.parametrize("kernel,gamma", [("rbf", 0.05), ("poly", 0.02)])
def test_each_fold_model_is_the_plain_model(data, kernel, gamma):
    """Same support vectors and decision values within 1e-6 as Pipeline(StandardScaler, SVC)."""
    X, y = data
    train, test = next(StratifiedKFold(4, shuffle=True, random_state=3).split(X, y))
    plain = Pipeline([("scale", StandardScaler()), ("svm", SVC(C=3.0, kernel=kernel, gamma=gamma))]).fit(X[train], y[train])
    g_tr, g_te, n_tr, n_te = fold_kernels(X, train, test)
    pre = SVC(C=3.0, kernel="precomputed").fit(kernel_from_gram(g_tr, n_tr, n_tr, kernel, gamma), y[train])
    np.testing.assert_array_equal(pre.support_, plain[-1].support_)
    np.testing.assert_allclose(pre.decision_function(kernel_from_gram(g_te, n_te, n_tr, kernel, gamma)),
                               plain.decision_function(X[test]), atol=1e-6)


def test_fit_classifier_uses_it_with_grouped_folds(data):
    """fit_classifier's SVM grid equals GridSearchCV on the same (grouped) folds."""
    X, y = data
    groups = np.arange(len(y)) // 3
    model, table = fit_classifier("svm", X, y, groups=groups, search="paper", cv_splits=3, seed=4)
    assert len(table) == 50 and table["rank_test_score"].is_monotonic_increasing
    from sklearn.model_selection import StratifiedGroupKFold

    splits = list(StratifiedGroupKFold(3, shuffle=True, random_state=4).split(X, y, groups))
    gs = GridSearchCV(make_classifier("svm", 4), {f"svm__{k}": v for k, v in SVM_GRID.items()}, cv=splits,
                      refit=False).fit(X, y)
    assert model.get_params()["svm__C"] == gs.best_params_["svm__C"]
    assert model.get_params()["svm__gamma"] == gs.best_params_["svm__gamma"]
    assert model.get_params()["svm__kernel"] == gs.best_params_["svm__kernel"]


def test_bad_grid():
    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="exactly the keys C, gamma and kernel"):
        svm_grid_search(X, y, [(np.arange(2), np.arange(2, 4))], {"C": [1], "kernel": ["rbf"]})
    with pytest.raises(ValueError, match="gamma must be a number"):
        svm_grid_search(X, y, [(np.arange(2), np.arange(2, 4))], {"C": [1], "gamma": ["scale"], "kernel": ["rbf"]})


@pytest.mark.parametrize("kernel,gamma,C", [("rbf", 0.05, 3.0), ("poly", 0.02, 10.0), ("rbf", 1.0, 0.1)])
def test_fit_svc_is_the_plain_fit(data, kernel, gamma, C):
    """A plain fitted SVC: same support vectors, decision values and predictions, and it pickles."""
    import pickle

    from alllib.learn.svm_search import fit_svc

    X, y = data
    Z = StandardScaler().fit_transform(X)
    plain = SVC(C=C, kernel=kernel, gamma=gamma, random_state=0).fit(Z[:70], y[:70])
    fast = fit_svc(Z[:70], y[:70], C=C, kernel=kernel, gamma=gamma, random_state=0)
    assert type(fast) is SVC and fast.get_params() == plain.get_params()
    np.testing.assert_array_equal(fast.support_, plain.support_)
    np.testing.assert_array_equal(fast.support_vectors_, plain.support_vectors_)
    np.testing.assert_allclose(fast.decision_function(Z[70:]), plain.decision_function(Z[70:]), atol=1e-6)
    np.testing.assert_array_equal(fast.predict(Z[70:]), plain.predict(Z[70:]))
    again = pickle.loads(pickle.dumps(fast))
    np.testing.assert_array_equal(again.decision_function(Z[70:]), fast.decision_function(Z[70:]))


def test_fit_classifier_svm_equals_the_plain_pipeline(data):
    X, y = data
    model, _ = fit_classifier("svm", X[:70], y[:70], search="none", seed=2)
    plain = make_classifier("svm", 2).fit(X[:70], y[:70])
    assert isinstance(model[-1], SVC) and model[-1].get_params() == plain[-1].get_params()
    np.testing.assert_allclose(model.decision_function(X[70:]), plain.decision_function(X[70:]), atol=1e-6)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_string_labels_and_three_classes(data, n_classes):
    """Scores follow GridSearchCV whatever the labels are called and however many there are
    (two classes are scored from the support vectors' columns alone, more from the whole kernel)."""
    X, y = data
    names = np.array(["hem", "all", "other"])
    labels = names[y] if n_classes == 2 else names[(y + (np.arange(len(y)) % 3 == 0)) % 3]
    splits = list(StratifiedKFold(3, shuffle=True, random_state=2).split(X, labels))
    grid = {"C": [0.5, 20], "gamma": [0.1, 0.01], "kernel": ["rbf"]}
    gs = _plain(X, labels, splits, grid)
    _, table = svm_grid_search(X, labels, splits, grid)
    merged = pd.DataFrame({"C": gs.cv_results_["param_svm__C"], "gamma": gs.cv_results_["param_svm__gamma"],
                           "kernel": gs.cv_results_["param_svm__kernel"],
                           "mean": gs.cv_results_["mean_test_score"]}).merge(table, on=["C", "gamma", "kernel"])
    np.testing.assert_array_equal(merged["mean"], merged["mean_test_score"])


@pytest.mark.parametrize("kernel,gamma,coef0,labels", [("rbf", 0.05, 0.0, ("hem", "all")), ("poly", 0.02, 1.0, (0, 1)),
                                                      ("linear", 0.1, 0.0, (0, 1))])
def test_svc_decision_is_libsvms_and_predictions_its_labels(data, kernel, gamma, coef0, labels):
    """The BLAS decision function equals libsvm's to rounding, chunk by chunk, and the labels of
    ``predictions`` (one pass) are those of ``predict``, whatever the classes are called."""
    from alllib.learn.classifiers import decision_scores, predictions
    from alllib.learn.svm_search import svc_decision

    X, y = data
    names = np.array(labels)[y]
    model = make_classifier("svm", 0, kernel=kernel, gamma=gamma, coef0=coef0, C=3.0).fit(X[:70], names[:70])
    Z = model[:-1].transform(X)
    for chunk_mb in (64, 0):  # 0: one row at a time
        np.testing.assert_allclose(svc_decision(model[-1], Z, chunk_mb=chunk_mb), model.decision_function(X),
                                   rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(decision_scores(model, X), model.decision_function(X), rtol=1e-8, atol=1e-8)
    pred, scores = predictions(model, X)
    np.testing.assert_array_equal(pred, model.predict(X))
    np.testing.assert_array_equal(scores, decision_scores(model, X))


def test_threads_sharing_one_kernel_score_as_threads_on_kernels(data, monkeypatch):
    """Beyond KERNEL_BUDGET the threads fit the C values of one kernel at a time (less memory):
    the same table, and both ways equal the search on one thread."""
    import alllib.learn.svm_search as search

    X, y = data
    splits = list(StratifiedKFold(3, shuffle=True, random_state=1).split(X, y))
    grid = {"C": [0.5, 5, 50], "gamma": [0.1, 0.01], "kernel": ["rbf", "poly"]}
    columns = ["C", "gamma", "kernel", "mean_test_score", "rank_test_score"]
    one = svm_grid_search(X, y, splits, grid, n_jobs=1)
    apart = svm_grid_search(X, y, splits, grid, n_jobs=2)
    monkeypatch.setattr(search, "KERNEL_BUDGET", 0)
    shared = svm_grid_search(X, y, splits, grid, n_jobs=2)
    assert one[0] == apart[0] == shared[0]
    pd.testing.assert_frame_equal(apart[1][columns], shared[1][columns])
    pd.testing.assert_frame_equal(one[1][columns], shared[1][columns])
    assert (shared[1]["mean_fit_time"] > 0).all()

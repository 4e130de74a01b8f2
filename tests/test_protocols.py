"""Protocols on synthetic data: shapes, leak counts, determinism, grouped splits."""
import cv2
import numpy as np
import pandas as pd
import pytest

from alllib.augmentation import Augmenter
from alllib.classifiers import SVM_GRID, fit_classifier, make_classifier, param_grid
from alllib.protocols import compare_protocols, honest_protocol, leak_audit, paper_protocol
from alllib.synthetic import make_synthetic


def colour_features(ds):
    """Cheap stand-in for deep features: per-channel LAB means and spreads."""
    out = []
    for i in range(len(ds)):
        lab = cv2.cvtColor(ds.image(i), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(float)
        dark = lab[:, 1] > 145
        out.append([*lab.mean(0), *lab.std(0), dark.mean()])
    return np.array(out)


@pytest.fixture(scope="module")
def small():
    ds = make_synthetic(40, size=64, seed=2)
    # two duplicate groups, as ALL-IDB2 has
    t = ds.table
    t.loc[t.index[[0, 2]], "group"] = t.loc[t.index[0], "group"]
    t.loc[t.index[[1, 3]], "group"] = t.loc[t.index[1], "group"]
    return ds


def test_paper_protocol_leaks_by_construction(small):
    res = paper_protocol(small, colour_features, ["svm", "rf"], target_per_class=60, search="small", seed=0)
    svm = res["svm"]
    e = svm.evaluations[0]
    assert len(e.y_true) == 24  # 20 % of 120
    assert e.train_metrics is not None and set(e.metrics) >= {"accuracy", "roc_auc", "tp"}
    assert svm.leaks > 0 and e.leak["shared_source"] > 0.5 * e.leak["n_test"]
    assert res["rf"].evaluations[0].test_ids.tolist() == e.test_ids.tolist()  # same split for all classifiers
    assert e.grid is not None and len(e.grid) == 4


def test_paper_protocol_without_augmentation(small):
    res = paper_protocol(small, colour_features, "rf", target_per_class=None, seed=0)
    e = res["rf"].evaluations[0]
    assert len(e.y_true) == 8
    # only the duplicate groups can leak when nothing is augmented
    assert e.leak["shared_source"] == 0 and e.leak["shared_group"] <= 2


def test_honest_protocol_has_zero_leaks(small):
    res = honest_protocol(small, colour_features, ["svm", "xgboost"], target_per_class=24, n_splits=4, n_repeats=2,
                          inner_splits=2, search="small", seed=0, progress=False)
    for r in res.values():
        assert len(r.evaluations) == 8
        assert r.leaks == 0 and r.group_leaks == 0
        # each repeat tests every original exactly once
        ids = np.concatenate([e.test_ids for e in r.evaluations[:4]])
        assert sorted(ids) == sorted(small.ids)
        assert not any("~aug" in i for i in ids)
    s = res["svm"].summary()
    assert list(s.columns) == ["value", "low", "high"] and s.loc["accuracy", "low"] <= s.loc["accuracy", "value"]


def test_honest_protocol_fits_everything_on_the_training_side(small, monkeypatch):
    """Every featurised training set holds only training-side groups (plus their copies)."""
    seen = []

    def spy(ds):
        seen.append(ds.table.copy())
        return colour_features(ds)

    honest_protocol(small, spy, ["rf"], target_per_class=24, n_splits=4, n_repeats=1, seed=0, progress=False)
    for train, test in zip(seen[0::2], seen[1::2]):
        assert not set(train["group"]) & set(test["group"])
        assert train["augmented"].any() and "augmented" not in test.columns  # test side never augmented


def test_same_seed_same_numbers(small):
    a = honest_protocol(small, colour_features, ["rf"], target_per_class=24, n_splits=4, n_repeats=1, seed=3,
                        progress=False)
    b = honest_protocol(small, colour_features, ["rf"], target_per_class=24, n_splits=4, n_repeats=1, seed=3,
                        progress=False)
    assert a["rf"].fold_metrics().equals(b["rf"].fold_metrics())


def test_leak_audit_counts():
    train = pd.DataFrame({"id": ["a", "b~aug0"], "source": ["a", "b"], "group": ["g1", "g2"]})
    test = pd.DataFrame({"id": ["a~aug1", "c", "d"], "source": ["a", "c", "d"], "group": ["g1", "g3", "g2"]})
    audit = leak_audit(train, test)
    assert audit["shared_source"] == 1 and audit["shared_group"] == 2 and audit["n_test"] == 3


def test_compare_protocols_table(small):
    p = paper_protocol(small, colour_features, ["rf"], target_per_class=60, seed=0)
    h = honest_protocol(small, colour_features, ["rf"], target_per_class=24, n_splits=4, n_repeats=1, seed=0,
                        progress=False)
    t = compare_protocols(p, h)
    assert t.loc["rf", "honest leaks"] == 0 and t.loc["rf", "paper leaks (test sharing a source)"] > 0
    assert t.loc["rf", "inflation (points)"] == pytest.approx(
        100 * (t.loc["rf", "paper protocol accuracy"] - t.loc["rf", "honest accuracy"]))


def test_classifier_factory_and_grid():
    assert len(param_grid("svm")["svm__C"]) == 5 and param_grid("rf") == {}
    assert SVM_GRID["kernel"] == ["rbf", "poly"]
    with pytest.raises(ValueError, match="unknown classifier 'knn'"):
        make_classifier("knn")
    with pytest.raises(ValueError, match="search must be"):
        param_grid("svm", "huge")
    with pytest.raises(ValueError, match="unknown classifier"):
        paper_protocol(make_synthetic(4, size=64), colour_features, ["lda"])


def test_probability_svm_is_calibrated(small):
    X, y = colour_features(small), small.labels
    model, _ = fit_classifier("svm", X, y, search="none", probability=True)
    p = model.predict_proba(X)[:, 1]
    assert ((p >= 0) & (p <= 1)).all() and p[y == 1].mean() > p[y == 0].mean()


def test_scaler_is_inside_the_pipeline(small):
    X, y = colour_features(small), small.labels
    model, _ = fit_classifier("svm", X[:30], y[:30], search="none")
    assert model.named_steps["scale"].n_samples_seen_ == 30  # fitted on the training side only


def test_augmenter_seed_follows_protocol_seed(small):
    a = paper_protocol(small, colour_features, ["rf"], target_per_class=50, seed=1)
    b = paper_protocol(small, colour_features, ["rf"], target_per_class=50, seed=1,
                       augmenter=Augmenter(seed=1))
    assert a["rf"].evaluations[0].metrics == b["rf"].evaluations[0].metrics

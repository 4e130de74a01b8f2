"""Protocols on synthetic data: shapes, leak counts, determinism, grouped splits."""
import numpy as np
import pandas as pd
import pytest

from alllib.augmentation import Augmenter
from alllib.book.studies import compare_protocols
from alllib.data.synthetic import make_synthetic
from alllib.learn.classifiers import SVM_GRID, fit_classifier, make_classifier, param_grid
from alllib.learn.protocols import honest_protocol, leak_audit, paper_protocol

from .conftest import colour_features


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


def test_honest_inner_cross_validation_keeps_groups_together(small, monkeypatch):
    """Every inner split of the SVM's tuning (the only grid: random forest and XGBoost keep the
    paper's fixed settings) on the training side holds each group,
    and so each cell's augmented copies, on one side only. The features carry each row's group
    code in a last column, so the spy reads the groups from what the search really received."""
    import alllib.learn.classifiers as C

    codes = {}

    def featurize(ds):
        group = np.array([codes.setdefault(g, len(codes)) for g in ds.table["group"]], float)
        return np.column_stack([colour_features(ds), group])

    inner = []
    real = C.svm_grid_search

    def spy(X, y, splits, grid, **kw):
        inner.append((X[:, -1], splits))
        return real(X, y, splits, grid, **kw)

    monkeypatch.setattr(C, "svm_grid_search", spy)
    honest_protocol(small, featurize, ["svm"], target_per_class=24, n_splits=3, n_repeats=1, inner_splits=3,
                    search="small", seed=0, progress=False)
    assert len(inner) == 3  # one search per outer fold
    for groups, splits in inner:
        assert len(splits) == 3
        for train, test in splits:
            assert not set(groups[train]) & set(groups[test])


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


# ------------------------------------------------------------------ few subjects (C-NMC)
def _subjects(n_all: int, n_hem: int, cells: int = 6):
    """A synthetic C-NMC: ``n_all`` ALL patients and ``n_hem`` normal subjects, ``cells`` each."""
    ds = make_synthetic(2 * cells * max(n_all, n_hem), size=48, seed=5)
    t = ds.table
    rows = []
    for label, n, prefix in ((1, n_all, ""), (0, n_hem, "H")):
        pool = t.index[t["label"] == label][: n * cells]
        rows += list(pool)
        t.loc[pool, "patient"] = [f"{prefix}{1 + k // cells}" for k in range(len(pool))]
    sub = ds.subset(sorted(rows))
    sub.table["group"] = sub.table["patient"]
    return sub


def test_honest_protocol_takes_its_folds_from_the_subjects():
    """Three normal subjects allow three folds, whatever was asked; the page can say so."""
    ds = _subjects(5, 3)
    res = honest_protocol(ds, colour_features, ["svm"], target_per_class=None, n_splits=5, n_repeats=1,
                          inner_splits=3, search="small", progress=False)
    assert res["svm"].settings["n_splits"] == 3 and res["svm"].settings["n_splits_asked"] == 5
    assert len(res["svm"].evaluations) == 3 and res["svm"].group_leaks == 0
    # two normal subjects left on each training side: the inner CV has two grouped folds
    assert all(len(e.grid) == 4 and "tuned" not in e.best_params for e in res["svm"].evaluations)


def test_honest_protocol_with_two_subjects_per_class_does_not_tune_and_does_not_crash():
    ds = _subjects(2, 2)
    res = honest_protocol(ds, colour_features, ["svm", "rf"], target_per_class=None, n_splits=5, n_repeats=1,
                          search="small", progress=False)
    assert res["svm"].settings["n_splits"] == 2
    assert all(e.best_params.get("tuned") is False and e.grid is None for e in res["svm"].evaluations)
    assert all("tuned" not in e.best_params for e in res["rf"].evaluations)  # nothing to tune


def test_a_class_with_one_subject_is_a_clear_error():
    with pytest.raises(ValueError, match="class 0 has 1 group .* at least 2 per class"):
        honest_protocol(_subjects(4, 1), colour_features, ["rf"], target_per_class=None, progress=False)


def test_scaled_target_keeps_the_paper_ratio():
    """With scale_target, each training side grows by the whole set's factor."""
    ds = _subjects(4, 3)
    seen = []

    def spy(d):
        seen.append(d.table.copy())
        return colour_features(d)

    honest_protocol(ds, spy, ["rf"], target_per_class=60, scale_target=True, n_splits=3, n_repeats=1,
                    progress=False)
    for train in seen[0::2]:
        originals = int((~train["augmented"]).sum())
        assert train.groupby("label").size().tolist() == [round(60 * originals / len(ds))] * 2


def test_per_subject_accuracy_and_subject_probe():
    from alllib.learn.protocols import per_group_accuracy, subject_probe

    ds = _subjects(4, 3)
    res = honest_protocol(ds, colour_features, ["rf"], target_per_class=None, n_splits=3, n_repeats=2,
                          progress=False)
    acc = per_group_accuracy(res["rf"], ds, "patient")
    assert sorted(acc.index) == sorted(ds.table["patient"].unique())
    assert (acc["n_test"] == 12).all()  # six cells per subject, tested once per repeat
    e = res["rf"].evaluations
    assert acc["correct"].sum() == sum(int((x.y_true == x.y_pred).sum()) for x in e)
    # subject identity planted in the features is found; pure noise is at chance
    rng = np.random.default_rng(0)
    code = pd.factorize(ds.table["patient"])[0]
    X = rng.normal(size=(len(ds), 8)) + 6 * np.eye(8)[code]
    probe = subject_probe(X, ds, n_splits=3)
    assert probe.loc["all subjects", "accuracy"] > 0.9 and probe.loc["all subjects", "subjects"] == 7
    noise = subject_probe(rng.normal(size=(len(ds), 8)), ds, n_splits=3)
    assert noise.loc["all subjects", "accuracy"] < 0.45
    assert list(noise.index) == ["all subjects", "ALL patients only", "normal subjects only"]


def test_protocol_study_runs_all_four_settings_and_times_them():
    from alllib.book.studies import protocol_study

    ds = _subjects(4, 3)
    st = protocol_study(ds, colour_features, ["svm", "rf"], target_per_class=30, search="small", n_splits=5,
                        progress=False)
    assert st.honest["svm"].settings["n_splits"] == 3 and st.honest["svm"].settings["scale_target"]
    assert st.paper["svm"].settings["n_total"] == 60 and st.paper_noaug["svm"].settings["n_total"] == len(ds)
    assert st.paper["svm"].leaks > 0 and st.honest["rf"].leaks + st.honest["rf"].group_leaks == 0
    assert st.honest_noaug["rf"].settings["target_per_class"] is None
    assert list(st.probe.index)[0] == "all subjects"
    assert len(st.timings) == 4 * 3 + 1 and (st.timings["seconds"] >= 0).all()
    assert list(st.comparison("weighted_f1").columns)[0] == "paper protocol weighted_f1"
    frame = st.frame("efficientnet_lite0")  # every run once per table it appears in (VI, III, VIII)
    runs = frame.drop_duplicates(["protocol", "classifier", "condition"]).groupby("condition").size().to_dict()
    assert runs == {"test": 4, "train": 2, "aug": 4, "noaug": 4}
    same = [frame.query(f"condition == '{c}'").drop(columns="condition").reset_index(drop=True) for c in ("test", "aug")]
    pd.testing.assert_frame_equal(*same)  # Table VI's rows are Table VIII's augmented ones


def test_layers_study_and_acquisition_probe(small):
    """The four ALL-IDB2 layers on a dataset with slides and two acquisitions: the table's rows,
    their datasets' sizes and groups, and a probe that finds an acquisition written into the
    features."""
    from alllib.book.studies import layers_study

    t = small.table
    ds = small.subset(np.arange(len(small)))
    ds.table["dup_group"] = t["group"].to_numpy()
    ds.table["slide"] = [f"s{i // 4}" for i in range(len(t))]
    ds.table["group"] = ds.table["slide"]
    ds.table["acquisition"] = np.where(np.arange(len(t)) % 8 < 4, "2592x1944", "1712x1368")

    def featurize(d):  # colour statistics plus a column that carries the acquisition
        return np.column_stack([colour_features(d), (d.table["acquisition"] == "1712x1368").to_numpy(float)])

    table, probe = layers_study(ds, featurize, paper_target=None, honest_target=None, n_splits=2, search="none")
    assert list(table["images"]) == [40, 40, 40, 20] and list(table["groups"]) == [10, 38, 10, 5]
    assert table["balanced accuracy"].between(0, 1).all()
    assert probe["balanced accuracy"] > 0.75 and probe["images"] == 20  # chance: 0.5


def test_the_subject_probe_leaves_out_subjects_with_a_single_cell():
    """A partial C-NMC download can hold subjects with one cell: they are left out and counted
    (the probe used to stop the C-NMC chapter with a ValueError)."""
    from alllib.book.prose import probe_sentences
    from alllib.learn.protocols import subject_probe

    ds = _subjects(4, 3)
    t = ds.table
    keep = [i for i in range(len(ds)) if t["patient"].iloc[i] not in ("1", "H1") or
            i == int(np.flatnonzero(t["patient"] == t["patient"].iloc[i])[0])]
    partial = ds.subset(keep)
    assert (partial.table["patient"].value_counts() == 1).sum() == 2
    probe = subject_probe(colour_features(partial), partial, n_splits=3)
    assert probe.loc["all subjects", "subjects"] == 5 and probe.loc["all subjects", "subjects left out (one cell)"] == 2
    assert probe.loc["ALL patients only", "subjects left out (one cell)"] == 1
    assert "2 subjects with a single cell were left out" in probe_sentences(probe)


def test_a_checkpointed_honest_protocol_resumes_with_the_same_numbers(small, tmp_path, monkeypatch):
    """Each fold's fit is kept as it ends: a second run fits nothing and gives the same numbers;
    other settings (the augmentation target) fit afresh; a featurizer without a recipe is never kept."""
    import alllib.learn.protocols as protocols

    fits = []
    real_fit = protocols.fit_classifier

    def counted_fit(*args, **kwargs):
        fits.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(protocols, "fit_classifier", counted_fit)

    def features(ds):
        return colour_features(ds)

    features.recipe = "mean colour"
    run = dict(n_splits=4, n_repeats=1, seed=3, progress=False, search="small", checkpoint=tmp_path)
    first = honest_protocol(small, features, ["svm"], target_per_class=24, **run)
    assert len(fits) == 4
    again = honest_protocol(small, features, ["svm"], target_per_class=24, **run)
    assert len(fits) == 4 and again["svm"].fold_metrics().equals(first["svm"].fold_metrics())
    assert [e.best_params for e in again["svm"].evaluations] == [e.best_params for e in first["svm"].evaluations]
    pd.testing.assert_frame_equal(again["svm"].evaluations[0].grid, first["svm"].evaluations[0].grid,
                                  check_dtype=False)
    honest_protocol(small, features, ["svm"], target_per_class=30, **run)
    assert len(fits) == 8
    honest_protocol(small, colour_features, ["svm"], target_per_class=24, **run)
    assert len(fits) == 12 and len(list(tmp_path.glob("*.json.gz"))) == 8


def test_a_checkpointed_paper_protocol_keeps_each_classifier(small, tmp_path, monkeypatch):
    """Each classifier's evaluation is kept as it ends (a run stopped after the SVM resumes with the
    forest), with the same numbers, training metrics and leak count; never with keep_models."""
    import alllib.learn.protocols as protocols
    from alllib.book.studies import _TimedFeaturize

    fits = []
    real_fit = protocols.fit_classifier
    monkeypatch.setattr(protocols, "fit_classifier", lambda name, *a, **k: fits.append(name) or real_fit(name, *a, **k))

    def features(ds):
        return colour_features(ds)

    features.recipe = "mean colour"
    run = dict(target_per_class=30, search="none", seed=1, checkpoint=tmp_path)
    first = paper_protocol(small, features, ["svm"], **run)
    both = paper_protocol(small, _TimedFeaturize(features), ["svm", "rf"], **run)  # timing changes no recipe
    assert fits == ["svm", "rf"]
    e, k = first["svm"].evaluations[0], both["svm"].evaluations[0]
    assert k.metrics == e.metrics and k.train_metrics == e.train_metrics and k.leak == e.leak
    assert np.array_equal(k.scores, e.scores) and list(k.test_ids) == list(e.test_ids)
    paper_protocol(small, features, ["svm"], keep_models=True, **run)
    assert fits == ["svm", "rf", "svm"]  # a kept model is never a memo
    paper_protocol(small, features, ["svm"], **{**run, "target_per_class": 32})
    assert fits == ["svm", "rf", "svm", "svm"]


def test_the_shared_source_example_is_a_test_copy_with_its_training_siblings(small):
    """The figure of chapter 9: a test image that is an augmented copy, and training images made from
    the same original; a split with no copy on the test side is refused."""
    from alllib.augmentation import balance
    from alllib.learn.protocols import shared_source_example

    big = balance(small, 60, Augmenter(seed=0))
    test_ids = set(big.table["id"].iloc[::5])
    shown = shared_source_example(big, test_ids, n=3)
    t = big.table.reset_index(drop=True)
    assert t.loc[shown[0], "id"] in test_ids and t.loc[shown[0], "augmented"]
    assert 1 <= len(shown) - 1 <= 3 and not set(t.loc[shown[1:], "id"]) & test_ids
    assert set(t.loc[shown, "source"]) == {t.loc[shown[0], "source"]}
    with pytest.raises(ValueError, match="no test image is an augmented copy"):
        shared_source_example(big, set(t.loc[~t["augmented"], "id"]))


def test_the_stain_probe_runs_the_subject_probe_before_and_after_normalising(monkeypatch):
    from alllib.learn import protocols

    ds = _subjects(4, 3)
    seen = []

    class Grey:
        recipe = "grey"

        def transform_image(self, img):
            seen.append(img.shape)
            return np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)

    probe = protocols.stain_probe(ds, colour_features, Grey(), seed=0)
    assert list(probe.index.get_level_values("features").unique()) == ["frozen", "after Grey"]
    assert len(seen) == len(ds)  # every image normalised once, for the second block only
    pd.testing.assert_frame_equal(probe.loc["frozen"], protocols.subject_probe(colour_features(ds), ds, seed=0))

"""The honest candidates: paired folds, training-side fitting, TTA views and Reinhard."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alllib.augmentation import dihedral, transformed
from alllib.data import load_dataset
from alllib.learn.candidates import candidates_table, evaluate_candidates, frozen_svm, normalised_svm
from alllib.preprocessing import Reinhard


def test_dihedral_gives_eight_distinct_views_and_refuses_a_ninth():
    img = np.arange(3 * 3 * 3, dtype=np.uint8).reshape(3, 3, 3)
    views = {dihedral(img, t).tobytes() for t in range(8)}
    assert len(views) == 8 and dihedral(img, 0).tobytes() == img.tobytes()
    with pytest.raises(ValueError, match="0-7"):
        dihedral(img, 8)


def test_reinhard_moves_colour_statistics_to_the_training_target():
    rng = np.random.default_rng(0)
    train = [np.clip(rng.normal(150, 20, (32, 32, 3)), 0, 255).astype(np.uint8) for _ in range(3)]
    test = np.clip(rng.normal(90, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
    norm = Reinhard().fit(train)
    out_stats = Reinhard._stats(norm.transform_image(test))
    np.testing.assert_allclose(out_stats[0], norm.mean_, atol=2.5)  # rounding to uint8 and back through RGB
    assert np.abs(Reinhard._stats(test)[0] - norm.mean_).max() > 10  # it did move
    other = Reinhard().fit([test])
    assert other.recipe != norm.recipe  # a different target is a different cache key
    black = test.copy()
    black[:8] = 0
    assert (norm.transform_image(black)[:8] == 0).all()  # pre-segmented background stays black
    with pytest.raises(RuntimeError, match="not fitted"):
        Reinhard().transform_image(test)


def _fake(ds):
    """Features that are the image's mean colour (fast, and they depend on the pixels)."""
    return np.stack([ds.image(i).reshape(-1, 3).mean(0) for i in range(len(ds))])


def test_candidates_are_fitted_on_training_groups_only_and_paired():
    ds = load_dataset("synthetic", n=40, size=48, verbose=False)
    seen = []

    def spy(train, test, seed):
        seen.append((set(train.groups), set(test.groups), set(train.ids) & set(test.ids)))
        return np.where(np.arange(len(test)) % 2 == 0, 1.0, -1.0)

    res = evaluate_candidates(ds, {"spy": spy, "frozen": frozen_svm(_fake, search="none")}, n_splits=4, progress=False)
    assert len(seen) == 4 and all(not (tr & te) and not shared for tr, te, shared in seen)
    spied = res["spy"].pooled()
    ids, y, pred = spied["id"], spied["y_true"], spied["y_pred"]
    assert len(ids) == len(ds) == len(set(ids))
    table = candidates_table(res, "frozen", n_boot=300)
    from alllib.learn.metrics import binary_metrics

    base = res["frozen"].pooled()["y_pred"]
    gap = 100 * (binary_metrics(y, pred)["balanced_accuracy"] - binary_metrics(y, base)["balanced_accuracy"])
    r = table.loc["spy"]
    assert r["difference (points)"] == pytest.approx(gap)
    assert r["difference low (points)"] <= r["difference high (points)"] and r["detectable (points)"] > 0
    assert 0 <= r["p (corrected t-test)"] <= 1 and pd.isna(table.loc["frozen", "difference (points)"])
    assert table.loc["frozen", "balanced accuracy 95% low"] <= table.loc["frozen", "balanced accuracy"]
    with pytest.raises(ValueError, match="baseline"):
        candidates_table(res, "nothing")


def test_the_comparison_says_better_or_could_not_tell_and_what_it_could_detect():
    """A candidate that is right wherever the baseline errs is found better; a copy of the
    baseline cannot be told apart, and the sentence says how large a difference the run could
    have seen, never that it "does not help"."""
    from alllib.book.prose import candidates_sentences

    ds = load_dataset("synthetic", n=60, size=48, verbose=False)

    def oracle(train, test, seed):
        return np.where(test.labels == 1, 1.0, -1.0)

    def noisy(train, test, seed):
        rng = np.random.default_rng(seed)
        return np.where(rng.random(len(test)) < 0.6, 1.0, -1.0) * np.where(test.labels == 1, 1.0, -1.0)

    def other_noise(train, test, seed):
        return noisy(train, test, seed + 100)

    res = evaluate_candidates(ds, {"noisy": noisy, "oracle": oracle, "copy": noisy, "other noise": other_noise},
                              n_splits=3, n_repeats=2, progress=False)
    table = candidates_table(res, "noisy", n_boot=500, n_perm=999)
    assert table.loc["oracle", "verdict"] == "better" and table.loc["oracle", "p (corrected t-test)"] < 0.05
    assert table.loc["oracle", "p (Holm)"] >= table.loc["oracle", "p"] >= table.loc["oracle", "p (sign flip)"]
    assert table.loc["copy", "difference (points)"] == 0 and table.loc["copy", "images called differently"] == 0
    said = candidates_sentences(table, "noisy")
    assert "Oracle: 100.0 %" in said and "better than the baseline: both tests find the difference" in said
    assert "Copy: " in said and "the same calls as the baseline on every image" in said
    r = table.loc["other noise"]
    assert r["verdict"] == "could not tell" and r["detectable (points)"] > 5
    assert r["difference low (points)"] < r["difference high (points)"]
    assert (f"Other noise: {100 * r['balanced accuracy']:.1f} % ({r['difference (points)']:+.1f} points; could not tell "
            f"it from the baseline ({r['difference low (points)']:+.1f} to") in said
    assert f"this run could detect about {r['detectable (points)']:.1f} points or more" in said
    assert "With 3 candidates against one baseline" in said and "Holm's correction" in said
    assert "does not help" not in said
    assert table.attrs["repeats"] == 2 and table.attrs["folds"] == 6


def test_tta_averages_the_eight_views_and_reinhard_fits_on_the_training_side():
    ds = load_dataset("synthetic", n=24, size=48, verbose=False)
    calls = []

    def featurize(d):
        calls.append(d)
        return _fake(d)

    frozen_svm(featurize, search="none", tta=True)(ds.subset(range(16)), ds.subset(range(16, 24)), 0)
    # the training side, then the test side itself and its seven other views
    assert len(calls) == 9 and sum("dihedral" in d.source for d in calls) == 7

    fitted = []
    original_fit = Reinhard.fit_stats

    def spy_fit(self, stats):
        fitted.append(np.asarray(stats))
        return original_fit(self, stats)

    Reinhard.fit_stats = spy_fit
    try:
        candidate = normalised_svm(_fake, search="none")
        candidate(ds.subset(range(16)), ds.subset(range(16, 24)), 0)
        candidate(ds.subset(range(8, 24)), ds.subset(range(8)), 1)  # another fold: the stats of images 8-15 kept
    finally:
        Reinhard.fit_stats = original_fit
    # fitted on the training side only, each time, with each image's own statistics
    assert [len(f) for f in fitted] == [16, 16]
    own = np.array([Reinhard._stats(ds.image(i)) for i in range(24)])
    np.testing.assert_array_equal(fitted[0], own[:16])
    np.testing.assert_array_equal(fitted[1], own[8:])


def test_transformed_datasets_have_their_own_cache_keys():
    ds = load_dataset("synthetic", n=4, size=48, verbose=False)
    flipped = transformed(ds, lambda im: im[:, ::-1], "flip")
    assert flipped.image_key(0) != ds.image_key(0) and (flipped.image(0) == ds.image(0)[:, ::-1]).all()


def test_per_group_table_shows_each_normal_subject_and_its_specificity():
    """C-NMC by subject: a donor's share labelled correctly is its specificity, one row per donor."""
    from alllib.book.prose import per_group_sentences
    from alllib.learn.candidates import per_group_table
    from alllib.learn.evaluation import ProtocolResult, score_evaluation

    y = np.array([1, 1, 1, 0, 0, 0, 0])
    groups = np.array(["P1", "P1", "P2", "H1", "H1", "H2", "H2"], object)
    scores = np.array([1, 1, -1, -1, -1, 1, -1.0])  # P2 missed, one of H2's two cells called a blast
    e = score_evaluation("frozen", y, scores, np.arange(7), groups=groups)
    table = per_group_table({"frozen": ProtocolResult("candidates", "frozen", [e], {})})
    assert table.loc[("frozen", "H2"), "correct"] == 0.5 and table.loc[("frozen", "H1"), "correct"] == 1.0
    assert table.loc[("frozen", "P2"), "measures"] == "sensitivity" and table.loc[("frozen", "H2"), "images"] == 2
    said = per_group_sentences(table, "frozen")
    assert "the 2 normal subjects' specificity, one by one: H1: 100.0 % of 2 images" in said
    assert "H2: 50.0 % of 2 images" in said and "spans 50.0 points" in said
    from alllib.learn.candidates import per_group_shares

    other = score_evaluation("other", y, -scores, np.arange(7), groups=groups)
    both = per_group_table({"frozen": ProtocolResult("candidates", "frozen", [e], {}),
                            "other": ProtocolResult("candidates", "other", [other], {})})
    wide = per_group_shares(both, "frozen")
    assert list(wide.columns) == ["frozen", "other", "class", "images", "measures"]
    assert wide.index.tolist() == ["P2", "P1", "H2", "H1"]  # patients, then donors; the baseline's lowest first
    assert wide.loc["H2", ["frozen", "other"]].tolist() == [0.5, 0.5] and wide.loc["P2", "other"] == 1.0


def test_one_call_per_person_from_held_out_cells():
    """Subject-level accuracy: each person is called ALL, normal or uncertain from their held-out
    cells' labels (Wilson interval of the share of blasts against one half); an uncertain call
    counts against the candidate."""
    from alllib.learn.candidates import per_group_table, subject_level_table
    from alllib.learn.evaluation import ProtocolResult, score_evaluation

    groups = np.repeat(["P1", "P2", "H1", "H2"], 20).astype(object)
    y = np.repeat([1, 1, 0, 0], 20)
    blasts = {"P1": 18, "P2": 11, "H1": 2, "H2": 17}  # P2 near one half: uncertain; H2 called ALL
    scores = np.concatenate([np.r_[np.ones(b), -np.ones(20 - b)] for b in blasts.values()])
    e = score_evaluation("frozen", y, scores, np.arange(80), groups=groups)
    table = per_group_table({"frozen": ProtocolResult("candidates", "frozen", [e], {})})
    assert table.xs("frozen")["call"].to_dict() == {"H1": "normal", "H2": "ALL", "P1": "ALL", "P2": "uncertain"}
    people = subject_level_table(table).loc["frozen"]
    assert (people["called right"], people["uncertain"], people["called wrong"]) == (2, 1, 1)
    assert people["person-level accuracy"] == 0.5 and people["normal called right"] == "1/2"
    from alllib.book.prose import person_level_sentences

    both = subject_level_table(per_group_table({"frozen": ProtocolResult("candidates", "frozen", [e], {}),
                                                "oracle": ProtocolResult("candidates", "oracle", [
                                                    score_evaluation("oracle", y, 2.0 * y - 1, np.arange(80),
                                                                     groups=groups)], {})}))
    said = person_level_sentences(both, "frozen")
    assert "gets 2 of 4 subjects right: 1/2 healthy donors and 1/2 patients, with 1 left uncertain" in said
    assert "More people right: oracle, 4 (2/2 donors)" in said
    assert "No candidate calls more" in person_level_sentences(both.loc[["frozen"]], "frozen")


def test_neighbourhood_correction_pulls_a_cell_toward_the_cells_most_like_it():
    from alllib.learn.neighbours import neighbourhood_correction

    rng = np.random.default_rng(0)
    person_a = rng.normal([5, 0, 0], 0.1, (6, 3))
    person_b = rng.normal([0, 5, 0], 0.1, (6, 3))
    X = np.vstack([person_a, person_b])
    scores = np.r_[[-1.0] * 5, 2.0, [1.0] * 6]  # one of person a's cells called a blast
    out = neighbourhood_correction(X, scores, k=5, weight=0.5)
    assert out[5] == pytest.approx(0.5 * 2.0 + 0.5 * -1.0, abs=1e-6) and (out[6:] > 0).all()
    assert np.array_equal(neighbourhood_correction(X, scores, weight=0), scores)
    with pytest.raises(ValueError, match="weight must be in"):
        neighbourhood_correction(X, scores, weight=2)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        neighbourhood_correction(X, scores, k=0)


def test_class_weights_reach_every_classifier():
    from alllib.learn.classifiers import fit_classifier

    X = np.random.default_rng(1).normal(size=(40, 4))
    y = np.r_[np.ones(30, int), np.zeros(10, int)]
    svm, _ = fit_classifier("svm", X, y, search="none", class_weight="balanced")
    rf, _ = fit_classifier("rf", X, y, search="none", class_weight="balanced")
    xgb, _ = fit_classifier("xgboost", X, y, search="none", class_weight="balanced")
    assert svm[-1].class_weight == "balanced" and rf[-1].class_weight == "balanced"
    assert xgb[-1].get_params()["scale_pos_weight"] == pytest.approx(10 / 30)
    with pytest.raises(ValueError, match="class_weight must be None or 'balanced'"):
        fit_classifier("svm", X, y, search="none", class_weight="heavy")


def test_nucleus_features_see_a_larger_nucleus():
    """Synthetic blasts have larger nuclei (alllib.data.synthetic): the nucleus area tells them apart."""
    from alllib.features.nucleus import NUCLEUS_FEATURES, NucleusFeaturizer

    ds = load_dataset("synthetic", n=20, size=96, seed=4, verbose=False)
    X = NucleusFeaturizer(progress=False)(ds)
    area = X[:, NUCLEUS_FEATURES.index("area")]
    assert area[ds.labels == 1].mean() > area[ds.labels == 0].mean() and (X[:, 0] > 0).all()


@pytest.mark.parametrize("as_text", [False, True])
def test_recipes_follow_the_weights_files_content(tmp_path, as_text):
    """Kept fits are found by the weights' content: a weights file changed under the same name is
    another recipe, for frozen features and for fine-tuning alike; the same content, the same one."""
    from alllib.features import Featurizer
    from alllib.learn.finetune import finetuned

    def recipes():
        weights = str(path) if as_text else path
        return Featurizer("efficientnet_lite0", weights=weights).recipe, finetuned(epochs=1, weights=weights).recipe

    path = tmp_path / "lite0.weights.h5"
    path.write_bytes(b"one set of weights")
    first = recipes()
    assert None not in first and recipes() == first
    path.write_bytes(b"another set of weights")
    assert all(x != y for x, y in zip(first, recipes()))


def test_candidates_carry_recipes_that_tell_their_settings_apart(tmp_path):
    """A checkpointed comparison finds a candidate's fits again by its recipe: other settings are
    fitted afresh, the same settings are not, and a featurizer that says nothing of itself (a bare
    function) is never kept."""
    from alllib.augmentation import Augmenter
    from alllib.features import Featurizer
    from alllib.features.nucleus import NucleusFeaturizer
    from alllib.learn.candidates import side_by_side

    lite0 = Featurizer("efficientnet_lite0")
    recipes = [frozen_svm(lite0).recipe, frozen_svm(lite0, search="none").recipe,
               frozen_svm(lite0, target_per_class=10, augmenter=Augmenter(hue=0.04)).recipe,
               frozen_svm(lite0, target_per_class=10, augmenter=Augmenter()).recipe,
               frozen_svm(Featurizer("efficientnet_lite0", segmentation={"method": "kmeans"})).recipe,
               normalised_svm(lite0).recipe, frozen_svm(side_by_side(lite0, NucleusFeaturizer(k=3))).recipe,
               frozen_svm(side_by_side(lite0, NucleusFeaturizer(k=4))).recipe]
    assert None not in recipes and len({repr(r) for r in recipes}) == len(recipes)
    assert frozen_svm(lite0, search="none").recipe == frozen_svm(Featurizer("efficientnet_lite0"), search="none").recipe
    assert frozen_svm(_fake).recipe is None and frozen_svm(side_by_side(lite0, _fake)).recipe is None

    ds = load_dataset("synthetic", n=24, size=48, verbose=False)
    seen = []

    def counted(d):
        seen.append(len(d))
        return _fake(d)

    counted.recipe = "fake features"
    for _ in range(2):
        evaluate_candidates(ds, {"frozen": frozen_svm(counted, search="none"), "bare": frozen_svm(_fake, search="none")},
                            n_splits=3, progress=False, checkpoint=tmp_path)
    assert len(seen) == 6 and len(list(tmp_path.glob("*.json.gz"))) == 3  # fitted once; "bare" never kept


def test_new_candidates_fit_on_the_training_side_only():
    """Features centred per person use only each person's own cells (no labels); the threshold
    chosen on other people moves the decision by a cut found on the training side's out-of-fold
    decisions; Macenko normalisation fits nothing, so both sides get the same transform."""
    from alllib.learn.candidates import per_person_centred
    from alllib.preprocessing import Macenko

    ds = load_dataset("synthetic", n=40, size=48, verbose=False)
    centred = per_person_centred(_fake)(ds)
    for g in np.unique(ds.groups):
        assert np.allclose(centred[ds.groups == g].mean(axis=0), 0, atol=1e-4)
    train, test = ds.subset(range(28)), ds.subset(range(28, 40))
    plain = frozen_svm(_fake, search="none")(train, test, 0)
    moved = frozen_svm(_fake, search="none", threshold="balanced")(train, test, 0)
    shift = plain - moved
    assert np.allclose(shift, shift[0]) and moved.shape == plain.shape  # one cut, from the training side
    with pytest.raises(ValueError, match="threshold"):
        frozen_svm(_fake, threshold="median")
    seen = []
    original = Macenko.fit

    def spy(self, images, y=None):
        seen.append(len(list(images)))
        return original(self, images)

    Macenko.fit = spy
    try:
        normalised_svm(_fake, Macenko(), search="none")(train, test, 0)
    finally:
        Macenko.fit = original
    assert seen == [len(train)]  # fitted (a no-op) on the training images only


def test_cnmc_candidates_name_what_the_full_profile_adds():
    from alllib.learn.candidates import cnmc_candidates

    baseline, quick, full_only = cnmc_candidates(_fake, profile="quick")
    assert baseline == "frozen" and baseline in quick and not set(full_only) & set(quick)
    _, full, _ = cnmc_candidates(_fake, profile="full", lite2=_fake)
    assert set(full) == set(quick) | set(full_only)


def test_the_cross_dataset_table_trains_each_way_for_every_setting(synthetic):
    from alllib.learn.candidates import cross_dataset_table

    from .conftest import colour_features

    first, second = synthetic.subset(range(6)), synthetic.subset(range(6, 12))
    first.name = "left"
    assert set(first.labels) == set(second.labels) == {0, 1}
    table = cross_dataset_table(first, second, {"colour": colour_features,
                                                "brightness": lambda d: colour_features(d)[:, :1]}, search="none")
    assert table.index.get_level_values("setting").tolist() == ["colour", "colour", "brightness", "brightness"]
    assert [t.split(" (")[0] for t in table.index.get_level_values("train")] == ["left", second.name] * 2
    assert table["balanced_accuracy"].between(0, 1).all()

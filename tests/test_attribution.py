"""Grad-CAM through the real SVM, occlusion and the nucleus share: exact where they claim to be."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from alllib.attribution import grad_cam, inside_share, occlusion_map, svm_feature_gradient
from alllib.learn.classifiers import fit_classifier, make_classifier


def _data(seed=0, n=80, d=12):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 5, d) + rng.normal(size=d)
    return X, (X[:, 0] + X[:, 1] * 0.5 > X[:, 0].mean()).astype(int)


@pytest.mark.parametrize("kernel", ["rbf", "linear", "poly"])
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
    with pytest.raises(ValueError, match="sigmoid"):
        svm_feature_gradient(make_classifier("svm", kernel="sigmoid").fit(X, y), X)


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


@pytest.fixture(scope="module")
def random_study():
    """24 synthetic smears explained by a random-weights Lite0 and an SVM per grouped fold."""
    pytest.importorskip("keras")
    from alllib.attribution import attribution_study
    from alllib.data import load_dataset
    from alllib.features import FeatureExtractor

    ds = load_dataset("synthetic", n=24, size=64, verbose=False)
    return ds, attribution_study(ds, FeatureExtractor("efficientnet_lite0", weights="random", size=64), n_splits=3,
                                 search="none", progress=False)


@pytest.mark.slow
def test_attribution_study_explains_each_cell_with_a_model_that_never_saw_its_group(random_study):
    from alllib.attribution import inside_table

    ds, study = random_study
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


def test_minmax_scaler_gradient_multiplies_by_its_scale():
    """MinMaxScaler maps x to x * scale_ + min_, so the chain rule multiplies by scale_ (the old
    code divided, as for StandardScaler): checked against finite differences."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler
    from sklearn.svm import SVC

    X, y = _data()
    model = Pipeline([("scale", MinMaxScaler()), ("svm", SVC(gamma=0.5))]).fit(X, y)
    _, g = svm_feature_gradient(model, X[:1])
    eps = 1e-6
    num = [(model.decision_function(X[:1] + eps * e) - model.decision_function(X[:1] - eps * e))[0] / (2 * eps)
           for e in np.eye(X.shape[1])]
    np.testing.assert_allclose(g[0], num, rtol=1e-4, atol=1e-7)


def test_evidence_ignores_what_only_makes_an_image_atypical_and_randomised_weights_change_it():
    """svm_evidence is the share of the kernel votes for the class: far from every support vector
    (an atypical image) the decision falls to the intercept while the share keeps its sign; a
    permuted SVM has the same support vectors and a different decision."""
    from alllib.attribution import permuted_svm, svm_evidence

    X, y = _data()
    model = fit_classifier("svm", X, y, search="none")[0]
    e = svm_evidence(model, X)
    assert np.all(np.abs(e) <= 1) and np.corrcoef(e, model.decision_function(X))[0, 1] > 0.5
    far = X[:1] + 3 * (X[:1] - X.mean(0))  # an image pushed away from everything seen
    assert abs(model.decision_function(far)[0] - model[-1].intercept_[0]) < abs(model.decision_function(X[:1])[0]) + 1
    shuffled = permuted_svm(model, seed=1)
    np.testing.assert_array_equal(shuffled[-1].support_vectors_, model[-1].support_vectors_)
    f, _ = svm_feature_gradient(shuffled, X[:6])
    np.testing.assert_allclose(f, shuffled.decision_function(X[:6]), atol=1e-10)  # libsvm agrees with our formula
    assert not np.allclose(f, model.decision_function(X[:6]))


def test_deletion_and_insertion_reward_the_map_that_finds_what_the_score_reads():
    """A score that reads one square: the map that marks it deletes the score first and inserts it
    first; a random smooth map does neither as well; the fill is the blurred image."""
    from alllib.attribution import blurred_fill, deletion_insertion, random_smooth_map

    x = np.zeros((48, 48, 3), np.float32)
    x[8:16, 30:38] = 1.0
    score = lambda b: b[:, 8:16, 30:38].mean(axis=(1, 2, 3))  # noqa: E731
    right = np.zeros((48, 48))
    right[8:16, 30:38] = 1.0
    fill = blurred_fill(x)
    assert fill.shape == x.shape and fill[8:16, 30:38].mean() < 0.9
    good = deletion_insertion(score, x, right, fill=fill, steps=12)
    rand = deletion_insertion(score, x, random_smooth_map(48, np.random.default_rng(0)), fill=fill, steps=12)
    assert good[0] < rand[0] and good[1] > rand[1]


def _check_rows(kind, cells, weights, labels, consistency, gain, rng, *, second_fill_gain=None):
    """Rows of cell_map_checks for a made-up map kind: randomised rhos, a consistency rho, and
    deletion/insertion gains over the random map with each fill."""
    rows = []
    for cell in range(cells):
        noise = rng.normal(0, 0.05, 5)
        row = {"id": cell, "label": cell % 2, "map": kind, "weights rho": weights + noise[2],
               "labels rho": -(labels + noise[3]), "consistency rho": consistency + noise[4] if consistency == consistency
               else np.nan, "empty": cell == 0, "inside": np.nan if cell == 0 else 0.5, "mask area": 0.3}
        for fill, g in (("blurred", gain), ("mean colour", gain if second_fill_gain is None else second_fill_gain)):
            row.update({f"deletion ({fill})": 1 - g + noise[0], f"random deletion ({fill})": 1.0,
                        f"insertion ({fill})": g + noise[1], f"random insertion ({fill})": 0.0})
        rows.append(row)
    return rows


def test_the_sanity_table_passes_only_what_beats_random_with_every_fill_and_changes_with_the_model():
    from alllib.attribution import passing_inside_table, sanity_table
    from alllib.book.prose import sanity_sentences

    rng = np.random.default_rng(0)
    rows = (_check_rows("good", 12, 0.1, 0.2, 0.8, 0.3, rng) + _check_rows("stubborn", 12, 0.9, 0.2, 0.8, 0.3, rng)
            + _check_rows("label-blind", 12, 0.1, 0.8, 0.8, 0.3, rng)
            + _check_rows("random-like", 12, 0.1, 0.1, 0.8, 0.0, rng)
            + _check_rows("own fill only", 12, 0.1, 0.1, 0.8, 0.3, rng, second_fill_gain=0.0)
            + _check_rows("no variant", 12, 0.1, 0.1, np.nan, 0.3, rng))
    table = sanity_table(pd.DataFrame(rows))
    assert table["reads"].to_dict() == {"good": True, "stubborn": False, "label-blind": False, "random-like": False,
                                        "own fill only": False, "no variant": False}
    assert table.loc["stubborn", "randomisation"] == "fail" and table.loc["random-like", "deletion"] == "fail"
    assert table.loc["own fill only", "deletion"] == "fail" and table.loc["own fill only", "insertion"] == "fail"
    assert table.loc["no variant", "randomisation"] == "not measured"
    assert table.loc["label-blind", "labels randomised |rho|"] == pytest.approx(0.8, abs=0.05)  # |rho|
    assert table.loc["good", "empty"] == 1
    said = sanity_sentences(table)
    assert "Stubborn fails: it is about as like its maps under shuffled weights (median |rho| 0.9" in said
    assert "Own fill only fails: in deletion with the mean colour fill it beats a random smooth map on" in said
    assert "with the blurred fill" not in said.split("Own fill only fails")[1].split("Random")[0].split(".")[0]
    assert "No variant fails: its randomisation could not be judged" in said
    assert "Good passes" in said and "Only good earns a reading" in said
    assert "Each check is a paired test on 12 cells" in said and '"could not tell"' in said
    assert "could not tell" not in sanity_sentences(table.loc[["good"]])
    inside = passing_inside_table(pd.DataFrame(rows), table)
    assert set(inside.index.get_level_values("map")) == {"good"}
    assert inside.loc[("good", "not a blast"), "empty maps"] == 1  # counted, not dropped


def test_a_model_free_centred_map_and_an_inverted_map_fail_the_checks():
    """The checks of cell_map_checks on real curves: a "model" whose evidence lies in one square of
    each cell, its true map, the same map inverted, and a map that ignores the model (a centred
    Gaussian blob plus pixel noise of SD 0.3, the map that passed the old rule). Only the true map
    reads."""
    from alllib.attribution import cell_map_checks, random_smooth_map, sanity_table

    rng = np.random.default_rng(1)
    size = 48
    yy, xx = np.mgrid[:size, :size]
    blob = np.exp(-((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (2 * (size / 6) ** 2))

    def square_map(r, c, sigma):
        m = np.zeros((size, size), np.float32)
        m[r:r + 10, c:c + 10] = 1
        return cv2.GaussianBlur(m, (0, 0), sigma)

    rows = []
    for cell in range(10):
        (r, c), (rw, cw), (rl, cl) = rng.integers(2, size - 12, (3, 2))
        x = 0.3 * rng.random((size, size, 3)).astype(np.float32)
        x[r:r + 10, c:c + 10, 0] = 1.0  # the evidence the model uses
        heads = lambda b, r=r, c=c: np.stack([b[:, r:r + 10, c:c + 10, 0].mean(axis=(1, 2))] * 2, axis=1)  # noqa: E731
        noisy = lambda: blob + rng.normal(0, 0.3, blob.shape)  # noqa: E731
        true = {"model": square_map(r, c, 2), "weights": square_map(rw, cw, 2), "labels": square_map(rl, cl, 2)}
        maps = {"true": true, "inverted": {k: -v for k, v in true.items()},
                "model-free": {"model": noisy(), "weights": noisy(), "labels": noisy()}}
        variants = {"true": square_map(r, c, 4), "inverted": -square_map(r, c, 4), "model-free": noisy()}
        rows += cell_map_checks(maps, variants, heads, x, sign=1.0, random_map=random_smooth_map(size, rng), steps=8)
    table = sanity_table(pd.DataFrame(rows))
    assert table["reads"].to_dict() == {"true": True, "inverted": False, "model-free": False}
    assert table.loc["model-free", "randomisation"] == "fail"
    assert table.loc["inverted", "deletion"] == "fail" and table.loc["inverted", "insertion"] == "fail"


@pytest.mark.slow
def test_sanity_checks_run_every_map_kind_on_a_real_study(random_study, tmp_path, monkeypatch):
    from alllib.attribution import MAP_KINDS, sanity_checks, sanity_table

    _, study = random_study
    checks = sanity_checks(study, [0, 1, 2], patch=24, stride=12, steps=6, rise_masks=8, progress=False)
    assert len(checks) == 3 * len(MAP_KINDS) and set(checks["map"]) == set(MAP_KINDS)
    for rho in ("weights rho", "labels rho", "consistency rho"):
        assert checks[rho].dropna().between(-1, 1).all(), rho
    assert checks["deletion (blurred)"].notna().all() and checks["insertion (mean colour)"].notna().all()
    assert checks["consistency rho"].notna().any()
    empty_cams = checks["empty"] & checks["map"].str.startswith("Grad-CAM")  # all zero: ranks nothing
    assert checks.loc[empty_cams, "weights rho"].isna().all()
    assert sanity_table(checks).shape[0] == len(MAP_KINDS)
    again = sanity_checks(study, [0, 1, 2], patch=24, stride=12, steps=6, rise_masks=8, progress=False)
    pd.testing.assert_frame_equal(checks, again)  # one seed, the same numbers
    kept = tmp_path / "kept"  # stopped after two cells, then resumed: the same rows, the kept cells not redone
    assert study.key
    sanity_checks(study, [0, 1], patch=24, stride=12, steps=6, rise_masks=8, progress=False, checkpoint=kept)
    import alllib.attribution.study as studies

    computed = []
    real_cell_maps = studies._cell_maps
    monkeypatch.setattr(studies, "_cell_maps", lambda s, i, *a, **k: computed.append(i) or real_cell_maps(s, i, *a, **k))
    resumed = sanity_checks(study, [0, 1, 2], patch=24, stride=12, steps=6, rise_masks=8, progress=False,
                            checkpoint=kept)
    pd.testing.assert_frame_equal(checks, resumed)
    assert computed == [2]
    sanity_checks(study, [0], patch=24, stride=12, steps=4, rise_masks=8, progress=False, checkpoint=kept)
    assert computed == [2, 0]  # other settings: computed afresh
    monkeypatch.undo()
    one = sanity_checks(study, [1], kinds=["occlusion of the decision"], patch=24, stride=12, steps=6,
                        consistency=False, progress=False)
    assert one["map"].tolist() == ["occlusion of the decision"] and one["consistency rho"].isna().all()
    mine = checks[(checks["map"] == "occlusion of the decision") & (checks["id"] == one["id"].iloc[0])]
    assert one["weights rho"].iloc[0] == pytest.approx(mine["weights rho"].iloc[0])


def test_sanity_checks_refuse_an_unknown_map_kind():
    from alllib.attribution import sanity_checks

    with pytest.raises(ValueError, match="unknown map kinds \\['Grad-CAM\\+\\+'\\]"):
        sanity_checks(None, [], kinds=["Grad-CAM++"])


@pytest.mark.slow
def test_grad_cam_at_any_layer_equals_grad_cam_at_the_last_and_differs_at_the_finer(random_study):
    """grad_cam_at goes through the network with one backward pass; at the last convolutional layer it
    must give what grad_cam computes from the maps and the SVM's exact feature gradient."""
    from alllib.attribution.maps import _maps_model, conv_maps, finer_layer, grad_cam_at

    _, study = random_study
    ex, x = study.extractor, study.network_input(0)
    maps = conv_maps(ex, [x])
    _, g = svm_feature_gradient(study.model_of(0), maps.mean(axis=(1, 2)))
    last = _maps_model(ex).layers[-1].name
    here = grad_cam_at(ex, study.model_of(0), x, layer=last, sign=-1.0)
    np.testing.assert_allclose(here, grad_cam(maps, -g)[0], rtol=1e-4, atol=1e-6 * np.abs(maps).max())
    fine = grad_cam_at(ex, study.model_of(0), x, layer=finer_layer(ex))
    assert fine.shape == (2 * maps.shape[1], 2 * maps.shape[2])


@pytest.mark.slow
def test_map_agreement_compares_every_pair_on_every_image(random_study, tmp_path, monkeypatch):
    from alllib.attribution import AGREEMENT_KINDS, agreement_matrix, map_agreement
    from alllib.book.prose import agreement_sentences

    _, study = random_study
    agreement = map_agreement(study, patch=24, stride=12, progress=False)
    map_agreement(study, [0, 5], patch=24, stride=12, progress=False, checkpoint=tmp_path)
    import alllib.attribution.study as studies

    computed = []
    real_cell_maps = studies._cell_maps
    monkeypatch.setattr(studies, "_cell_maps", lambda s, i, *a, **k: computed.append(i) or real_cell_maps(s, i, *a, **k))
    resumed = map_agreement(study, patch=24, stride=12, progress=False, checkpoint=tmp_path)
    pd.testing.assert_frame_equal(agreement, resumed)
    assert sorted(computed) == sorted(set(range(len(study.table))) - {0, 5})
    monkeypatch.undo()
    pairs = len(AGREEMENT_KINDS) * (len(AGREEMENT_KINDS) - 1) // 2
    assert len(agreement) == len(study.table) * pairs and agreement["rho"].dropna().between(-1, 1).all()
    matrix = agreement_matrix(agreement)
    np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T)
    assert (np.diag(matrix) == 1).all()
    assert agreement_sentences(agreement).startswith(f"Over {len(study.table)} images, the median rank correlation")
    from alllib.attribution import agreement_sample

    drawn = agreement_sample(study, 2, seed=0, checkpoint=False)  # two images drawn with the seed, every pair
    chosen = sorted(np.random.default_rng(1).choice(len(study.table), size=2, replace=False).tolist())
    assert drawn["id"].unique().tolist() == study.table["id"].iloc[chosen].tolist() and len(drawn) == 2 * pairs
    assert study.summary() == (f"{study.description}; the SVM got {study.table['correct'].mean():.1%} of "
                               f"{len(study.table)} cells right")


def test_rise_finds_what_the_score_reads_with_one_seed_and_several_heads():
    from alllib.attribution import rise_map

    x = np.zeros((32, 32, 3), np.float32)
    x[:8, 24:] = 1.0
    score = lambda b: np.stack([b[:, :8, 24:].mean(axis=(1, 2, 3)), -b[:, :8, 24:].mean(axis=(1, 2, 3))], 1)  # noqa: E731
    m = rise_map(score, x, masks=200, cells=4, seed=3, batch=16)
    assert m.shape == (32, 32, 2)
    assert m[:8, 24:, 0].mean() > m[16:, :16, 0].mean() + 0.1 and m[:8, 24:, 1].mean() < m[16:, :16, 1].mean()
    np.testing.assert_allclose(m, rise_map(score, x, masks=200, cells=4, seed=3, batch=50), rtol=1e-12)  # batch-free
    assert not np.array_equal(m, rise_map(score, x, masks=200, cells=4, seed=4))
    with pytest.raises(ValueError, match="keep"):
        rise_map(score, x, keep=1.0)


def test_agreement_sentences_name_each_pair_and_the_pairs_that_could_not_be_compared():
    from alllib.attribution import agreement_matrix
    from alllib.book.prose import agreement_sentences

    rows = pd.DataFrame({"id": [1, 1, 2, 2, 3, 3], "first": ["A"] * 6, "second": ["B", "C"] * 3,
                         "rho": [0.9, np.nan, 0.7, np.nan, 0.5, np.nan]})
    said = agreement_sentences(rows)
    assert "Over 3 images" in said and "A and B, 0.70 (quartiles 0.60 to 0.80, 3 images)" in said
    assert "Not compared, every map of one kind being flat (it ranks nothing): A and C." in said
    assert "A and B rank the pixels alike on at least half the images (median 0.70)." in said
    assert agreement_matrix(rows).loc["B", "A"] == pytest.approx(0.7)
    low = agreement_sentences(rows.assign(rho=0.1))
    assert "No two kinds rank the pixels much alike" in low and "Not compared" not in low


def test_label_randomised_svm_keeps_the_settings_and_forgets_the_labels():
    from alllib.attribution import label_randomised_svm

    X, y = _data()
    model = fit_classifier("svm", X, y, search="none")[0].set_params(svm__C=3.0).fit(X, y)
    shuffled = label_randomised_svm(model, X, y, seed=1)
    assert shuffled is not model and shuffled[-1].C == 3.0 and shuffled[-1].shape_fit_ == model[-1].shape_fit_
    assert (shuffled.predict(X) == y).mean() < (model.predict(X) == y).mean()
    np.testing.assert_array_equal(shuffled.decision_function(X),
                                  label_randomised_svm(model, X, y, seed=1).decision_function(X))


@pytest.mark.slow
def test_integrated_gradients_through_the_network_add_up_to_the_decision_change(random_study):
    """Completeness (Sundararajan et al. 2017): the map sums to f(image) - f(baseline), which only
    holds if the chain rule through the network and the SVM is right."""
    from alllib.attribution import blurred_fill, integrated_gradients

    _, study = random_study
    model_of = lambda i: study.models[int(study.table["fold"].iloc[i])]  # noqa: E731
    change = []
    for i in range(len(study.table)):
        x = study.network_input(i)
        f = model_of(i).decision_function(study.extractor.embed([x, blurred_fill(x)]))
        change.append(f[0] - f[1])
    i = int(np.argmax(np.abs(change)))
    x = study.network_input(i)
    ig = integrated_gradients(study.extractor, model_of(i), x, baseline=blurred_fill(x), steps=32)
    assert ig.shape == x.shape[:2]
    assert abs(change[i]) > 1e-4 and ig.sum() == pytest.approx(change[i], rel=0.1)
    # the path in batches (a backward pass holds its batch's activations) is the path in one pass
    one_pass = integrated_gradients(study.extractor, model_of(i), x, baseline=blurred_fill(x), steps=32, batch=32)
    np.testing.assert_allclose(ig, one_pass, rtol=1e-4, atol=1e-7 * np.abs(one_pass).max())

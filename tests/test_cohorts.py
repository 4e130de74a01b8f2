"""Judging across cohorts: leave-one-cohort-out folds, the neighbourhood correction within a person,
tables by cohort and person, and rankings compared across cohorts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alllib.data import Dataset
from alllib.learn.candidates import evaluate_candidates
from alllib.learn.cohorts import cohort_table, grid_transfer, rank_agreement, ranking_table
from alllib.learn.evaluation import cohort_folds
from alllib.learn.neighbours import neighbourhood_correction


def _people(cohort_sizes=((3, 2), (4, 3)), cells=4):
    """A table of people in cohorts: (patients, donors) per cohort, ``cells`` cells each."""
    rows = []
    for c, (patients, donors) in enumerate(cohort_sizes, start=1):
        for p in range(patients + donors):
            label = int(p < patients)
            person = f"{'' if label else 'H'}{c}{p}"
            rows += [{"id": f"UID_{person}_{k}", "label": label, "patient": person, "group": person, "fold": c}
                     for k in range(cells)]
    table = pd.DataFrame(rows)
    return Dataset("cnmc", table, lambda row: np.zeros((8, 8, 3), np.uint8), source="made up")


def test_cohort_folds_hold_each_cohort_out_or_train_on_one():
    ds = _people(((3, 2), (4, 3), (2, 2)))
    folds = cohort_folds(ds.labels, ds.groups, ds.table["fold"])
    assert len(folds) == 3 and len({f.seed for f in folds}) == 3
    for f, cohort in zip(folds, (1, 2, 3)):
        assert set(ds.table["fold"].iloc[f.test]) == {cohort} and cohort not in set(ds.table["fold"].iloc[f.train])
        assert not set(ds.groups[f.train]) & set(ds.groups[f.test])
    (one,) = cohort_folds(ds.labels, ds.groups, ds.table["fold"], train_on=2)
    assert set(ds.table["fold"].iloc[one.train]) == {2} and set(ds.table["fold"].iloc[one.test]) == {1, 3}
    with pytest.raises(ValueError, match="at least 2 cohorts"):
        cohort_folds(ds.labels, ds.groups, np.ones(len(ds)))
    with pytest.raises(ValueError, match="no cohort 7"):
        cohort_folds(ds.labels, ds.groups, ds.table["fold"], train_on=7)
    straddling = ds.table["fold"].to_numpy().copy()
    straddling[0] = 2  # one cell of a fold_1 person put in fold_2
    with pytest.raises(ValueError, match="lies in several cohorts"):
        cohort_folds(ds.labels, ds.groups, straddling)
    only_patients = np.where(ds.labels == 1, 1, 2)  # cohort 2 holds every donor: trained without it, one class
    with pytest.raises(ValueError, match="single class"):
        cohort_folds(ds.labels, ds.table["fold"].astype(str) + ds.labels.astype(str), only_patients)


def test_candidates_across_cohorts_fit_on_the_training_cohorts_only_and_say_which():
    ds = _people()
    seen = []

    def spy(train, test, seed):
        seen.append((set(train.table["fold"]), set(test.table["fold"])))
        return np.where(test.labels == 1, 1.0, -1.0)

    res = evaluate_candidates(ds, {"spy": spy}, cohorts="fold", progress=False)["spy"]
    assert seen == [({2}, {1}), ({1}, {2})]
    assert res.settings["trained_on"] == ["fold_2", "fold_1"] and res.settings["held_out"] == ["fold_1", "fold_2"]
    evaluate_candidates(ds, {"spy": spy}, cohorts="fold", train_on=1, progress=False)
    assert seen[-1] == ({1}, {2})


def test_the_neighbourhood_correction_never_mixes_people():
    """Two people whose cells look alike but score apart: corrected within each person, each
    keeps its own side; corrected across the batch, they meet."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4))
    X[10:] = X[:10] + 1e-3  # person B's cells look like person A's
    scores = np.r_[np.full(10, 2.0), np.full(10, -2.0)] + rng.normal(0, 0.1, 20)
    people = np.repeat(["A", "B"], 10)
    within = neighbourhood_correction(X, scores, k=3, groups=people)
    assert (within[:10] > 1).all() and (within[10:] < -1).all()
    mixed = neighbourhood_correction(X, scores, k=3)
    assert np.abs(mixed).max() < 1.2  # across people, each cell's twin of the other person pulls it to zero
    with pytest.raises(ValueError, match="groups"):
        neighbourhood_correction(X, scores, k=3, groups=people[:5])


def test_cohort_table_counts_people_and_leaves_those_with_few_cells_uncertain():
    ds = _people(((3, 2), (2, 2)), cells=4)
    cells = ds.table.groupby("patient").cumcount().to_numpy()
    few = ds.table["patient"].isin(["H22"]).to_numpy() & (cells >= 2)  # H22 keeps 2 cells

    def right(train, test, seed):
        return np.where(test.labels == 1, 1.0, -1.0)

    def donors_wrong(train, test, seed):
        return np.ones(len(test))

    keep = np.flatnonzero(~few)
    res = evaluate_candidates(ds.subset(keep), {"right": right, "donors wrong": donors_wrong}, cohorts="fold",
                              progress=False)
    table = cohort_table(res, "right")
    r = table.loc[("right", "fold_2")]
    assert r["trained on"] == "fold_1" and r["people"] == 4 and r["ALL called right"] == "2/2"
    assert r["normal called right"] == "1/2" and r["uncertain"] == 1 and r["people with 3 cells or fewer"] == 1
    w = table.loc[("donors wrong", "fold_1")]
    assert w["normal called ALL"] == 2 and w["specificity"] == 0 and w["p (sign flip, vs baseline)"] <= 1
    assert "p (sign flip, vs baseline)" not in table.loc["right"].dropna(axis=1, how="all").columns


def test_rankings_are_compared_and_the_grid_scored_within_and_across():
    within = pd.DataFrame({"within": [0.9, 0.8, 0.7, 0.6], "across": [0.6, 0.8, 0.7, 0.9]}, index=list("abcd"))
    a = rank_agreement(within)
    assert a["best within"] == "a" and a["its rank across"] == 4 and a["best across"] == "d" and a["n"] == 4
    assert np.isnan(rank_agreement(within.iloc[:2])["rho"])
    rng = np.random.default_rng(1)
    ds = _people(((6, 4), (6, 4)), cells=6)
    X = rng.normal(size=(len(ds), 5)) + ds.labels[:, None] * 1.5
    grid = {"C": [0.1, 10], "gamma": [0.1], "kernel": ["rbf"]}
    t = grid_transfer(X, ds.labels, ds.groups, ds.table["fold"].to_numpy(), 1, grid, n_splits=3)
    assert list(t.columns) == ["C", "gamma", "kernel", "within", "across"] and len(t) == 2
    assert t["within"].between(0, 1).all() and t.attrs["folds within"] == 3
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    one = ds.table["fold"].to_numpy() == 1
    direct = make_pipeline(StandardScaler(), SVC(C=10, gamma=0.1)).fit(X[one], ds.labels[one])
    expected = balanced_accuracy_score(ds.labels[~one], direct.predict(X[~one]))
    assert t.loc["C=10, gamma=0.1, rbf", "across"] == pytest.approx(expected)
    within_runs = {n: r for n, r in evaluate_candidates(
        ds.subset(np.flatnonzero(one)), {"x": lambda tr, te, s: te.labels - 0.5}, n_splits=3, progress=False).items()}
    across_runs = evaluate_candidates(ds, {"x": lambda tr, te, s: te.labels - 0.5}, cohorts="fold", train_on=1,
                                      progress=False)
    assert ranking_table(within_runs, across_runs).loc["x", ["within", "across"]].tolist() == [1.0, 1.0]


def test_cohort_rankings_rank_within_the_largest_cohort_and_carry_to_the_others():
    """Fine-tuned candidates are left out (they are not frozen features); a largest cohort that cannot
    be split by person is refused with the reason."""
    from alllib.learn.cohorts import cohort_rankings

    rng = np.random.default_rng(2)
    ds = _people(((6, 4), (4, 3)), cells=5)
    X = rng.normal(size=(len(ds), 4)) + ds.labels[:, None] * 2.0
    featurize = lambda d: X[[ds.table.index[ds.table["id"] == i][0] for i in d.ids]]  # noqa: E731
    seen = []

    def right(train, test, seed):
        seen.append(set(train.table["fold"]))
        return test.labels - 0.5

    candidates = {"right": right, "wrong": lambda tr, te, s: 0.5 - te.labels,
                  "fine-tuned net": lambda tr, te, s: pytest.fail("a fine-tuned candidate was ranked")}
    first, ranks = cohort_rankings(ds, candidates, featurize, n_splits=3, seed=0)
    assert first == 1 and set(ranks) == {"candidates", "SVM grid points"}
    assert ranks["candidates"].loc["right", ["within", "across"]].tolist() == [1.0, 1.0]
    assert ranks["candidates"].loc["wrong", ["within", "across"]].tolist() == [0.0, 0.0]
    assert seen and all(s == {1} for s in seen)  # ranked within cohort 1, carried from cohort 1 only
    assert ranks["SVM grid points"].attrs["train cohort"] == "1"
    lonely = _people(((6, 1), (2, 2)), cells=5)  # cohort 1, the largest, has a single donor
    with pytest.raises(ValueError, match="fold 1 alone cannot be cross-validated by group"):
        cohort_rankings(lonely, candidates, featurize, n_splits=3)

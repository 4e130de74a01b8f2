"""Judging across cohorts: what a model, a setting or a ranking carries to people recruited apart.

C-NMC-2019's training folds hold different people (fold_1: 11 patients and 3 healthy donors;
fold_2: 12 patients and 10 donors, with few cells each). Grouped cross-validation inside one fold
says what a new person *of that cohort* gets; with three donors it cannot say what "normal"
looks like for a fourth. So the book also trains on one cohort and scores another
(:func:`~alllib.learn.evaluation.cohort_folds` through
:func:`~alllib.learn.candidates.evaluate_candidates`), tables the result cell by cell and person by
person (:func:`cohort_table`), and asks whether the choices that one cohort's cross-validation
ranks first are the ones that carry (:func:`ranking_table`, :func:`grid_transfer`, both at once:
:func:`cohort_rankings`).

>>> t = pd.DataFrame({"within": [0.9, 0.8, 0.7], "across": [0.6, 0.7, 0.8]}, index=list("abc"))
>>> rank_agreement(t)["rho"]
-1.0
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from alllib.data import Dataset
from alllib.learn.candidates import evaluate_candidates
from alllib.learn.classifiers import SVM_GRID
from alllib.learn.evaluation import ProtocolResult, grouped_folds, split_problem
from alllib.learn.metrics import binary_metrics, person_calls
from alllib.learn.svm_search import svm_grid_search
from alllib.learn.verdicts import sign_flip_test

__all__ = ["cohort_table", "ranking_table", "rank_agreement", "grid_transfer", "cohort_rankings"]


def cohort_table(results: dict[str, ProtocolResult], baseline: str | None = None,
                 names: dict[int, str] | None = None) -> pd.DataFrame:
    """One row per candidate and held-out cohort of a leave-one-cohort-out run
    (``evaluate_candidates(..., cohorts="fold")``): the cohort it was trained on and the one it
    was scored on, the cells and people scored, balanced accuracy, sensitivity, specificity and
    weighted F1 of the cells, then one call per person (:func:`~alllib.learn.metrics.person_calls`:
    "uncertain" for anyone with 3 cells or fewer, whose share cannot be told from one half at
    95 %): patients and donors called right, people left uncertain, and donors called ALL. Against
    ``baseline``, the group sign-flip p-value of the balanced accuracy over that cohort's people
    (:func:`~alllib.learn.verdicts.sign_flip_test`; one training set, so it says whether *these*
    fitted models differ on new people, not whether the methods would with another draw).
    """
    names = names or {1: "ALL", 0: "normal"}
    rows = []
    for name, res in results.items():
        for e in res.evaluations:
            y, pred, groups = np.asarray(e.y_true, int), np.asarray(e.y_pred, int), np.asarray(e.groups)
            m = binary_metrics(y, pred, e.scores)
            row = {"candidate": name, "trained on": res.settings["trained_on"][e.fold],
                   "scored on": res.settings["held_out"][e.fold],
                   "cells": len(y), "people": len(np.unique(groups)), "balanced accuracy": m["balanced_accuracy"],
                   "sensitivity": m["sensitivity"], "specificity": m["specificity"], "weighted f1": m["weighted_f1"]}
            calls = person_calls(y, pred, groups, names)
            for word, c in calls.items():
                row[f"{word} called right"] = f"{c['called right']}/{c['people']}"
            row["uncertain"] = sum(c["uncertain"] for c in calls.values())
            row[f"{names[0]} called {names[1]}"] = calls[names[0]]["called wrong"]
            row["people with 3 cells or fewer"] = sum(c["with 3 cells or fewer"] for c in calls.values())
            if baseline is not None and name != baseline:
                base = next(b for b in results[baseline].evaluations if b.fold == e.fold)
                row["p (sign flip, vs baseline)"] = sign_flip_test(y, groups, [pred], [base.y_pred])["p_value"]
            rows.append(row)
    return pd.DataFrame(rows).set_index(["candidate", "scored on"])


def ranking_table(within: dict[str, ProtocolResult], across: dict[str, ProtocolResult], *,
                  metric: str = "balanced_accuracy") -> pd.DataFrame:
    """Each candidate's ``metric`` by grouped cross-validation within one cohort (``within``) beside
    its ``metric`` on the people of other cohorts (``across``: trained on that cohort, scored on the
    others, ``evaluate_candidates(..., cohorts="fold", train_on=...)``), both from pooled
    out-of-fold predictions, with both ranks (1: best). Only candidates present in both are compared."""
    rows = []
    for name in [n for n in within if n in across]:
        a, b = within[name].pooled(), across[name].pooled()
        rows.append({"candidate": name, "within": binary_metrics(a["y_true"], a["y_pred"])[metric],
                     "across": binary_metrics(b["y_true"], b["y_pred"])[metric]})
    table = pd.DataFrame(rows).set_index("candidate")
    table["rank within"] = table["within"].rank(ascending=False, method="min").astype(int)
    table["rank across"] = table["across"].rank(ascending=False, method="min").astype(int)
    return table


def rank_agreement(table: pd.DataFrame) -> dict:
    """How alike the two rankings of a :func:`ranking_table` or :func:`grid_transfer` are: the
    Spearman rank correlation of ``within`` and ``across`` with its p-value, the number of entries,
    and whether the best within is also the best across (``NaN`` with fewer than 3 entries or a
    flat column)."""
    n = len(table)
    flat = n < 3 or table["within"].nunique() < 2 or table["across"].nunique() < 2
    rho, p = (np.nan, np.nan) if flat else spearmanr(table["within"], table["across"])
    best = table["within"].idxmax() if n else None
    return {"rho": float(rho), "p": float(p), "n": n, "best within": best,
            "its rank across": int((table["across"] > table.loc[best, "across"]).sum() + 1) if n else None,
            "best across": table["across"].idxmax() if n else None}


def grid_transfer(X: np.ndarray, y: np.ndarray, groups: np.ndarray, cohorts: np.ndarray, train_cohort, grid: dict, *,
                  n_splits: int = 5, seed: int = 0, n_jobs: int = 1) -> pd.DataFrame:
    """Every point of an SVM ``grid`` (keys ``C``, ``gamma``, ``kernel``) scored two ways by
    balanced accuracy: by grouped cross-validation among the people of ``train_cohort``
    (``within``; as many folds as its smaller class has people, at most ``n_splits``), and trained
    on all of ``train_cohort``, scored on the people of every other cohort (``across``). The
    question: does the grid point one cohort's cross-validation ranks first carry to another's
    people? Exact SVMs through one Gram matrix per split
    (:func:`~alllib.learn.svm_search.svm_grid_search`)."""
    X, y, groups, cohorts = np.asarray(X), np.asarray(y, int), np.asarray(groups), np.asarray(cohorts)
    mine = np.flatnonzero(cohorts == train_cohort)
    if not len(mine) or len(mine) == len(y):
        raise ValueError(f"cohort {train_cohort!r} must hold some of the images, not none or all")
    folds = grouped_folds(y[mine], groups[mine], n_splits=n_splits, seed=seed)
    _, within = svm_grid_search(X, y, [(mine[f.train], mine[f.test]) for f in folds], grid,
                                scoring="balanced_accuracy", n_jobs=n_jobs)
    _, across = svm_grid_search(X, y, [(mine, np.flatnonzero(cohorts != train_cohort))], grid,
                                scoring="balanced_accuracy", n_jobs=n_jobs)
    key = ["C", "gamma", "kernel"]
    table = within[key + ["mean_test_score"]].rename(columns={"mean_test_score": "within"}).merge(
        across[key + ["mean_test_score"]].rename(columns={"mean_test_score": "across"}), on=key)
    table.index = [f"C={r.C:g}, gamma={r.gamma:g}, {r.kernel}" for r in table.itertuples()]
    table.attrs.update({"folds within": len(folds), "train cohort": str(train_cohort)})
    return table


def cohort_rankings(ds: Dataset, candidates: dict, featurize, *, cohorts: str = "fold", n_splits: int = 5,
                    seed: int = 0, checkpoint=False) -> tuple[object, dict[str, pd.DataFrame]]:
    """Do the choices one cohort's cross-validation ranks first carry to the other cohorts' people?
    The largest cohort of ``ds.table[cohorts]`` ranks the ``candidates`` (the fine-tuned ones left
    out: they cost the most and are not frozen features) and the points of
    :data:`~alllib.learn.classifiers.SVM_GRID` on ``featurize``'s features, by grouped
    cross-validation among its people and by training on all of them and scoring the others:
    ``(the cohort, {"candidates": ranking_table, "SVM grid points": grid_transfer})``. Raises
    ``ValueError`` naming the problem where that cohort alone cannot be split by group."""
    column = ds.table[cohorts].to_numpy()
    first = ds.table[cohorts].value_counts().idxmax()
    inside = ds.subset(np.flatnonzero(column == first))
    problem = split_problem(inside.labels, inside.groups)
    if problem:
        raise ValueError(f"{cohorts} {first} alone cannot be cross-validated by group ({problem})")
    frozen = {k: v for k, v in candidates.items() if not k.startswith("fine-tuned")}
    within = evaluate_candidates(inside, frozen, n_splits=n_splits, seed=seed, checkpoint=checkpoint)
    carried = evaluate_candidates(ds, frozen, cohorts=cohorts, train_on=first, seed=seed, checkpoint=checkpoint)
    grid = grid_transfer(featurize(ds), ds.labels, ds.groups, column, first, SVM_GRID, n_splits=n_splits, seed=seed)
    return first, {"candidates": ranking_table(within, carried), "SVM grid points": grid}

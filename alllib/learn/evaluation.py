"""The one cross-validation engine: grouped folds, their seeds, and the loop that fits and scores on them.

Every estimate of the library is made here: the honest protocol, the candidates of chapters 12
and 13, the attribution study and ``train``'s grouped report run :func:`cross_validate` (or, where
they need the folds themselves, :func:`grouped_folds`); the paper protocol's single split by image
returns the same :class:`ProtocolResult`.

* **Outer folds** (:func:`grouped_folds`): ``StratifiedGroupKFold`` on the groups (slides,
  subjects), reshuffled for each repeat; never more folds than the smaller class has groups
  (:func:`fold_count`), and a clear error where the data cannot be split by group at all
  (:func:`split_problem`).
* **Inner folds** (:func:`inner_fold_count`): the same rule on a training side, at most 3; below 2,
  no tuning (the classifier keeps its defaults).
* **Across cohorts** (:func:`cohort_folds`): each cohort (a C-NMC fold: people recruited apart)
  held out in turn, the model trained on the others; what a model carries to people of another
  cohort, beside what grouped folds within the pooled people say.
* **Seeds**: one root ``seed``; ``numpy.random.SeedSequence(seed)`` spawns one sequence per repeat
  and each of those one per fold, so every fold of every repeat has its own independent seed and
  no two runs share folds by accident (with seeds made by addition, seed 0's second repeat would
  be seed 1's first).

>>> folds = grouped_folds([0, 0, 0, 1, 1, 1], ["a", "b", "c", "d", "e", "f"], n_splits=3, n_repeats=2)
>>> len(folds), [f.repeat for f in folds], len({f.seed for f in folds})
(6, [0, 0, 0, 1, 1, 1], 6)
>>> sorted(np.concatenate([f.test for f in folds if f.repeat == 0]).tolist())
[0, 1, 2, 3, 4, 5]
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold
from tqdm import tqdm

from alllib.data import Dataset, Rows

# the result types live in alllib.learn.results; the engine returns them, so they are importable from here too
from alllib.learn.results import (
    Evaluation,
    ProtocolResult,
    load_evaluation,
    results_from_json,
    results_to_json,
    score_evaluation,
    store_evaluation,
)
from alllib.memo import digest, memo_path, recipe, source_digest
from alllib.paths import shown_path

__all__ = ["Fold", "Samples", "Evaluation", "ProtocolResult", "groups_per_class", "split_problem", "fold_count",
           "inner_fold_count", "grouped_folds", "cohort_folds", "cohort_label", "score_evaluation", "cross_validate",
           "dataset_digest", "load_evaluation", "store_evaluation", "results_to_json", "results_from_json"]

#: The most inner folds used to tune on a training side.
INNER_SPLITS = 3


def groups_per_class(labels, groups) -> dict[int, int]:
    """How many distinct groups each class has.

    >>> groups_per_class([0, 0, 1, 1], ["a", "a", "b", "c"])
    {0: 1, 1: 2}
    """
    labels, groups = np.asarray(labels), np.asarray(groups)
    return {int(c): pd.Series(groups[labels == c]).nunique() for c in np.unique(labels)}


def split_problem(labels, groups) -> str | None:
    """Why the data cannot be split by group, or ``None``: a single class, or a class with fewer
    than 2 groups (one normal subject of a partial C-NMC download cannot be both tested and
    trained on).

    >>> split_problem([0, 0, 1, 1], ["H1", "H1", "2", "3"])[:60]
    'class 0 has 1 group (subject/cell); a split by group needs a'
    """
    per_class = groups_per_class(labels, groups)
    if len(per_class) < 2:
        return "the dataset holds a single class; a classifier needs both"
    lonely = [c for c, n in per_class.items() if n < 2]
    if lonely:
        return (f"class {lonely[0]} has {per_class[lonely[0]]} group (subject/cell); a split by group needs "
                "at least 2 per class, so one can be tested while another trains")
    return None


def fold_count(labels, groups, n_splits: int) -> int:
    """The number of grouped outer folds the data allow: ``n_splits``, or fewer where a class has
    fewer groups (C-NMC's fold_1 has 3 normal subjects, so at most 3 folds). Data that cannot be
    split by group at all (:func:`split_problem`): :class:`ValueError`.

    >>> fold_count([0, 0, 0, 1, 1], ["a", "b", "c", "d", "e"], 5)
    2
    """
    problem = split_problem(labels, groups)
    if problem:
        raise ValueError(problem)
    return min(n_splits, *groups_per_class(labels, groups).values())


def inner_fold_count(labels, groups, n_splits: int = INNER_SPLITS) -> int:
    """Inner folds for tuning on a training side: ``n_splits`` or fewer (the groups of its smaller
    class); 0 where a grouped inner split is impossible, and then nothing is tuned.

    >>> inner_fold_count([0, 0, 1, 1], ["a", "b", "c", "d"]), inner_fold_count([0, 1], ["a", "b"])
    (2, 0)
    """
    return 0 if split_problem(labels, groups) else min(n_splits, *groups_per_class(labels, groups).values())


@dataclass(frozen=True)
class Fold:
    """One outer fold: positions of its training and test images, its repeat and running index,
    and the seed of everything random inside it (augmentation, tuning, network initialisation)."""

    repeat: int
    index: int
    train: np.ndarray = field(repr=False)
    test: np.ndarray = field(repr=False)
    seed: int


def grouped_folds(labels, groups, *, n_splits: int = 5, n_repeats: int = 1, seed: int = 0) -> list[Fold]:
    """The grouped outer folds of ``n_repeats`` repeats (see the module docstring).

    Parameters
    ----------
    labels, groups : array-like
        Each image's class (0/1) and group.
    n_splits : int
        Folds asked for (:func:`fold_count` says how many the data allow).
    n_repeats : int
        Reshuffled repeats.
    seed : int
        The root of the split and fold seeds.

    Returns
    -------
    list of Fold
        Every fold of every repeat, repeat by repeat.
    """
    labels, groups = np.asarray(labels, int), np.asarray(groups)
    used = fold_count(labels, groups, n_splits)
    folds = []
    for r, repeat in enumerate(np.random.SeedSequence(seed).spawn(n_repeats)):
        split_seed, *seeds = (int(s.generate_state(1)[0]) for s in repeat.spawn(used + 1))
        splitter = StratifiedGroupKFold(n_splits=used, shuffle=True, random_state=split_seed)
        for k, (train, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
            folds.append(Fold(r, len(folds), train, test, seeds[k]))
    return folds


def cohort_folds(labels, groups, cohorts, *, train_on=None, seed: int = 0) -> list[Fold]:
    """Folds across cohorts. By default one fold per cohort, held out in turn (leave one cohort
    out): its images are the test side, every other cohort's the training side. With ``train_on``
    (a cohort), one fold: trained on that cohort, tested on all the others. Groups must not
    straddle cohorts, and each training side must hold both classes; otherwise a
    :class:`ValueError` says which. Fold seeds are spawned from ``seed`` as in :func:`grouped_folds`.

    >>> [(f.index, f.test.tolist()) for f in cohort_folds([1, 0, 1, 0, 1, 0], list("abcdef"), [1, 1, 1, 1, 2, 2])]
    [(0, [0, 1, 2, 3]), (1, [4, 5])]
    >>> [f.test.tolist() for f in cohort_folds([1, 0, 1, 0, 1, 0], list("abcdef"), [1, 1, 1, 1, 2, 2], train_on=1)]
    [[4, 5]]
    """
    labels, groups, cohorts = np.asarray(labels, int), np.asarray(groups), np.asarray(cohorts)
    names = np.unique(cohorts)
    if len(names) < 2:
        raise ValueError(f"judging across cohorts needs at least 2 cohorts, found {len(names)}")
    if train_on is not None and train_on not in names:
        raise ValueError(f"no cohort {train_on!r} to train on; the cohorts are {names.tolist()}")
    straddle = [g for g in np.unique(groups) if len(np.unique(cohorts[groups == g])) > 1]
    if straddle:
        raise ValueError(f"group {straddle[0]!r} lies in several cohorts; a cohort must hold whole groups")
    held = [c for c in names if c != train_on] if train_on is not None else list(names)
    tests = [np.flatnonzero(cohorts != train_on)] if train_on is not None else [np.flatnonzero(cohorts == c)
                                                                                 for c in held]
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(len(tests))]
    folds = []
    for k, test in enumerate(tests):
        train = np.setdiff1d(np.arange(len(labels)), test)
        if len(np.unique(labels[train])) < 2:
            raise ValueError(f"trained on {sorted(set(cohorts[train].tolist()))}, the training side holds a single class")
        folds.append(Fold(0, k, train, test, seeds[k]))
    return folds


def cohort_label(cohorts, column: str = "fold") -> str:
    """The cohorts among ``cohorts`` (each image's), named as a page says them.

    >>> cohort_label([1, 2, 1])
    'fold_1 and fold_2'
    """
    return " and ".join(f"{column}_{c}" for c in np.unique(np.asarray(cohorts)))


@dataclass(frozen=True)
class Samples(Rows):
    """Rows of an array (features, say) as the engine's samples, for code that holds arrays rather
    than a :class:`~alllib.data.Dataset`: :func:`cross_validate` takes either. ``table`` holds each
    row's ``id`` (its position), ``label`` and ``group``, and any other column a fitter or the
    engine reads (a cohort, whether a row is an original); :meth:`subset` keeps ``X`` in step.

    >>> s = Samples.of(np.eye(4), [0, 0, 1, 1], ["a", "b", "c", "d"], original=[True, False, True, True])
    >>> t = s.subset([1, 2]); t.X.shape, t.ids.tolist(), t.table["original"].tolist()
    ((2, 4), [1, 2], [False, True])
    """

    X: np.ndarray
    table: pd.DataFrame
    name: str = "arrays"

    @classmethod
    def of(cls, X, labels, groups, *, name: str = "arrays", **columns) -> "Samples":
        """``X``'s rows with their labels, groups and other ``columns`` (one value per row)."""
        X = np.asarray(X)
        table = pd.DataFrame({"id": np.arange(len(X)), "label": np.asarray(labels, int), "group": np.asarray(groups),
                              **{k: np.asarray(v) for k, v in columns.items()}})
        return cls(X, table, name)

    def subset(self, indices) -> "Samples":
        """The rows at ``indices`` (positions)."""
        indices = np.asarray(indices, dtype=int)
        return Samples(self.X[indices], self.table.iloc[indices].reset_index(drop=True), self.name)


#: What :func:`cross_validate` runs for each name on each fold: ``(train, test, fold) ->
#: Evaluation`` (or the test images' decision values, positive: ALL).
Fitter = Callable[[Dataset, Dataset, Fold], "Evaluation | np.ndarray"]


def cross_validate(ds: Dataset | Samples, fitters: dict[str, Fitter], *, n_splits: int = 5, n_repeats: int = 1,
                   seed: int = 0, protocol: str = "honest", settings: dict | None = None,
                   progress: bool = True, desc: str = "folds", cohorts: str | None = None, train_on=None,
                   checkpoint: bool | str | os.PathLike = False) -> dict[str, ProtocolResult]:
    """Run every fitter on the same grouped outer folds of ``ds`` (:func:`grouped_folds`), or, with
    ``cohorts`` (a column of ``ds.table``), with each cohort held out in turn (:func:`cohort_folds`);
    each fitter sees only its fold's training side when it fits. Returns one
    :class:`ProtocolResult` per fitter, with the folds really used in ``settings["n_splits"]`` (and
    the held-out cohort of each fold in ``settings["held_out"]``).

    Parameters
    ----------
    ds : Dataset or Samples
        The images and their groups, or rows of an array and theirs (:class:`Samples`).
    fitters : dict of str to callable
        ``(train, test, fold) -> Evaluation`` or the test images' decision values.
    n_splits, n_repeats : int
        Outer folds asked for (fewer where a class has fewer groups), and repeats.
    seed : int
        The root seed of the folds (:func:`grouped_folds`).
    protocol : str
        The name the results carry.
    settings : dict, optional
        Recorded in every result's ``settings``.
    progress : bool
        Show a progress bar.
    desc : str
        The progress bar's label.
    cohorts : str, optional
        A column naming each image's cohort: leave one cohort out instead of grouped folds, or
        with ``train_on`` (a cohort) train on it and test on the others (:func:`cohort_folds`;
        ``n_splits`` and ``n_repeats`` then do not apply).
    train_on : optional
        See ``cohorts``.
    checkpoint : bool or path
        Keep each fold's evaluation by each fitter in this folder (``True``: the cache's
        ``folds-v1``, :func:`alllib.memo.memo_path`) as it finishes, and take it from there
        instead of fitting again: a run killed midway resumes at the next fit. A stored fit is
        found by the dataset (its images' content, labels and groups), the fold (its index and
        seed, the split settings), the fitter's name and :func:`~alllib.memo.recipe`, and the
        library's code (:func:`~alllib.memo.source_digest`); a fitter without a recipe (a bare
        function) is always fitted. ``False`` (the default): nothing is kept.

    Returns
    -------
    dict of str to ProtocolResult
        One result per fitter, its evaluations in fold order.
    """
    if cohorts is None:
        folds = grouped_folds(ds.labels, ds.groups, n_splits=n_splits, n_repeats=n_repeats, seed=seed)
        split = {"split": "by group"}
    else:
        column = ds.table[cohorts].to_numpy()
        folds = cohort_folds(ds.labels, ds.groups, column, train_on=train_on, seed=seed)
        n_splits, n_repeats = len(folds), 1
        split = {"split": f"leave one {cohorts} out" if train_on is None else f"trained on {cohorts} {train_on}",
                 "trained_on": [cohort_label(column[f.train], cohorts) for f in folds],
                 "held_out": [cohort_label(column[f.test], cohorts) for f in folds]}
    used = len(folds) // n_repeats
    settings = {"dataset": ds.name, "n_originals": len(ds), "n_splits": used, "n_splits_asked": n_splits,
                "n_repeats": n_repeats, "seed": seed, **split, **(settings or {})}
    evals: dict[str, list[Evaluation]] = {name: [] for name in fitters}
    bar = tqdm(total=len(folds) * len(fitters), desc=desc, disable=not progress)
    stored = _fold_memos(ds, folds, fitters, checkpoint, n_splits=n_splits, n_repeats=n_repeats, seed=seed,
                         **({} if cohorts is None else {"cohorts": cohorts, "train_on": str(train_on)}))
    restored = 0
    for fold in folds:
        train, test = ds.subset(fold.train), ds.subset(fold.test)
        for name, fit in fitters.items():
            memo = stored.get((fold.index, name))
            e = load_evaluation(memo)
            if e is None:
                t0 = time.perf_counter()
                out = fit(train, test, fold)
                e = out if isinstance(out, Evaluation) else score_evaluation(name, test.labels, out, test.ids)
                e.fold, e.repeat, e.n_train = fold.index, fold.repeat, len(fold.train)
                e.groups = test.groups if e.groups is None else e.groups  # a fitter that scores some rows says whose
                e.seconds = e.seconds or time.perf_counter() - t0
                store_evaluation(memo, e)
            else:
                restored += 1
            evals[name].append(e)
            bar.update(1)
    bar.close()
    if restored:
        print(f"{restored} of {len(folds) * len(fitters)} fits taken from the checkpoint "
              f"{shown_path(next(iter(stored.values())).parent)}")
    return {name: ProtocolResult(protocol, name, evals[name], settings) for name in fitters}


def _fold_memos(ds: Dataset, folds: list[Fold], fitters: dict, checkpoint, **split) -> dict[tuple[int, str], Path]:
    """Where each (fold, fitter) evaluation is kept (see :func:`cross_validate`'s ``checkpoint``);
    fitters without a recipe have none."""
    recipes = {name: recipe(fit) for name, fit in fitters.items()}
    if not checkpoint or all(r is None for r in recipes.values()):
        return {}
    data = dataset_digest(ds), split, source_digest()
    return {(f.index, name): memo_path(checkpoint, "folds", data, f.index, f.seed, name, r)
            for f in folds for name, r in recipes.items() if r is not None}


def dataset_digest(ds: Dataset) -> str:
    """A digest of ``ds``: its name, ids, images' content (:meth:`~alllib.data.Dataset.image_key`),
    labels and groups; a memo of a result on ``ds`` is keyed by it."""
    return digest(ds.name, list(map(str, ds.ids)), [ds.image_key(i) for i in range(len(ds))], ds.labels.tolist(),
                  list(map(str, ds.groups)))

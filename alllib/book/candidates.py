"""What raises an honest score: candidates measured on the same grouped folds, paired.

Every candidate is a function ``fit_score(train, test, seed) -> decision values`` for the test
images (positive: ALL), fitted on the training side only. :func:`evaluate_candidates` runs
each on the same outer folds (split by slide or subject, as the honest protocol splits), so
their predictions on every test image can be paired: :func:`candidates_table` gives each
candidate's balanced accuracy and weighted F1 with 95 % intervals from a bootstrap over the
groups (slides, subjects: the unit of evidence), and against a baseline the paired difference
over all repeats with its grouped interval, the corrected resampled t-test of Nadeau and Bengio
over all folds, and the smallest difference this run could have detected.

The candidates of the book:

* :func:`frozen_svm`: the earlier chapters' pipeline (frozen features, SVM tuned by grouped
  inner CV), optionally with the paper's augmentation on the training side;
* :func:`frozen_svm` with ``tta=True``: the same model, its decision averaged over the eight
  flips and right-angle rotations of each test image (:func:`~alllib.augmentation.dihedral`);
* :func:`reinhard_svm`: Reinhard colour normalisation (:class:`~alllib.preprocessing.Reinhard`), its target fitted on
  the training images of each fold, applied to both sides before the features;
* fine-tuning EfficientNet-Lite0 end to end: :mod:`alllib.learn.finetune`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from alllib.augmentation import Augmenter, balance, dihedral_views, transformed
from alllib.data import Dataset
from alllib.learn.classifiers import decision_scores, fit_classifier
from alllib.learn.evaluation import Evaluation, ProtocolResult, cross_validate, inner_fold_count
from alllib.learn.metrics import (
    binary_metrics,
    corrected_resampled_ttest,
    detectable_difference,
    grouped_bootstrap,
    person_call,
    wilson_interval,
)
from alllib.learn.neighbours import neighbourhood_correction
from alllib.learn.protocols import Featurize
from alllib.memo import with_recipe
from alllib.preprocessing import Reinhard

__all__ = ["evaluate_candidates", "candidates_table", "CANDIDATE_METRICS", "frozen_svm", "reinhard_svm",
           "cross_dataset", "tta_features", "candidates_record", "per_group_table", "side_by_side", "subject_level_table"]

FitScore = Callable[[Dataset, Dataset, int], np.ndarray]


def evaluate_candidates(ds: Dataset, candidates: dict[str, FitScore], *, n_splits: int = 5, n_repeats: int = 1,
                        seed: int = 0, progress: bool = True, checkpoint=False) -> dict[str, ProtocolResult]:
    """Every candidate on the same grouped outer folds (:func:`~alllib.learn.evaluation.cross_validate`:
    split by ``ds.groups``, reshuffled per repeat, never more folds than the smaller class has
    groups). Each candidate sees only ``train`` when it fits; its scores on ``test`` are kept per
    fold.

    Parameters
    ----------
    ds : Dataset
        The images and their groups.
    candidates : dict of str to callable
        ``fit_score(train, test, seed) -> decision values`` (positive: ALL), or an
        :class:`~alllib.learn.evaluation.Evaluation` of them (a fine-tuned network's carries its
        training ``history``).
    n_splits, n_repeats, seed : int
        As in :func:`~alllib.learn.evaluation.cross_validate`.
    progress : bool
        Show a progress bar.
    checkpoint : bool or path
        Keep each candidate's fit of each fold as it ends, and resume from there
        (:func:`~alllib.learn.evaluation.cross_validate`); the candidates of this module carry
        the recipe that finds them again.

    Returns
    -------
    dict of str to ProtocolResult
        One result per candidate, on the same folds.
    """
    def fitter(fit_score: FitScore):
        def fit(train, test, fold):
            out = fit_score(train, test, fold.seed)
            return out if isinstance(out, Evaluation) else np.asarray(out, float)

        return with_recipe(fit, "candidate", fit_score=fit_score)

    return cross_validate(ds, {name: fitter(f) for name, f in candidates.items()}, n_splits=n_splits,
                          n_repeats=n_repeats, seed=seed, protocol="candidates", progress=progress,
                          desc="candidates x folds", checkpoint=checkpoint)


#: The metrics of :func:`candidates_table`, as the table names them.
CANDIDATE_METRICS = {"balanced accuracy": "balanced_accuracy", "weighted f1": "weighted_f1"}


def candidates_table(results: dict[str, ProtocolResult], baseline: str, metric: str = "balanced accuracy", *,
                     n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per candidate: balanced accuracy and weighted F1 of its out-of-fold predictions (averaged
    over the repeats) with 95 % intervals from a bootstrap over the groups
    (:func:`~alllib.learn.metrics.grouped_bootstrap`: slides, subjects); and against ``baseline``, on
    ``metric``: the paired difference in points with its grouped bootstrap interval (the same
    groups drawn for both, every repeat scored), the smallest difference this run could have
    detected (80 % power at the 5 % level, from the bootstrap's standard error:
    :func:`~alllib.learn.metrics.detectable_difference`), the p-value of Nadeau and Bengio's
    corrected resampled t-test over every fold of every repeat
    (:func:`~alllib.learn.metrics.corrected_resampled_ttest`), and in how many of those folds the
    candidate scored higher (with 3 normal donors, a gain in every fold is worth more than a
    larger mean gain from one).

    Parameters
    ----------
    results : dict of str to ProtocolResult
        From :func:`evaluate_candidates`.
    baseline : str
        The candidate the others are compared with.
    metric : {"balanced accuracy", "weighted f1"}
        The metric of the comparison.
    n_boot : int
        Bootstrap draws.
    seed : int
        Seeds the bootstrap.

    Returns
    -------
    pandas.DataFrame
        One row per candidate; ``attrs`` records the metric, the baseline, the repeats, folds and groups.
    """
    if baseline not in results:
        raise ValueError(f"baseline {baseline!r} is not among the candidates {list(results)}")
    if metric not in CANDIDATE_METRICS:
        raise ValueError(f"metric must be one of {', '.join(CANDIDATE_METRICS)}, not {metric!r}")
    repeats = results[baseline].repeats
    first = results[baseline].pooled(repeats[0])
    ids0, y0, g0 = first["id"].to_numpy(), first["y_true"].to_numpy(), first["group"].to_numpy()
    preds = {}
    for name, res in results.items():
        preds[name] = []
        for r in repeats:
            pooled = res.pooled(r)
            if not np.array_equal(pooled["id"].to_numpy(), ids0):
                raise ValueError(f"{name} and {baseline} were not scored on the same images")
            preds[name].append(pooled["y_pred"].to_numpy())
    draws = {name: {m: grouped_bootstrap(y0, g0, p, key, n_boot=n_boot, seed=seed)
                    for m, key in CANDIDATE_METRICS.items()} for name, p in preds.items()}
    rows = []
    for name, res in results.items():
        row = {"candidate": name}
        for m, key in CANDIDATE_METRICS.items():
            value = float(np.mean([binary_metrics(y0, p)[key] for p in preds[name]]))
            row.update({m: value, f"{m} 95% low": float(np.nanpercentile(draws[name][m], 2.5)),
                        f"{m} 95% high": float(np.nanpercentile(draws[name][m], 97.5))})
        if name != baseline:
            key = CANDIDATE_METRICS[metric]
            diff = draws[name][metric] - draws[baseline][metric]
            folds, base = res.evaluations, results[baseline].evaluations
            per_fold = [a.metrics[key] - b.metrics[key] for a, b in zip(folds, base)]
            n_test = np.mean([len(e.test_ids) for e in folds])
            n_train = np.mean([e.n_train for e in folds])
            row.update({"difference low (points)": 100 * float(np.nanpercentile(diff, 2.5)),
                        "difference high (points)": 100 * float(np.nanpercentile(diff, 97.5)),
                        "detectable (points)": 100 * detectable_difference(float(np.nanstd(diff))),
                        "p (corrected t-test)": corrected_resampled_ttest(per_fold, n_train, n_test)["p_value"],
                        "better in folds": f"{sum(d > 0 for d in per_fold)}/{len(per_fold)}"})
        rows.append(row)
    table = pd.DataFrame(rows).set_index("candidate")
    if len(table) > 1:
        at = table.columns.get_loc("difference low (points)")
        table.insert(at, "difference (points)", 100 * (table[metric] - table.loc[baseline, metric]))
        table.loc[baseline, "difference (points)"] = np.nan
    table.attrs.update({"metric": metric, "baseline": baseline, "repeats": len(repeats),
                        "folds": len(results[baseline].evaluations), "groups": int(len(np.unique(g0)))})
    return table


def frozen_svm(featurize: Featurize, *, search: str = "small", target_per_class: int | None = None,
               augmenter: Augmenter | None = None, tta: bool = False, class_weight: str | None = None,
               neighbours: int = 0, neighbour_weight: float = 0.5) -> FitScore:
    """The earlier chapters' pipeline as a candidate: frozen features and an SVM tuned by grouped
    inner CV on the training side, which is first grown to ``target_per_class`` images per class
    with ``augmenter`` (``None``: the originals only). With ``tta``, each test image's decision
    is the mean over its eight :func:`~alllib.augmentation.dihedral_views`; ``class_weight=
    "balanced"`` weighs both classes the same in the fit; with ``neighbours``, each test decision
    is corrected by its nearest test cells' (:func:`~alllib.learn.neighbours.neighbourhood_correction`,
    Pan et al. 2019: the batch is the test fold, whole subjects)."""
    def fit_score(train: Dataset, test: Dataset, seed: int) -> np.ndarray:
        if target_per_class:
            train = balance(train, max(target_per_class, int(np.bincount(train.labels).max())),
                            augmenter or Augmenter(seed=seed))
        inner = inner_fold_count(train.labels, train.groups)
        model, _ = fit_classifier("svm", featurize(train), train.labels, groups=train.groups,
                                  search=search if inner >= 2 else "none", cv_splits=max(inner, 2), seed=seed,
                                  class_weight=class_weight)
        scores = np.mean([decision_scores(model, featurize(view)) for view in (dihedral_views(test) if tta else [test])],
                         axis=0)
        if neighbours:
            scores = neighbourhood_correction(featurize(test), scores, k=neighbours, weight=neighbour_weight)
        return scores

    return with_recipe(fit_score, "frozen_svm", featurize=featurize, search=search,
                       target_per_class=target_per_class, augmenter=augmenter, tta=tta, class_weight=class_weight,
                       neighbours=neighbours, neighbour_weight=neighbour_weight)


def side_by_side(*featurizers: Featurize) -> Featurize:
    """A featurizer whose features are those of ``featurizers`` side by side (e.g. deep features
    and :class:`~alllib.features.nucleus.NucleusFeaturizer`'s); the SVM's scaler puts them on one
    scale."""
    return with_recipe(lambda ds: np.hstack([np.asarray(f(ds), np.float32) for f in featurizers]),
                       "side_by_side", featurizers=featurizers)


def reinhard_svm(featurize: Featurize, *, search: str = "small") -> FitScore:
    """Reinhard normalisation fitted on the training images, then :func:`frozen_svm` (no
    augmentation) on the normalised images of both sides."""

    def fit_score(train: Dataset, test: Dataset, seed: int) -> np.ndarray:
        norm = Reinhard().fit(train.iter_images())
        return frozen_svm(featurize, search=search)(transformed(train, norm.transform_image, norm.recipe),
                                                     transformed(test, norm.transform_image, norm.recipe), seed)

    return with_recipe(fit_score, "reinhard_svm", featurize=featurize, search=search)


def cross_dataset(train: Dataset, test: Dataset, featurize: Featurize, *, search: str = "small",
                  seed: int = 0) -> dict:
    """Train on all of ``train`` (tuned by grouped inner CV), test on all of ``test``: accuracy,
    balanced accuracy, weighted F1, sensitivity and specificity."""
    scores = frozen_svm(featurize, search=search)(train, test, seed)
    m = binary_metrics(test.labels, (scores >= 0).astype(int), scores)
    return {"train": f"{train.name} ({len(train)} images)", "test": f"{test.name} ({len(test)} images)",
            **{k: m[k] for k in ("accuracy", "balanced_accuracy", "weighted_f1", "sensitivity", "specificity")}}


def tta_features(featurize: Featurize, ds: Dataset) -> np.ndarray:
    """Features of ``ds`` averaged over the eight :func:`~alllib.augmentation.dihedral_views` of each
    image: what a test-time-augmented model sees, for probing the features themselves."""
    return np.mean([featurize(view) for view in dihedral_views(ds)], axis=0)


def candidates_record(table: pd.DataFrame) -> dict:
    """A :func:`candidates_table` as a chapter stores it in its results (numbers rounded; the folds
    a candidate won, as ``"k/n"``)."""
    return {name: {m: v if isinstance(v, str) else round(float(v), 6) for m, v in row.items() if pd.notna(v)}
            for name, row in table.iterrows()}


def per_group_table(results: dict[str, ProtocolResult], names: dict[int, str] | None = None) -> pd.DataFrame:
    """Each group's (C-NMC subject's, ALL-IDB2 slide's) out-of-fold result for every candidate: its
    class, its images, and the share labelled correctly with a 95 % Wilson interval. A C-NMC subject
    is either a patient or a healthy donor, so the share is the sensitivity for a patient and the
    specificity for a donor: with 3 normal donors in fold_1, they are the whole "normal" class, one
    by one. ``call`` is the one call per person from the group's cells
    (:func:`~alllib.learn.metrics.person_call`: ALL, normal or uncertain), made while the group was
    held out. Repeats are pooled (every image counts once per repeat; the call is on one repeat's
    worth of cells)."""
    names = names or {1: "ALL", 0: "normal"}
    rows = []
    for name, res in results.items():
        pooled = res.pooled()
        repeats = max(len(res.repeats), 1)
        for group, part in pooled.groupby("group", sort=True):
            label = int(part["y_true"].mode().iloc[0])
            correct = int((part["y_pred"] == part["y_true"]).sum())
            low, high = wilson_interval(correct, len(part))
            images = len(part) // repeats
            blasts = round(int((part["y_pred"] == 1).sum()) / repeats)
            rows.append({"candidate": name, "group": str(group), "class": names.get(label, str(label)),
                         "images": images, "correct": correct / len(part), "95% low": low, "95% high": high,
                         "measures": "sensitivity" if label == 1 else "specificity",
                         "call": person_call(blasts, images)})
    return pd.DataFrame(rows).set_index(["candidate", "group"])


def subject_level_table(by_group: pd.DataFrame, names: dict[int, str] | None = None) -> pd.DataFrame:
    """Per candidate, the calls per person of a :func:`per_group_table` (each made while that person
    was held out by the grouped cross-validation): people called right, called wrong, left
    uncertain, and the person-level accuracy (called right / people; an uncertain call counts
    against it), overall and per class."""
    names = names or {1: "ALL", 0: "normal"}
    rows = []
    for name, part in by_group.groupby(level="candidate", sort=False):
        right = part["call"] == part["class"]
        row = {"candidate": name, "people": len(part), "called right": int(right.sum()),
               "uncertain": int((part["call"] == "uncertain").sum()),
               "called wrong": int((~right & (part["call"] != "uncertain")).sum()),
               "person-level accuracy": float(right.mean())}
        for label in names.values():
            mine = part["class"] == label
            row[f"{label} called right"] = f"{int(right[mine].sum())}/{int(mine.sum())}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("candidate")

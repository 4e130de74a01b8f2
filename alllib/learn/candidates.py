"""What raises an honest score: candidates measured on the same grouped folds, paired.

Every candidate is a function ``fit_score(train, test, seed) -> decision values`` for the test
images (positive: ALL), fitted on the training side only. :func:`evaluate_candidates` runs
each on the same outer folds (split by slide or subject, as the honest protocol splits), so
their predictions on every test image can be paired: :func:`candidates_table` gives each
candidate's balanced accuracy and weighted F1 with 95 % intervals from a bootstrap over the
groups (slides, subjects: the unit of evidence), and against a baseline a verdict that holds
when nothing differs (:mod:`alllib.learn.verdicts`: the group sign-flip test and the corrected
resampled t-test of Nadeau and Bengio must both agree, Holm's correction over the candidates),
with the smallest difference this run could have detected.

The candidates of the book:

* :func:`frozen_svm`: the earlier chapters' pipeline (frozen features, SVM tuned by grouped
  inner CV), optionally with the paper's augmentation on the training side;
* :func:`frozen_svm` with ``tta=True``: the same model, its decision averaged over the eight
  flips and right-angle rotations of each test image (:func:`~alllib.augmentation.dihedral`);
* :func:`normalised_svm`: stain normalisation before the features, Reinhard's
  (:class:`~alllib.preprocessing.Reinhard`, its target fitted on the training images of each fold)
  or Macenko's (:class:`~alllib.preprocessing.Macenko`, to one fixed reference);
* :func:`per_person_centred`: each cell's features minus its own person's mean;
* fine-tuning EfficientNet-Lite0 end to end: :mod:`alllib.learn.finetune`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from sklearn.base import clone

from alllib.augmentation import Augmenter, balance, dihedral_views, transformed
from alllib.data import Dataset
from alllib.learn.classifiers import decision_scores, fit_classifier, refit
from alllib.learn.evaluation import Evaluation, ProtocolResult, cross_validate, groups_per_class, inner_fold_count
from alllib.learn.metrics import binary_metrics, choose_threshold, grouped_bootstrap, person_call, wilson_interval
from alllib.learn.neighbours import neighbourhood_correction
from alllib.learn.protocols import Featurize
from alllib.learn.verdicts import holm, paired_comparison, verdict
from alllib.memo import with_recipe
from alllib.preprocessing import Reinhard

__all__ = ["evaluate_candidates", "candidates_table", "CANDIDATE_METRICS", "frozen_svm", "normalised_svm",
           "per_person_centred", "cnmc_candidates", "cross_dataset", "tta_features", "cross_dataset_table",
           "per_group_table", "per_group_shares", "side_by_side", "subject_level_table"]

FitScore = Callable[[Dataset, Dataset, int], np.ndarray]


def evaluate_candidates(ds: Dataset, candidates: dict[str, FitScore], *, n_splits: int = 5, n_repeats: int = 1,
                        seed: int = 0, progress: bool = True, cohorts: str | None = None, train_on=None,
                        checkpoint=False) -> dict[str, ProtocolResult]:
    """Every candidate on the same grouped outer folds (:func:`~alllib.learn.evaluation.cross_validate`:
    split by ``ds.groups``, reshuffled per repeat, never more folds than the smaller class has
    groups), or with ``cohorts`` (a column of ``ds.table``, C-NMC's ``"fold"``) each cohort held
    out in turn, or trained on the cohort ``train_on`` and tested on the others. Each candidate
    sees only ``train`` when it fits; its scores on ``test`` are kept per fold.

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
    cohorts : str, optional
        Leave one cohort out instead (:func:`~alllib.learn.evaluation.cohort_folds`).
    train_on : optional
        With ``cohorts``: train on this cohort only, test on the others.
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
                          desc="candidates x folds", cohorts=cohorts, train_on=train_on, checkpoint=checkpoint)


#: The metrics of :func:`candidates_table`, as the table names them.
CANDIDATE_METRICS = {"balanced accuracy": "balanced_accuracy", "weighted f1": "weighted_f1"}


def candidates_table(results: dict[str, ProtocolResult], baseline: str, metric: str = "balanced accuracy", *,
                     n_boot: int = 2000, n_perm: int = 5000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Per candidate: balanced accuracy and weighted F1 of its out-of-fold predictions (averaged
    over the repeats) with 95 % intervals from a bootstrap over the groups
    (:func:`~alllib.learn.metrics.grouped_bootstrap`: slides, subjects); and against ``baseline``, on
    ``metric``, the comparison of :func:`~alllib.learn.verdicts.paired_comparison`: the paired
    difference in points with the 95 % interval of the corrected t-test over every fold of every
    repeat, the smallest difference the run could have detected, the p-values of the group
    sign-flip test and of Nadeau and Bengio's corrected resampled t-test, the larger of the two
    (``p``: both tests must agree), that p adjusted by Holm for the number of candidates compared
    with the one baseline (``p (Holm)``), the ``verdict`` at ``alpha`` on it ("better", "worse" or
    "could not tell"), in how many folds the candidate scored higher, and on how many images (summed
    over the repeats) its call differs from the baseline's.

    Parameters
    ----------
    results : dict of str to ProtocolResult
        From :func:`evaluate_candidates`.
    baseline : str
        The candidate the others are compared with.
    metric : {"balanced accuracy", "weighted f1"}
        The metric of the comparison.
    n_boot, n_perm : int
        Bootstrap draws; swap patterns of the sign-flip test.
    seed : int
        Seeds the bootstrap and the sign-flip test.
    alpha : float
        The family-wise error rate of the verdicts.

    Returns
    -------
    pandas.DataFrame
        One row per candidate; ``attrs`` records the metric, the baseline, the repeats, folds, groups,
        the groups of the smaller class and the number of comparisons.
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
    key = CANDIDATE_METRICS[metric]
    base = results[baseline].evaluations
    draws = {name: {m: grouped_bootstrap(y0, g0, p, k, n_boot=n_boot, seed=seed) for m, k in CANDIDATE_METRICS.items()}
             for name, p in preds.items()}  # each candidate's, the baseline's included, drawn once
    rows = []
    for name, res in results.items():
        row = {"candidate": name}
        for m, k in CANDIDATE_METRICS.items():
            row.update({m: float(np.mean([binary_metrics(y0, p)[k] for p in preds[name]])),
                        f"{m} 95% low": float(np.nanpercentile(draws[name][m], 2.5)),
                        f"{m} 95% high": float(np.nanpercentile(draws[name][m], 97.5))})
        if name != baseline:
            c = paired_comparison(y0, g0, preds[name], preds[baseline], [e.metrics[key] for e in res.evaluations],
                                  [e.metrics[key] for e in base], n_train=np.mean([e.n_train for e in res.evaluations]),
                                  n_test=np.mean([len(e.test_ids) for e in res.evaluations]), metric=key,
                                  n_boot=n_boot, n_perm=n_perm, seed=seed, alpha=alpha,
                                  draws=(draws[name][metric], draws[baseline][metric]))
            row.update({"difference (points)": 100 * c["difference"], "difference low (points)": 100 * c["t low"],
                        "difference high (points)": 100 * c["t high"], "detectable (points)": 100 * c["detectable"],
                        "p (sign flip)": c["p (sign flip)"], "p (corrected t-test)": c["p (corrected t)"], "p": c["p"],
                        "higher in folds": f"{c['higher in folds']}/{c['folds']}",
                        "images called differently": int(sum((a != b).sum() for a, b in zip(preds[name], preds[baseline])))})
        rows.append(row)
    table = pd.DataFrame(rows).set_index("candidate")
    if len(table) > 1:
        others = table.index != baseline
        table.loc[others, "p (Holm)"] = holm(table.loc[others, "p"])
        table.loc[others, "verdict"] = [verdict(p, d, alpha) for p, d in
                                        zip(table.loc[others, "p (Holm)"], table.loc[others, "difference (points)"])]
    per_class = groups_per_class(y0, g0)
    table.attrs.update({"metric": metric, "baseline": baseline, "repeats": len(repeats), "folds": len(base),
                        "groups": int(len(np.unique(g0))), "smaller class groups": int(min(per_class.values())),
                        "comparisons": len(table) - 1, "alpha": alpha})
    return table


def frozen_svm(featurize: Featurize, *, search: str = "small", target_per_class: int | None = None,
               augmenter: Augmenter | None = None, tta: bool = False, class_weight: str | None = None,
               neighbours: int = 0, neighbour_weight: float = 0.5, threshold: str = "default") -> FitScore:
    """The earlier chapters' pipeline as a candidate: frozen features and an SVM tuned by grouped
    inner CV on the training side, which is first grown to ``target_per_class`` images per class
    with ``augmenter`` (``None``: the originals only). With ``tta``, each test image's decision
    is the mean over its eight :func:`~alllib.augmentation.dihedral_views`; ``class_weight=
    "balanced"`` weighs both classes the same in the fit; with ``neighbours``, each test decision
    is corrected by its nearest test cells of the same person
    (:func:`~alllib.learn.neighbours.neighbourhood_correction`, Pan et al. 2019);
    ``threshold="balanced"`` moves the decision threshold to the one that maximises balanced
    accuracy on the training side's out-of-fold decisions (grouped inner folds: people the fit
    did not see; :func:`~alllib.learn.metrics.choose_threshold`), instead of the SVM's zero."""
    if threshold not in ("default", "balanced"):
        raise ValueError(f"threshold must be 'default' or 'balanced', not {threshold!r}")

    def fit_score(train: Dataset, test: Dataset, seed: int) -> np.ndarray:
        if target_per_class:
            train = balance(train, max(target_per_class, int(np.bincount(train.labels).max())),
                            augmenter or Augmenter(seed=seed))
        X = featurize(train)
        model, _ = fit_classifier("svm", X, train.labels, groups=train.groups, search=search, seed=seed,
                                  class_weight=class_weight)
        scores = np.mean([decision_scores(model, featurize(view)) for view in (dihedral_views(test) if tta else [test])],
                         axis=0)
        if neighbours:
            scores = neighbourhood_correction(featurize(test), scores, k=neighbours, weight=neighbour_weight,
                                              groups=test.groups)
        inner = inner_fold_count(train.labels, train.groups)
        if threshold == "balanced" and inner >= 2:
            scores = scores - _balanced_cut(model, X, train, inner, seed)
        return scores

    return with_recipe(fit_score, "frozen_svm", featurize=featurize, search=search,
                       target_per_class=target_per_class, augmenter=augmenter, tta=tta, class_weight=class_weight,
                       neighbours=neighbours, neighbour_weight=neighbour_weight, threshold=threshold)


def _balanced_cut(model, X: np.ndarray, train: Dataset, inner: int, seed: int) -> float:
    """The decision threshold that maximises balanced accuracy on ``model``'s settings refitted in
    grouped inner folds of ``train`` (each scored on people its fit did not see); originals only."""
    from sklearn.model_selection import StratifiedGroupKFold

    y, groups = train.labels, train.groups
    oof = np.full(len(y), np.nan)
    for a, b in StratifiedGroupKFold(inner, shuffle=True, random_state=seed).split(X, y, groups):
        oof[b] = decision_scores(refit(model, X[a], y[a]), X[b])
    keep = ~train.table["augmented"].to_numpy(bool) if "augmented" in train.table else np.ones(len(y), bool)
    return choose_threshold(y[keep], oof[keep], 0.0)


def per_person_centred(featurize: Featurize) -> Featurize:
    """A featurizer whose features are ``featurize``'s minus the mean of the same person's (group's)
    cells in the same dataset: what is left is how a cell differs from its own person's cells, the
    person's stain and microscope taken out. It uses no labels, only the batch; but where every cell
    of a person has the same class (C-NMC), it also takes out the difference between the classes'
    people, which is what it must keep."""
    def centred(ds: Dataset) -> np.ndarray:
        X = np.asarray(featurize(ds), np.float32)
        out = X.copy()
        for g in np.unique(ds.groups):
            mine = ds.groups == g
            out[mine] -= X[mine].mean(axis=0)
        return out

    return with_recipe(centred, "per_person_centred", featurize=featurize)


def side_by_side(*featurizers: Featurize) -> Featurize:
    """A featurizer whose features are those of ``featurizers`` side by side (e.g. deep features
    and :class:`~alllib.features.nucleus.NucleusFeaturizer`'s); the SVM's scaler puts them on one
    scale."""
    return with_recipe(lambda ds: np.hstack([np.asarray(f(ds), np.float32) for f in featurizers]),
                       "side_by_side", featurizers=featurizers)


def normalised_svm(featurize: Featurize, normaliser=None, *, search: str = "small") -> FitScore:
    """Stain normalisation, then :func:`frozen_svm` (no augmentation) on the normalised images of
    both sides. ``normaliser`` is an unfitted :class:`~alllib.preprocessing.Reinhard` (the default:
    its target fitted on each fold's training images only) or
    :class:`~alllib.preprocessing.Macenko` (a fixed reference: nothing is fitted)."""
    normaliser = Reinhard() if normaliser is None else normaliser
    stats: dict[str, np.ndarray] = {}  # each image's L*a*b* statistics by its key, made once for every fold

    def fit_score(train: Dataset, test: Dataset, seed: int) -> np.ndarray:
        norm = clone(normaliser)
        if isinstance(norm, Reinhard):
            keys = [train.image_key(i) for i in range(len(train))]
            for i, key in enumerate(keys):
                if key not in stats:
                    stats[key] = Reinhard._stats(train.image(i))
            norm.fit_stats([stats[k] for k in keys])
        else:
            norm.fit(train.iter_images())
        return frozen_svm(featurize, search=search)(transformed(train, norm.transform_image, norm.recipe),
                                                     transformed(test, norm.transform_image, norm.recipe), seed)

    return with_recipe(fit_score, "normalised_svm", featurize=featurize, normaliser=repr(normaliser), search=search)


def cnmc_candidates(featurize: Featurize, *, profile: str = "quick", search: str = "small", seed: int = 0,
                    target_per_class: int = 600, epochs: int = 3, kmeans_k: int = 3,
                    lite2: Featurize | None = None) -> tuple[str, dict[str, FitScore], list[str]]:
    """The C-NMC candidates of chapter 13 and ``benchmarks/cnmc_specificity.py``: ``(baseline,
    candidates, full_only)``. The baseline is frozen features and the SVM on the original cells.
    Every profile measures the candidates that cost little more than the baseline: class weights,
    the neighbourhood correction within each person, a threshold chosen on people the fit did not
    see, Macenko stain normalisation to one reference, features centred per person, hand-crafted
    nucleus features, alone and beside the deep ones. ``profile="full"`` adds what trains or
    featurises many more images (``full_only`` names them): the paper's augmentation, stain-jitter
    augmentation, Reinhard normalisation fitted per training side, EfficientNet-Lite2 (``lite2``,
    its featurizer) and fine-tuning EfficientNet-Lite0, from its last blocks, and from block 10 on
    with stain jitter, each image once per epoch or with every person weighing the same."""
    from alllib.features.nucleus import NucleusFeaturizer
    from alllib.learn.finetune import finetuned
    from alllib.preprocessing import Macenko

    nucleus = NucleusFeaturizer(k=kmeans_k, seed=seed)
    baseline = "frozen"
    out = {
        baseline: frozen_svm(featurize, search=search),
        "+ class weights": frozen_svm(featurize, search=search, class_weight="balanced"),
        "+ neighbourhood correction (within each person)": frozen_svm(featurize, search=search, neighbours=10),
        "+ threshold chosen on other people": frozen_svm(featurize, search=search, threshold="balanced"),
        "Macenko normalisation": normalised_svm(featurize, Macenko(), search=search),
        "features centred per person": frozen_svm(per_person_centred(featurize), search=search),
        "nucleus features": frozen_svm(nucleus, search=search),
        "deep + nucleus features": frozen_svm(side_by_side(featurize, nucleus), search=search),
    }
    paper_aug = Augmenter(border="constant", seed=seed)
    stain_aug = Augmenter(border="constant", hed=0.05, hue=0.04, saturation=0.2, seed=seed)
    grown = dict(search=search, target_per_class=target_per_class)
    more = {  # made only in the full profile (a fine-tuning candidate checks its weights file when made)
        "+ the paper's augmentation": lambda: frozen_svm(featurize, augmenter=paper_aug, **grown),
        "+ stain-jitter augmentation": lambda: frozen_svm(featurize, augmenter=stain_aug, **grown),
        "Reinhard normalisation": lambda: normalised_svm(featurize, search=search),
        "EfficientNet-Lite2 (260 px)": lambda: frozen_svm(lite2, search=search),
        "fine-tuned Lite0 (last blocks)": lambda: finetuned(epochs=epochs, augmenter=paper_aug),
        "fine-tuned Lite0 (block 10 on, stain jitter)": lambda: finetuned(epochs=epochs, augmenter=stain_aug,
                                                                          trainable_from="block10"),
        "fine-tuned Lite0 (block 10 on, stain jitter, person-balanced)": lambda: finetuned(
            epochs=epochs, augmenter=stain_aug, trainable_from="block10", person_balanced=True),
    }
    full_only = list(more)
    if profile == "full":
        out.update({name: make() for name, make in more.items() if lite2 is not None or "Lite2" not in name})
    return baseline, out, full_only


def cross_dataset(train: Dataset, test: Dataset, featurize: Featurize, *, search: str = "small",
                  seed: int = 0) -> dict:
    """Train on all of ``train`` (tuned by grouped inner CV), test on all of ``test``: accuracy,
    balanced accuracy, weighted F1, sensitivity and specificity."""
    scores = frozen_svm(featurize, search=search)(train, test, seed)
    m = binary_metrics(test.labels, (scores >= 0).astype(int), scores)
    return {"train": f"{train.name} ({len(train)} images)", "test": f"{test.name} ({len(test)} images)",
            **{k: m[k] for k in ("accuracy", "balanced_accuracy", "weighted_f1", "sensitivity", "specificity")}}


def cross_dataset_table(first: Dataset, second: Dataset, featurizers: dict[str, Featurize], *,
                        search: str = "small", seed: int = 0) -> pd.DataFrame:
    """:func:`cross_dataset` both ways, trained on ``first`` and tested on ``second`` and back, for
    every setting of ``featurizers`` (its name: its featurizer): one row per setting and direction."""
    rows = [{"setting": name, **cross_dataset(a, b, featurize, search=search, seed=seed)}
            for name, featurize in featurizers.items() for a, b in ((first, second), (second, first))]
    return pd.DataFrame(rows).set_index(["setting", "train", "test"])


def tta_features(featurize: Featurize, ds: Dataset) -> np.ndarray:
    """Features of ``ds`` averaged over the eight :func:`~alllib.augmentation.dihedral_views` of each
    image: what a test-time-augmented model sees, for probing the features themselves."""
    return np.mean([featurize(view) for view in dihedral_views(ds)], axis=0)


def per_group_table(results: dict[str, ProtocolResult], names: dict[int, str] | None = None) -> pd.DataFrame:
    """Each group's (C-NMC subject's, ALL-IDB2 slide's) out-of-fold result for every candidate: its
    class, its images, and the share labelled correctly with a 95 % Wilson interval. A C-NMC subject
    is either a patient or a healthy donor, so the share is the sensitivity for a patient and the
    specificity for a donor: with 3 normal donors in fold_1, they are the whole "normal" class, one
    by one. ``call`` is the one call per person from the group's cells
    (:func:`~alllib.learn.metrics.person_call`: ALL, normal or uncertain), made while the group was
    held out. Repeats are pooled for the share (every image counts once per repeat), but the
    interval and the call count each cell once: the repeats score the same cells again, they do
    not add any."""
    names = names or {1: "ALL", 0: "normal"}
    rows = []
    for name, res in results.items():
        pooled = res.pooled()
        repeats = max(len(res.repeats), 1)
        for group, part in pooled.groupby("group", sort=True):
            label = int(part["y_true"].mode().iloc[0])
            correct = int((part["y_pred"] == part["y_true"]).sum())
            images = len(part) // repeats
            low, high = wilson_interval(round(correct / repeats), images)  # each cell once, not once per repeat
            blasts = round(int((part["y_pred"] == 1).sum()) / repeats)
            rows.append({"candidate": name, "group": str(group), "class": names.get(label, str(label)),
                         "images": images, "correct": correct / len(part), "95% low": low, "95% high": high,
                         "measures": "sensitivity" if label == 1 else "specificity",
                         "call": person_call(blasts, images)})
    return pd.DataFrame(rows).set_index(["candidate", "group"])


def per_group_shares(by_group: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """A :func:`per_group_table` laid out to compare: each group's share labelled correctly, one column
    per candidate, beside the group's class, images and what the share measures; the groups of a
    class together, the baseline's lowest share first."""
    return (by_group["correct"].unstack("candidate").join(by_group.loc[baseline, ["class", "images", "measures"]])
            .sort_values(["class", baseline]))


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

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
  flips and right-angle rotations of each test image (:func:`dihedral`);
* :func:`reinhard_svm`: Reinhard colour normalisation (:class:`Reinhard`), its target fitted on
  the training images of each fold, applied to both sides before the features;
* fine-tuning EfficientNet-Lite0 end to end: :mod:`alllib.finetune`.

>>> img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
>>> [dihedral(img, t).shape for t in (0, 1)]
[(2, 3, 3), (3, 2, 3)]
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold
from tqdm import tqdm

from .augmentation import Augmenter, balance
from .classifiers import decision_scores, fit_classifier
from .data import Dataset
from .metrics import METRICS, binary_metrics, corrected_resampled_ttest, detectable_difference, grouped_bootstrap
from .preprocessing import rgb_to_lab
from .protocols import Featurize, _groups_per_class, outer_splits

__all__ = ["dihedral", "transformed", "Reinhard", "CandidateResult", "evaluate_candidates", "candidates_table",
           "CANDIDATE_METRICS",
           "frozen_svm", "reinhard_svm", "cross_dataset"]

FitScore = Callable[[Dataset, Dataset, int], np.ndarray]


def dihedral(img: np.ndarray, t: int) -> np.ndarray:
    """The ``t``-th of the eight symmetries of the square (``t`` in 0-7): ``t % 4`` quarter turns,
    then a left-right flip for ``t >= 4``. A cell has no preferred orientation, so a classifier
    should not mind."""
    if not 0 <= int(t) < 8:
        raise ValueError(f"t must be in 0-7, not {t!r}")
    out = np.rot90(img, int(t) % 4)
    return np.ascontiguousarray(out[:, ::-1] if t >= 4 else out)


def transformed(ds: Dataset, fn: Callable[[np.ndarray], np.ndarray], recipe: str) -> Dataset:
    """``ds`` with every image passed through ``fn``; ``recipe`` names the transform in each
    image's cache key (two different transforms must have different recipes)."""
    base_reader, base_key = ds.reader, ds.key_of
    return Dataset(ds.name, ds.table, lambda row: fn(base_reader(row)), f"{ds.source} | {recipe}",
                   keyer=lambda row: f"{base_key(row)}|{recipe}")


class Reinhard:
    """Reinhard et al.'s colour transfer in L*a*b*: each image's channel means and spreads are
    moved to a target's. ``fit`` sets the target to the mean of the training images' own means and
    spreads (training side only); ``transform`` applies it to one image. Black pixels (the
    background of pre-segmented cells) are left out of the statistics and left black.

    >>> img = np.random.default_rng(0).integers(30, 220, (16, 16, 3), dtype=np.uint8)
    >>> r = Reinhard().fit([img, img // 2])  # the target: halfway between the two
    >>> bool(np.allclose(Reinhard._stats(r.transform(img))[0], r.mean_, atol=2))
    True
    """

    def fit(self, images) -> "Reinhard":
        stats = np.array([self._stats(img) for img in images])
        if len(stats) == 0:
            raise ValueError("Reinhard.fit needs at least one image")
        self.mean_, self.std_ = stats[:, 0].mean(0), stats[:, 1].mean(0)
        return self

    @staticmethod
    def _stats(img: np.ndarray, lab: np.ndarray | None = None) -> np.ndarray:
        """Channel means and spreads of ``img`` in L*a*b* (``lab``: its conversion, if made)."""
        lab = (rgb_to_lab(img) if lab is None else lab).reshape(-1, 3).astype(np.float64)
        keep = img.reshape(-1, 3).max(1) > 0
        lab = lab[keep] if keep.any() else lab
        return np.stack([lab.mean(0), lab.std(0) + 1e-6])

    def transform(self, img: np.ndarray) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise RuntimeError("Reinhard is not fitted: call fit(training_images) first")
        lab = rgb_to_lab(img)
        mean, std = self._stats(img, lab)
        lab = np.clip((lab.astype(np.float64) - mean) / std * self.std_ + self.mean_, 0, 255).astype(np.uint8)
        out = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
        out[img.max(2) == 0] = 0
        return out

    @property
    def recipe(self) -> str:
        digest = hashlib.sha256(np.concatenate([self.mean_, self.std_]).round(6).tobytes()).hexdigest()[:16]
        return f"reinhard:{digest}"


@dataclass
class CandidateResult:
    """One candidate's decision values on every test image of every outer fold."""

    name: str
    folds: list[dict]  # per fold: repeat, ids, groups, y_true, scores, metrics, n_train
    info: dict

    def pooled(self, repeat: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ids, y_true, y_pred)`` of one repeat's folds (each image once), sorted by id."""
        ids, y, pred, _ = self._pooled(repeat)
        return ids, y, pred

    def _pooled(self, repeat: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        f = [x for x in self.folds if x["repeat"] == repeat]
        ids = np.concatenate([x["ids"] for x in f])
        y = np.concatenate([x["y_true"] for x in f])
        pred = np.concatenate([(x["scores"] >= 0).astype(int) for x in f])
        groups = np.concatenate([x["groups"] for x in f])
        order = np.argsort(ids, kind="stable")
        return ids[order], y[order], pred[order], groups[order]

    @property
    def repeats(self) -> list[int]:
        return sorted({x["repeat"] for x in self.folds})

    def fold_metrics(self) -> pd.DataFrame:
        return pd.DataFrame([{m: x["metrics"][m] for m in METRICS} for x in self.folds])


def evaluate_candidates(ds: Dataset, candidates: dict[str, FitScore], *, n_splits: int = 5, n_repeats: int = 1,
                        seed: int = 0, progress: bool = True) -> dict[str, CandidateResult]:
    """Every candidate on the same grouped outer folds (``StratifiedGroupKFold`` on ``ds.groups``,
    reshuffled per repeat; never more folds than the smaller class has groups). Each candidate
    sees only ``train`` when it fits; its scores on ``test`` are kept per fold."""
    used = outer_splits(ds.labels, ds.groups, n_splits)
    out = {name: CandidateResult(name, [], {"n_splits": used, "n_repeats": n_repeats, "seed": seed})
           for name in candidates}
    bar = tqdm(total=used * n_repeats * len(candidates), desc="candidates x folds", disable=not progress)
    fold = 0
    for r in range(n_repeats):
        outer = StratifiedGroupKFold(n_splits=used, shuffle=True, random_state=seed + r)
        for train, test in outer.split(np.zeros(len(ds)), ds.labels, ds.groups):
            train_ds, test_ds = ds.subset(train), ds.subset(test)
            for name, fit_score in candidates.items():
                scores = np.asarray(fit_score(train_ds, test_ds, seed + fold), float)
                y = test_ds.labels
                out[name].folds.append({"repeat": r, "fold": fold, "ids": test_ds.ids, "groups": test_ds.groups,
                                        "y_true": y, "scores": scores, "n_train": len(train_ds),
                                        "metrics": binary_metrics(y, (scores >= 0).astype(int), scores)})
                bar.update(1)
            fold += 1
    bar.close()
    return out


#: The metrics of :func:`candidates_table`, as the table names them.
CANDIDATE_METRICS = {"balanced accuracy": "balanced_accuracy", "weighted f1": "weighted_f1"}


def candidates_table(results: dict[str, CandidateResult], baseline: str, metric: str = "balanced accuracy", *,
                     n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per candidate: balanced accuracy and weighted F1 of its out-of-fold predictions (averaged
    over the repeats) with 95 % intervals from a bootstrap over the groups
    (:func:`~alllib.metrics.grouped_bootstrap`: slides, subjects); and against ``baseline``, on
    ``metric``: the paired difference in points with its grouped bootstrap interval (the same
    groups drawn for both, every repeat scored), the smallest difference this run could have
    detected (80 % power at the 5 % level, from the bootstrap's standard error:
    :func:`~alllib.metrics.detectable_difference`), and the p-value of Nadeau and Bengio's
    corrected resampled t-test over every fold of every repeat
    (:func:`~alllib.metrics.corrected_resampled_ttest`)."""
    if baseline not in results:
        raise ValueError(f"baseline {baseline!r} is not among the candidates {list(results)}")
    if metric not in CANDIDATE_METRICS:
        raise ValueError(f"metric must be one of {', '.join(CANDIDATE_METRICS)}, not {metric!r}")
    repeats = results[baseline].repeats
    ids0, y0, _, g0 = results[baseline]._pooled(repeats[0])
    preds = {}
    for name, res in results.items():
        preds[name] = []
        for r in repeats:
            ids, _, pred, _ = res._pooled(r)
            if not np.array_equal(ids, ids0):
                raise ValueError(f"{name} and {baseline} were not scored on the same images")
            preds[name].append(pred)
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
            per_fold = [a["metrics"][key] - b["metrics"][key] for a, b in zip(res.folds, results[baseline].folds)]
            n_test = np.mean([len(f["ids"]) for f in res.folds])
            n_train = np.mean([f["n_train"] for f in res.folds])
            row.update({"difference low (points)": 100 * float(np.nanpercentile(diff, 2.5)),
                        "difference high (points)": 100 * float(np.nanpercentile(diff, 97.5)),
                        "detectable (points)": 100 * detectable_difference(float(np.nanstd(diff))),
                        "p (corrected t-test)": corrected_resampled_ttest(per_fold, n_train, n_test)["p_value"]})
        rows.append(row)
    table = pd.DataFrame(rows).set_index("candidate")
    if len(table) > 1:
        at = table.columns.get_loc("difference low (points)")
        table.insert(at, "difference (points)", 100 * (table[metric] - table.loc[baseline, metric]))
        table.loc[baseline, "difference (points)"] = np.nan
    table.attrs.update({"metric": metric, "baseline": baseline, "repeats": len(repeats),
                        "folds": len(results[baseline].folds), "groups": int(len(np.unique(g0)))})
    return table


def frozen_svm(featurize: Featurize, *, search: str = "small", target_per_class: int | None = None,
               augmenter: Augmenter | None = None, tta: bool = False) -> FitScore:
    """The earlier chapters' pipeline as a candidate: frozen features and an SVM tuned by grouped
    inner CV on the training side, which is first grown to ``target_per_class`` images per class
    with ``augmenter`` (``None``: the originals only). With ``tta``, each test image's decision
    is the mean over its eight :func:`dihedral` views."""
    views = [(t, f"dihedral:{t}") for t in range(8)] if tta else [(0, None)]

    def fit_score(train: Dataset, test: Dataset, seed: int) -> np.ndarray:
        if target_per_class:
            train = balance(train, max(target_per_class, int(np.bincount(train.labels).max())),
                            augmenter or Augmenter(seed=seed))
        inner = min(3, *_groups_per_class(train.labels, train.groups).values())
        model, _ = fit_classifier("svm", featurize(train), train.labels, groups=train.groups,
                                  search=search if inner >= 2 else "none", cv_splits=max(inner, 2), seed=seed)
        return np.mean([decision_scores(model, featurize(test if recipe is None else
                                                         transformed(test, lambda im, t=t: dihedral(im, t), recipe)))
                        for t, recipe in views], axis=0)

    return fit_score


def reinhard_svm(featurize: Featurize, *, search: str = "small") -> FitScore:
    """Reinhard normalisation fitted on the training images, then :func:`frozen_svm` (no
    augmentation) on the normalised images of both sides."""

    def fit_score(train: Dataset, test: Dataset, seed: int) -> np.ndarray:
        norm = Reinhard().fit(train.iter_images())
        return frozen_svm(featurize, search=search)(transformed(train, norm.transform, norm.recipe),
                                                     transformed(test, norm.transform, norm.recipe), seed)

    return fit_score


def cross_dataset(train: Dataset, test: Dataset, featurize: Featurize, *, search: str = "small",
                  seed: int = 0) -> dict:
    """Train on all of ``train`` (tuned by grouped inner CV), test on all of ``test``: accuracy,
    balanced accuracy, weighted F1, sensitivity and specificity."""
    scores = frozen_svm(featurize, search=search)(train, test, seed)
    m = binary_metrics(test.labels, (scores >= 0).astype(int), scores)
    return {"train": f"{train.name} ({len(train)} images)", "test": f"{test.name} ({len(test)} images)",
            **{k: m[k] for k in ("accuracy", "balanced_accuracy", "weighted_f1", "sensitivity", "specificity")}}

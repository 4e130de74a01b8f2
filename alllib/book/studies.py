"""The chapters' studies: several protocols, settings or maps run together and tabled, as a chapter shows them.

* :func:`protocol_study`: the paper's and the honest protocol, with and without augmentation, and
  the subject probe (chapter 10);
* :func:`layers_study`: ALL-IDB2's layers of structure (duplicates, slides, acquisition) for one setting (chapter 9);
* :func:`attribution_study`: Grad-CAM through the real SVM for every image, with grouped folds (chapter 11).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from alllib.attribution import (
    blurred_fill,
    cell_map_checks,
    conv_maps,
    finer_layer,
    grad_cam,
    grad_cam_at,
    inside_share,
    integrated_gradients,
    label_randomised_svm,
    map_similarity,
    network_mode,
    nucleus_mask,
    occlusion_map,
    permuted_svm,
    random_smooth_map,
    rise_map,
    svm_evidence,
    svm_feature_gradient,
    upsample,
)
from alllib.augmentation import Augmenter
from alllib.data import Dataset
from alllib.features import BACKBONES, FeatureExtractor
from alllib.learn.classifiers import CLASSIFIERS, fit_classifier
from alllib.learn.evaluation import ProtocolResult, dataset_digest, grouped_folds
from alllib.learn.metrics import mean_interval
from alllib.learn.protocols import Featurize, confound_probe, honest_protocol, paper_protocol, subject_probe
from alllib.memo import digest, kept, memo_path, recipe, source_digest
from alllib.preprocessing import imagenet_preprocess, resize

__all__ = ["compare_protocols", "Study", "protocol_study", "layers_table", "layers_study", "AttributionStudy",
           "attribution_study", "occlusion_check", "inside_table", "MAP_KINDS", "CONSISTENCY", "sanity_checks",
           "sanity_sample", "QUICK_KINDS", "passing_inside_table", "AGREEMENT_KINDS", "map_agreement", "agreement_matrix"]

def compare_protocols(paper: dict[str, ProtocolResult], honest: dict[str, ProtocolResult],
                      metric: str = "accuracy") -> pd.DataFrame:
    """One row per classifier: paper-protocol value, honest mean and interval, inflation, and the
    leak counts (test samples sharing a source image or a group with the training side; the
    honest count adds both and is zero by construction)."""
    rows = []
    for name in paper:
        p = paper[name].summary().loc[metric]
        h = honest[name].summary().loc[metric] if name in honest else None
        rows.append({
            "classifier": name,
            f"paper protocol {metric}": p["value"],
            f"honest {metric}": np.nan if h is None else h["value"],
            "honest 95% low": np.nan if h is None else h["low"],
            "honest 95% high": np.nan if h is None else h["high"],
            "inflation (points)": np.nan if h is None else 100 * (p["value"] - h["value"]),
            "paper leaks (test sharing a source)": paper[name].leaks,
            "paper leaks (test sharing a group)": paper[name].group_leaks,
            "honest leaks": np.nan if h is None else honest[name].leaks + honest[name].group_leaks,
        })
    return pd.DataFrame(rows).set_index("classifier")


class _TimedFeaturize:
    """A featurize callable that adds up the seconds spent in it."""

    def __init__(self, featurize: Featurize):
        self.featurize, self.seconds = featurize, 0.0

    @property
    def recipe(self):
        """The features' :func:`~alllib.memo.recipe`: timing them changes nothing they compute."""
        return recipe(self.featurize)

    def __call__(self, ds: Dataset) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return self.featurize(ds)
        finally:
            self.seconds += time.perf_counter() - t0


@dataclass
class Study:
    """The paper's protocol and the honest one on one dataset, each with and without the
    paper's augmentation, plus the subject probe: everything the C-NMC chapter shows."""

    ds: Dataset
    paper: dict[str, ProtocolResult]
    paper_noaug: dict[str, ProtocolResult]
    honest: dict[str, ProtocolResult]
    honest_noaug: dict[str, ProtocolResult]
    probe: pd.DataFrame | None
    timings: pd.DataFrame

    def comparison(self, metric: str = "accuracy") -> pd.DataFrame:
        """:func:`compare_protocols` of the augmented runs (the paper's headline setting)."""
        return compare_protocols(self.paper, self.honest, metric)


def protocol_study(ds: Dataset, featurize: Featurize, classifiers: Sequence[str] = CLASSIFIERS, *,
                   target_per_class: int, augmenter: Augmenter | None = None, search: str = "paper",
                   n_splits: int = 5, n_repeats: int = 1, inner_splits: int = 3, probe_column: str | None = "patient",
                   seed: int = 0, progress: bool = True, checkpoint=False) -> Study:
    """Run the four protocol settings and the subject probe, timing each stage.

    The paper protocol balances the whole ``ds`` to ``target_per_class`` per class (at least the
    larger class) and splits by image; the honest one splits by group first and grows each
    training side by the same ratio (``scale_target``). ``timings`` has one row per stage:
    feature extraction (reading, augmenting and running the network, cached features read back)
    and each classifier's fitting and tuning, in seconds. With ``checkpoint``, every protocol keeps
    each fit as it ends (:func:`~alllib.learn.protocols.paper_protocol`,
    :func:`~alllib.learn.protocols.honest_protocol`): a study stopped midway resumes at the next fit,
    and a fit taken from the checkpoint counts the seconds it took when it ran.
    """
    timed = _TimedFeaturize(featurize)
    target = max(int(target_per_class), int(np.bincount(ds.labels).max()))
    rows, runs = [], {}
    for key, label, run in (
        ("paper", "paper protocol, augmented", lambda: paper_protocol(
            ds, timed, classifiers, target_per_class=target, augmenter=augmenter, search=search, seed=seed,
            checkpoint=checkpoint)),
        ("paper_noaug", "paper protocol, no augmentation", lambda: paper_protocol(
            ds, timed, classifiers, target_per_class=None, search=search, seed=seed, checkpoint=checkpoint)),
        ("honest", "honest protocol, augmented", lambda: honest_protocol(
            ds, timed, classifiers, target_per_class=target, scale_target=True, augmenter=augmenter,
            n_splits=n_splits, n_repeats=n_repeats, inner_splits=inner_splits, search=search, seed=seed,
            progress=progress, checkpoint=checkpoint)),
        ("honest_noaug", "honest protocol, no augmentation", lambda: honest_protocol(
            ds, timed, classifiers, target_per_class=None, n_splits=n_splits, n_repeats=n_repeats,
            inner_splits=inner_splits, search=search, seed=seed, progress=progress, checkpoint=checkpoint)),
    ):
        before = timed.seconds
        runs[key] = run()
        rows.append({"stage": f"{label}: features", "seconds": timed.seconds - before})
        for name, res in runs[key].items():
            rows.append({"stage": f"{label}: {name}", "seconds": sum(e.seconds for e in res.evaluations)})
    probe = None
    if probe_column is not None:
        t0 = time.perf_counter()
        probe = subject_probe(timed(ds), ds, column=probe_column, seed=seed)
        rows.append({"stage": "subject probe", "seconds": time.perf_counter() - t0})
    return Study(ds, runs["paper"], runs["paper_noaug"], runs["honest"], runs["honest_noaug"], probe,
                 pd.DataFrame(rows).set_index("stage"))


def layers_table(evaluations: dict[str, tuple[ProtocolResult, Dataset]]) -> pd.DataFrame:
    """One row per evaluation (name -> its result and the dataset it ran on): images, groups,
    accuracy, balanced accuracy and the balanced accuracy's interval, as fractions. For setting
    the paper protocol, the duplicate-grouped, the slide-grouped and the same-acquisition
    honest estimates side by side."""
    rows = []
    for name, (result, ds) in evaluations.items():
        s = result.summary()
        rows.append({"evaluation": name, "images": len(ds), "groups": int(ds.table["group"].nunique()),
                     "accuracy": s.loc["accuracy", "value"], "balanced accuracy": s.loc["balanced_accuracy", "value"],
                     "balanced 95% low": s.loc["balanced_accuracy", "low"],
                     "balanced 95% high": s.loc["balanced_accuracy", "high"]})
    return pd.DataFrame(rows).set_index("evaluation")


def layers_study(ds: Dataset, featurize: Featurize, *, paper_target: int | None, honest_target: int | None,
                 acquisition: str = "2592x1944", n_splits: int = 5, n_repeats: int = 1, search: str = "paper",
                 seed: int = 0, paper: ProtocolResult | None = None,
                 honest: ProtocolResult | None = None) -> tuple[pd.DataFrame, dict]:
    """ALL-IDB2's layers of structure for one feature setting, with the SVM: the paper protocol,
    the honest protocol split by duplicate group (``dup_group``), split by slide (``group``),
    and split by slide on the crops of one ``acquisition`` only; then the acquisition probe
    among the blast crops. Returns ``(layers_table(...), confound_probe(...))``. ``paper`` and
    ``honest`` reuse SVM results already computed on ``ds`` with the same settings."""
    run = dict(target_per_class=honest_target, n_splits=n_splits, n_repeats=n_repeats, search=search, seed=seed,
               progress=False)
    paper = paper or paper_protocol(ds, featurize, ["svm"], target_per_class=paper_target, search=search,
                                    seed=seed)["svm"]
    honest = honest or honest_protocol(ds, featurize, ["svm"], **run)["svm"]
    by_duplicates = ds.regroup("dup_group")
    one = ds.subset(np.flatnonzero(ds.table["acquisition"] == acquisition))
    table = layers_table({
        "the paper protocol (split by image after augmenting)": (paper, ds),
        "the honest protocol split by duplicate group": (
            honest_protocol(by_duplicates, featurize, ["svm"], **run)["svm"], by_duplicates),
        "the honest protocol split by slide": (honest, ds),
        f"the honest protocol on {acquisition} slides only, split by slide": (
            honest_protocol(one, featurize, ["svm"], **run)["svm"], one),
    })
    return table, confound_probe(featurize(ds), ds, "acquisition", among_label=1, seed=seed)


@dataclass
class AttributionStudy:
    """Grad-CAM of every image, each scored by an SVM that never saw it (grouped outer folds).

    ``table``: one row per image with ``id``, ``label``, ``fold``, the SVM's decision
    ``score``, ``pred``, ``correct``, ``margin`` (signed toward the true class: the most negative
    are the largest errors), ``mask_area`` and ``cam_inside`` (the Grad-CAM share inside the
    nucleus mask). ``cams`` are the coarse maps, ``pixels`` the network's view of each image
    (after segmentation, if any), ``masks`` the nucleus masks, ``models`` each fold's SVM and
    ``features`` every image's features (a fold's SVM was fitted on the other folds' rows).
    """

    table: pd.DataFrame
    cams: np.ndarray = field(repr=False)
    pixels: list = field(repr=False)
    masks: np.ndarray = field(repr=False)
    models: list = field(repr=False)
    extractor: FeatureExtractor = field(repr=False)
    features: np.ndarray = field(repr=False)
    description: str = ""
    key: str = ""  # what made the study (data, extractor, folds, code); "" where something has no recipe

    def network_input(self, i: int) -> np.ndarray:
        """The ``i``-th image as the network saw it (segmented, resized and normalised)."""
        return imagenet_preprocess(self.pixels[i], network_mode(self.extractor))

    def model_of(self, i: int):
        """The SVM of the ``i``-th image's test fold (fitted without it)."""
        return self.models[int(self.table["fold"].iloc[i])]

    def training_side(self, i: int) -> np.ndarray:
        """Indices of the images the ``i``-th image's SVM was fitted on (the other folds)."""
        return np.flatnonzero(self.table["fold"].to_numpy() != self.table["fold"].iloc[i])

    def sign(self, i: int) -> float:
        """+1 where the SVM chose class 1 for the ``i``-th image, else -1: maps point to the class chosen."""
        return 1.0 if self.table["score"].iloc[i] >= 0 else -1.0

    def cam(self, i: int) -> np.ndarray:
        """The ``i``-th image's Grad-CAM at the network input's size."""
        return upsample(self.cams[i], self.extractor.size)

    def occlusion(self, i: int, *, patch: int = 48, stride: int = 24) -> np.ndarray:
        """Occlusion sensitivity of the ``i``-th image under the SVM of its own test fold, with the
        blurred image as fill (:func:`~alllib.attribution.blurred_fill`)."""
        model = self.model_of(i)
        score = lambda batch: model.decision_function(self.extractor.embed(list(batch)))  # noqa: E731
        x = self.network_input(i)
        return occlusion_map(score, x, patch=patch, stride=stride, sign=self.sign(i), fill=blurred_fill(x))

    def pick(self, n: int = 4) -> dict[str, list[int]]:
        """The run's own choice of cells to show: the ``n`` most confident correct decisions and the
        ``n`` largest errors (most negative margins)."""
        order = self.table.sort_values("margin")
        wrong = order[~order["correct"]].index[:n].tolist()
        right = order[order["correct"]].index[::-1][:n].tolist()
        return {"largest errors": wrong, "most confident correct": right}


def attribution_study(ds: Dataset, extractor: FeatureExtractor, *, n_splits: int = 5, search: str = "small",
                      seed: int = 0, mask_k: int = 3, progress: bool = True) -> AttributionStudy:
    """Grad-CAM through the real SVM for every image of ``ds``, with grouped outer folds.

    The images are split by ``ds.groups`` (slide or subject) into ``n_splits`` folds (fewer
    where a class has fewer groups); each fold's SVM is fitted (and tuned with ``search``, by
    grouped inner CV) on the other folds' features only, and explains its own test images.
    The features are the spatial means of the same maps Grad-CAM weighs, so both come from one
    pass through the network.
    """
    if not hasattr(extractor, "backbone_"):
        extractor.fit()
    y, groups, ids = ds.labels, ds.groups, ds.ids
    pixels, masks = [], []
    truth = ds.mask_reader is not None  # synthetic smears know their nuclei
    for i in tqdm(range(len(ds)), desc="images and nucleus masks", unit="img", disable=not progress):
        img = ds.image(i)
        pixels.append(extractor.transform_.pixels(img, image_id=ids[i]))
        masks.append(resize(ds.mask(i).astype(np.uint8), extractor.size, "nearest").astype(bool) if truth
                     else nucleus_mask(img, extractor.size, k=mask_k, seed=seed, image_id=ids[i]))
    maps = conv_maps(extractor, [imagenet_preprocess(p, network_mode(extractor)) for p in pixels], progress=progress)
    X = maps.mean(axis=(1, 2))
    cams = np.zeros(maps.shape[:3], np.float32)
    score, fold_of, models = np.zeros(len(ds)), np.zeros(len(ds), int), []
    for fold in grouped_folds(y, groups, n_splits=n_splits, seed=seed):
        train, test = fold.train, fold.test
        model, _ = fit_classifier("svm", X[train], y[train], groups=groups[train], search=search, cv_splits=3,
                                  seed=fold.seed)
        f, grad = svm_feature_gradient(model, X[test])
        cams[test] = grad_cam(maps[test], grad * np.where(f >= 0, 1.0, -1.0)[:, None])
        score[test], fold_of[test] = f, fold.index
        models.append(model)
    masks = np.stack(masks)
    pred = np.where(score >= 0, 1, 0)
    table = pd.DataFrame({"id": ids, "label": y, "group": groups, "fold": fold_of, "score": score, "pred": pred,
                          "correct": pred == y, "margin": score * np.where(y == 1, 1, -1),
                          "mask_area": masks.mean(axis=(1, 2)),
                          "cam_inside": [inside_share(upsample(c, extractor.size), m) for c, m in zip(cams, masks)]})
    seg = extractor.segmentation
    description = (f"{BACKBONES[extractor.backbone_].label} features, "
                   f"{'K-means segmentation' if seg else 'no segmentation'}, SVM, {len(models)} grouped folds; "
                   f"nucleus masks: {'the ground truth' if truth else 'K-means on A'}")
    made = recipe(extractor)
    key = "" if made is None else digest(dataset_digest(ds), made, n_splits, search, seed, mask_k, source_digest())
    return AttributionStudy(table, cams, pixels, masks, models, extractor, X, description, key)


def occlusion_check(study: AttributionStudy, indices: list[int], *, patch: int = 48,
                    stride: int = 24) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """Occlusion sensitivity of the cells at ``indices``, beside their Grad-CAM: the share of each
    map inside the nucleus mask and the Spearman rank correlation of the two maps (1: they rank
    the pixels alike). Returns the table and the maps."""
    from scipy.stats import spearmanr

    rows, maps = [], {}
    for i in indices:
        occ = maps[i] = study.occlusion(i, patch=patch, stride=stride)
        cam = study.cam(i)
        r = study.table.iloc[i]
        flat = cam.std() == 0 or occ.std() == 0  # an empty map ranks nothing
        rows.append({"id": r["id"], "label": int(r["label"]), "correct": bool(r["correct"]),
                     "nucleus area": r["mask_area"], "Grad-CAM inside": r["cam_inside"],
                     "occlusion inside": inside_share(occ, study.masks[i]),
                     "rank correlation": np.nan if flat else float(spearmanr(cam.ravel(), occ.ravel()).statistic)})
    return pd.DataFrame(rows).set_index("id"), maps


def inside_table(studies: dict[str, AttributionStudy], class_names: dict[int, str] | None = None) -> pd.DataFrame:
    """Per study and class: cells, the mean nucleus-mask area (what an even map would score), the
    mean Grad-CAM share inside the mask with its 95 % interval, and their ratio (above 1: the map
    concentrates on the nucleus). Cells without a usable mask or map are left out."""
    class_names = class_names or {1: "ALL blast", 0: "not a blast"}
    rows = []
    for name, study in studies.items():
        t = study.table.dropna(subset=["cam_inside"])
        t = t[(t["mask_area"] > 0) & (t["mask_area"] < 1)]
        for label in sorted(t["label"].unique(), reverse=True):
            part = t[t["label"] == label]
            mean, lo, hi = mean_interval(part["cam_inside"])
            rows.append({"setting": name, "class": class_names.get(int(label), str(label)), "cells": len(part),
                         "nucleus area": part["mask_area"].mean(), "Grad-CAM inside": mean,
                         "inside 95% low": lo, "inside 95% high": hi,
                         "ratio": mean / part["mask_area"].mean()})
    return pd.DataFrame(rows).set_index(["setting", "class"])




#: The maps :func:`sanity_checks` tests: Grad-CAM through the SVM at the last convolutional layer and
#: at the finer layer before it (:func:`~alllib.attribution.finer_layer`), Integrated Gradients of the
#: decision through the network (from the blurred image), occlusion and RISE of the SVM's decision and
#: of its evidence (:func:`~alllib.attribution.svm_evidence`), all with a blurred fill.
MAP_KINDS = ("Grad-CAM", "Grad-CAM, finer layer", "Integrated Gradients", "occlusion of the decision",
             "occlusion of the evidence", "RISE of the decision", "RISE of the evidence")

#: What each kind's self-consistency compares it with (:func:`sanity_checks`).
CONSISTENCY = {"Grad-CAM": "Grad-CAM at the finer layer", "Grad-CAM, finer layer": "Grad-CAM at the last layer",
               "Integrated Gradients": "a baseline blurred twice as much",
               "occlusion of the decision": "a square two thirds as large",
               "occlusion of the evidence": "a square two thirds as large",
               "RISE of the decision": "the other half of the masks", "RISE of the evidence": "the other half of the masks"}


#: The map kinds a quick run tests: those that cost at most a few hundred network passes a cell
#: (Integrated Gradients and RISE are the full profile's).
QUICK_KINDS = ("Grad-CAM", "Grad-CAM, finer layer", "occlusion of the decision", "occlusion of the evidence")


def _cell_maps(study: AttributionStudy, i: int, svms: dict, *, patch: int, stride: int, rise_masks: int,
               seed: int, kinds: Sequence[str] = MAP_KINDS, variants: bool = True) -> tuple[dict, dict, Callable]:
    """Every map kind of cell ``i`` under each SVM of ``svms`` (name -> fitted pipeline; the first is
    the fold's own), each kind's variant for self-consistency (where ``variants``), and the scores the
    maps explain: a function of a batch of network inputs -> ``(n, 2 len(svms))`` (decision, evidence
    per SVM)."""
    ex, size = study.extractor, study.extractor.size
    x, sign = study.network_input(i), study.sign(i)
    fill = blurred_fill(x)
    models = list(svms.values())

    def heads(batch):  # one pass through the network for every SVM's decision and evidence
        feats = ex.embed(list(batch))
        return np.stack([h for m in models for h in (m.decision_function(feats), svm_evidence(m, feats))], axis=1)

    maps, variant = {kind: {} for kind in kinds}, {}
    wants = set(kinds).__contains__
    if wants("Grad-CAM") or wants("Grad-CAM, finer layer"):
        last = conv_maps(ex, [x])
        layer = finer_layer(ex)
        for name, m in svms.items():
            _, g = svm_feature_gradient(m, last.mean(axis=(1, 2)))
            cam = upsample(grad_cam(last, g * sign)[0], size)
            fine = upsample(grad_cam_at(ex, m, x, layer=layer, sign=sign), size)
            if wants("Grad-CAM"):
                maps["Grad-CAM"][name] = cam
            if wants("Grad-CAM, finer layer"):
                maps["Grad-CAM, finer layer"][name] = fine
            if name == next(iter(svms)):
                variant["Grad-CAM"], variant["Grad-CAM, finer layer"] = fine, cam
    if wants("Integrated Gradients"):
        for name, m in svms.items():
            maps["Integrated Gradients"][name] = integrated_gradients(ex, m, x, baseline=fill, sign=sign)
        if variants:
            variant["Integrated Gradients"] = integrated_gradients(ex, models[0], x, sign=sign,
                                                                   baseline=blurred_fill(x, 2 * x.shape[0] / 16))
    occlusion = [k for k in ("occlusion of the decision", "occlusion of the evidence") if wants(k)]
    if occlusion:
        occ = occlusion_map(heads, x, patch=patch, stride=stride, sign=sign, fill=fill)
        small = patch * 2 // 3
        occ_small = occlusion_map(heads, x, patch=small, stride=min(stride, small), sign=sign,
                                  fill=fill) if variants else None
        for head, kind in enumerate(("occlusion of the decision", "occlusion of the evidence")):
            if kind in occlusion:
                maps[kind] = {name: occ[..., 2 * j + head] for j, name in enumerate(svms)}
                if variants:
                    variant[kind] = occ_small[..., head]
    rise = [k for k in ("RISE of the decision", "RISE of the evidence") if wants(k)]
    if rise:
        halves = [rise_map(heads, x, masks=max(rise_masks // 2, 1), fill=fill, sign=sign, seed=seed + part)
                  for part in (0, 1)]
        whole = (halves[0] + halves[1]) / 2  # the map of every mask: both halves hold as many
        for head, kind in enumerate(("RISE of the decision", "RISE of the evidence")):
            if kind in rise:
                maps[kind] = {name: whole[..., 2 * j + head] for j, name in enumerate(svms)}
                variant[kind] = halves[1][..., head]
                maps[kind]["first half"] = halves[0][..., head]  # compared with the second half
    return maps, variant, heads


def sanity_checks(study: AttributionStudy, indices: Sequence[int], *, kinds: Sequence[str] = MAP_KINDS,
                  patch: int = 48, stride: int = 24, steps: int = 16, rise_masks: int = 256, consistency: bool = True,
                  seed: int = 0, progress: bool = True, checkpoint=False) -> pd.DataFrame:
    """Every map kind of :data:`MAP_KINDS` tested on the cells at ``indices``, before any is read.
    One row per cell and map kind, the checks of :func:`~alllib.attribution.cell_map_checks`
    (judged by :func:`~alllib.attribution.sanity_table`), with the fold's SVM as the model, the
    same SVM with its dual coefficients shuffled (:func:`~alllib.attribution.permuted_svm`) and an
    SVM fitted on the fold's training side with the labels shuffled
    (:func:`~alllib.attribution.label_randomised_svm`) as the randomised ones, the variants of
    :data:`CONSISTENCY`, a random smooth map drawn for each cell, and the maps' scores (the
    decision, or the evidence for the evidence's maps) signed toward the class the SVM chose; then
    ``inside``, the map's positive share inside the nucleus mask, and ``mask area``.

    ``kinds`` chooses among :data:`MAP_KINDS`; ``consistency=False`` skips the variants (NaN), which
    saves the occlusion with a smaller square and a second Integrated Gradients, but then no map
    can pass its randomisation check. RISE uses
    ``rise_masks`` masks per cell. The label-shuffled SVM is fitted once per fold. With ``checkpoint``
    (a folder, or ``True``: the cache's ``sanity-v1``), each cell's rows are kept as they are
    computed and found again by the study's ``key`` and these settings: a run stopped midway resumes
    at the next cell, with the same numbers.
    """
    unknown = set(kinds) - set(MAP_KINDS)
    if unknown:
        raise ValueError(f"unknown map kinds {sorted(unknown)}; choose among {list(MAP_KINDS)}")
    rng = np.random.default_rng(seed)
    shuffled_labels = {}

    def cell_rows(i: int, random_map: np.ndarray) -> list[dict]:
        fold = int(study.table["fold"].iloc[i])
        if fold not in shuffled_labels:
            train = study.training_side(i)
            shuffled_labels[fold] = label_randomised_svm(study.model_of(i), study.features[train],
                                                         study.table["label"].to_numpy()[train], seed=seed + fold)
        svms = {"model": study.model_of(i), "weights": permuted_svm(study.model_of(i), seed=seed + int(i)),
                "labels": shuffled_labels[fold]}
        maps, variant, heads = _cell_maps(study, i, svms, patch=patch, stride=stride, rise_masks=rise_masks,
                                           seed=seed + int(i), kinds=kinds, variants=consistency)
        r = study.table.iloc[i]
        return [{"id": r["id"], "label": int(r["label"]), **row, "inside": inside_share(maps[row["map"]]["model"],
                                                                                       study.masks[i]),
                 "mask area": float(study.masks[i].mean())}
                for row in cell_map_checks(maps, variant, heads, study.network_input(i), sign=study.sign(i),
                                           random_map=random_map, steps=steps)]

    rows = []
    for i in tqdm(list(indices), desc="sanity checks", unit="cell", disable=not progress):
        random_map = random_smooth_map(study.extractor.size, rng)  # drawn for every cell, kept or not
        memo = memo_path(checkpoint, "sanity", study.key, int(i), list(kinds), patch, stride, steps, rise_masks,
                         consistency, seed) if study.key else None
        rows.extend(kept(memo, partial(cell_rows, i, random_map)))
    return pd.DataFrame(rows)


def sanity_sample(study: AttributionStudy, cells: int, *, kinds: Sequence[str] = MAP_KINDS, rise_masks: int = 256,
                  steps: int = 16, seed: int = 0, checkpoint=True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`sanity_checks` on ``cells`` cells of ``study`` drawn at random (seeded, not the run's
    extreme picks), with ``steps`` deletion and insertion steps, and their
    :func:`~alllib.attribution.sanity_table`: ``(checks, table)``."""
    from alllib.attribution import sanity_table

    picked = np.random.default_rng(seed).choice(len(study.table), size=min(cells, len(study.table)), replace=False)
    checks = sanity_checks(study, sorted(picked.tolist()), kinds=kinds, rise_masks=rise_masks, steps=steps, seed=seed,
                           checkpoint=checkpoint)
    return checks, sanity_table(checks)


#: The map kinds :func:`map_agreement` computes on every image (RISE and Integrated Gradients cost
#: hundreds of passes per image, so they are compared on the sanity checks' cells only).
AGREEMENT_KINDS = ("Grad-CAM", "Grad-CAM, finer layer", "occlusion of the decision", "occlusion of the evidence")


def map_agreement(study: AttributionStudy, indices: Sequence[int] | None = None, *,
                  kinds: Sequence[str] = AGREEMENT_KINDS, patch: int = 48, stride: int = 24, rise_masks: int = 256,
                  seed: int = 0, progress: bool = True, checkpoint=False) -> pd.DataFrame:
    """How alike the map kinds rank the pixels, image by image: one row per image (every image of
    the study where ``indices`` is None) and pair of ``kinds``, with the Spearman correlation of
    the two maps (:func:`~alllib.attribution.map_similarity`; NaN where one is flat) and the
    image's ``label`` and ``correct``. ``checkpoint`` keeps each image's rows as in :func:`sanity_checks`
    (``True``: the cache's ``agreement-v1``)."""

    def pairs(i: int) -> list[dict]:
        maps, _, _ = _cell_maps(study, i, {"model": study.model_of(i)}, patch=patch, stride=stride,
                                rise_masks=rise_masks, seed=seed + int(i), kinds=kinds, variants=False)
        r = study.table.iloc[i]
        return [{"id": r["id"], "label": int(r["label"]), "correct": bool(r["correct"]), "first": kinds[a],
                 "second": kinds[b], "rho": map_similarity(maps[kinds[a]]["model"], maps[kinds[b]]["model"])}
                for a in range(len(kinds)) for b in range(a + 1, len(kinds))]

    rows = []
    indices = range(len(study.table)) if indices is None else indices
    for i in tqdm(list(indices), desc="map agreement", unit="cell", disable=not progress):
        memo = memo_path(checkpoint, "agreement", study.key, int(i), list(kinds), patch, stride, rise_masks,
                         seed) if study.key else None
        rows.extend(kept(memo, partial(pairs, i)))
    return pd.DataFrame(rows)


def agreement_matrix(agreement: pd.DataFrame) -> pd.DataFrame:
    """The median Spearman correlation of every pair of map kinds in :func:`map_agreement`'s rows,
    as a symmetric table (1 on the diagonal)."""
    kinds = list(dict.fromkeys(agreement["first"].tolist() + agreement["second"].tolist()))
    out = pd.DataFrame(np.eye(len(kinds)), index=kinds, columns=kinds)
    for (a, b), part in agreement.groupby(["first", "second"]):
        out.loc[a, b] = out.loc[b, a] = part["rho"].median()
    return out


def passing_inside_table(checks: pd.DataFrame, table: pd.DataFrame,
                         class_names: dict[int, str] | None = None) -> pd.DataFrame:
    """The nucleus share of the map kinds that pass :func:`~alllib.attribution.sanity_table`, per class: cells, maps
    with no positive attribution (counted, not dropped: they hold no share), the mean nucleus area
    and the mean share inside with its 95 % interval over the cells that have one. Empty where no
    map passes."""
    class_names = class_names or {1: "ALL blast", 0: "not a blast"}
    rows = []
    for kind in table.index[table["reads"]]:
        part = checks[checks["map"] == kind]
        for label in sorted(part["label"].unique(), reverse=True):
            mine = part[part["label"] == label]
            shares = mine["inside"].dropna()
            mean, lo, hi = mean_interval(shares) if len(shares) >= 2 else (float(shares.mean()), np.nan, np.nan)
            rows.append({"map": kind, "class": class_names.get(int(label), str(label)), "cells": len(mine),
                         "empty maps": int(mine["empty"].sum()), "nucleus area": mine["mask area"].mean(),
                         "inside": mean, "inside 95% low": lo, "inside 95% high": hi})
    columns = ["map", "class", "cells", "empty maps", "nucleus area", "inside", "inside 95% low", "inside 95% high"]
    return pd.DataFrame(rows, columns=columns).set_index(["map", "class"])

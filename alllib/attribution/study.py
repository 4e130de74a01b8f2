"""The attribution study: every image explained by an SVM that never saw it, its maps checked before
they are read, and how alike the kinds of map rank the pixels (chapter 11, ``benchmarks/attribution_curves.py``).

:func:`attribution_study` fits an SVM per grouped outer fold and keeps each image's Grad-CAM;
:func:`sanity_checks` computes every kind of map of :data:`MAP_KINDS` on chosen cells with their
randomised and variant maps (:mod:`alllib.attribution.checks`); :func:`map_agreement` compares the
kinds image by image; :func:`inside_table` and :func:`passing_inside_table` read the nucleus share.

>>> QUICK_KINDS[0], len(MAP_KINDS)
('Grad-CAM', 7)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

from alllib.attribution.checks import cell_map_checks, map_similarity, random_smooth_map, sanity_table
from alllib.attribution.maps import (
    blurred_fill,
    conv_maps,
    finer_layer,
    grad_cam,
    grad_cam_at,
    inside_share,
    integrated_gradients,
    label_randomised_svm,
    network_mode,
    nucleus_mask,
    occlusion_map,
    permuted_svm,
    rise_map,
    svm_evidence,
    svm_feature_gradient,
    upsample,
)
from alllib.data import Dataset
from alllib.features import BACKBONES, FeatureExtractor
from alllib.learn.classifiers import fit_classifier
from alllib.learn.evaluation import Fold, Samples, cross_validate, dataset_digest
from alllib.learn.metrics import mean_interval
from alllib.learn.predict import LABEL_NAMES
from alllib.memo import digest, kept, memo_path, recipe, source_digest
from alllib.preprocessing import imagenet_preprocess, resize

__all__ = ["AttributionStudy", "NetworkViews", "attribution_study", "attribution_studies", "occlusion_check", "inside_table",
           "MAP_KINDS", "CONSISTENCY", "QUICK_KINDS", "sanity_checks", "sanity_sample", "AGREEMENT_KINDS",
           "map_agreement", "agreement_sample", "agreement_matrix", "passing_inside_table"]


@dataclass
class AttributionStudy:
    """Grad-CAM of every image, each scored by an SVM that never saw it (grouped outer folds).

    ``table``: one row per image with ``id``, ``label``, ``fold``, the SVM's decision
    ``score``, ``pred``, ``correct``, ``margin`` (signed toward the true class: the most negative
    are the largest errors), ``mask_area`` and ``cam_inside`` (the Grad-CAM share inside the
    nucleus mask). ``cams`` are the coarse maps, ``pixels`` the network's view of each image
    (after segmentation, if any; made when read, :class:`NetworkViews`), ``masks`` the nucleus
    masks, ``models`` each fold's SVM and ``features`` every image's features (a fold's SVM was
    fitted on the other folds' rows).
    """

    table: pd.DataFrame
    cams: np.ndarray = field(repr=False)
    pixels: Sequence = field(repr=False)
    masks: np.ndarray = field(repr=False)
    models: list = field(repr=False)
    extractor: FeatureExtractor = field(repr=False)
    features: np.ndarray = field(repr=False)
    description: str = ""
    key: str = ""  # what made the study (data, extractor, folds, code); "" where something has no recipe

    def summary(self) -> str:
        """One line: how the study was made, and how many of its cells the held-out SVMs got right."""
        return f"{self.description}; the SVM got {self.table['correct'].mean():.1%} of {len(self.table)} cells right"

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


class NetworkViews(Sequence):
    """Each image of ``ds`` as ``extractor``'s network sees it (segmented where it segments, resized;
    ``uint8``), made when it is asked for, not kept: the 3,600 C-NMC cells of a full run would hold
    550 MB per study. Indexing by a slice gives a list."""

    def __init__(self, ds: Dataset, extractor: FeatureExtractor):
        self.ds, self.extractor = ds, extractor

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.extractor.transform_.pixels(self.ds.image(int(i)), image_id=self.ds.ids[int(i)])


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
    masks = []
    truth = ds.mask_reader is not None  # synthetic smears know their nuclei
    for i in tqdm(range(len(ds)), desc="nucleus masks", unit="img", disable=not progress):
        masks.append(resize(ds.mask(i).astype(np.uint8), extractor.size, "nearest").astype(bool) if truth
                     else nucleus_mask(ds.image(i), extractor.size, k=mask_k, seed=seed, image_id=ids[i]))
    pixels = NetworkViews(ds, extractor)
    maps = conv_maps(extractor, pixels, prepare=partial(imagenet_preprocess, mode=network_mode(extractor)),
                     progress=progress)
    X = maps.mean(axis=(1, 2))
    cams = np.zeros(maps.shape[:3], np.float32)
    score, fold_of, models = np.zeros(len(ds)), np.zeros(len(ds), int), []

    def fit(train: Samples, test: Samples, fold: Fold) -> np.ndarray:
        model, _ = fit_classifier("svm", train.X, train.labels, groups=train.groups, search=search, seed=fold.seed)
        f, grad = svm_feature_gradient(model, test.X)
        cams[test.ids] = grad_cam(maps[test.ids], grad * np.where(f >= 0, 1.0, -1.0)[:, None])
        models.append(model)
        return f

    folds = cross_validate(Samples.of(X, y, groups), {"svm": fit}, n_splits=n_splits, seed=seed,
                           protocol="attribution study", progress=False)["svm"]
    for e in folds.evaluations:
        score[e.test_ids], fold_of[e.test_ids] = e.scores, e.fold
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


def attribution_studies(ds: Dataset, backbone: str, segmentations: dict[str, dict | None], *, n_splits: int = 5,
                        search: str = "small", seed: int = 0, mask_k: int = 3) -> dict[str, AttributionStudy]:
    """:func:`attribution_study` of ``ds`` for every setting of ``segmentations`` (its name: the
    ``segmentation`` of a :class:`~alllib.features.FeatureExtractor` of ``backbone``)."""
    return {name: attribution_study(ds, FeatureExtractor(backbone, segmentation=seg, seed=seed), n_splits=n_splits,
                                    search=search, seed=seed, mask_k=mask_k) for name, seg in segmentations.items()}


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
    class_names = class_names or LABEL_NAMES
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


def agreement_sample(study: AttributionStudy, cells: int | None, *, seed: int = 0, checkpoint=True) -> pd.DataFrame:
    """:func:`map_agreement` on ``cells`` images of ``study`` drawn at random (seeded; None: every
    image)."""
    size = len(study.table) if cells is None else min(cells, len(study.table))
    chosen = np.random.default_rng(seed + 1).choice(len(study.table), size=size, replace=False)
    return map_agreement(study, sorted(chosen.tolist()), seed=seed, checkpoint=checkpoint)


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
    class_names = class_names or LABEL_NAMES
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

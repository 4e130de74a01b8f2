"""From a whole smear to a call: every white cell found, cut as ALL-IDB2 was cut, classified, and
the slide called ALL, normal or uncertain by a rule derived from the cell model's own errors.

A model trained on ALL-IDB2's crops labels each cell a slide shows (:mod:`alllib.detection` finds
and cuts them). A healthy smear still has some cells called blasts: the model's false-positive
rate. :class:`SlideRule` takes that rate from the slide-grouped cross-validation ``train`` ran
(the pooled out-of-fold errors in the model's metadata) and asks, for a slide with ``n`` cells of
which ``k`` were called blasts, how likely ``k`` or more would be on a healthy smear at the upper
end of that rate's 95 % interval (a binomial tail). Below ``alpha`` (1 %) the slide is called
ALL; between ``alpha`` and ``grey`` (5 %), or with fewer than ``min_cells`` cells, uncertain;
otherwise normal. Seven slides cannot tune a rule; ALL-IDB2's 260 crops from 102 slides can
measure the error it rests on.

:func:`screen_files` screens slide files one at a time (an unreadable file, a single-cell crop or
a slide of an acquisition the model never saw is flagged or refused per file, never the batch
lost), :func:`screening_study` evaluates the whole chain slide-disjointly (each slide screened by
a model trained on no crop of it) and :func:`acquisition_baseline` measures how far a slide's
size alone predicts its label.

>>> rule = SlideRule(false_positives=6, negatives=130)
>>> rule.call(20, 1)[0], rule.call(20, 9)[0], rule.call(2, 0)[0]
('normal', 'ALL', 'uncertain')
"""
from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import pandas as pd
from scipy import stats
from sklearn.pipeline import Pipeline
from tqdm import tqdm

from alllib.constraints import Interval, count, validate_estimator
from alllib.data import Dataset, ImageReadError, read_image
from alllib.data.slides import acquisition
from alllib.detection import CROP_SIZE, CellsFound, cut_crops, find_cells, match_cells
from alllib.errors import AlllibError, ParameterError
from alllib.learn.evaluation import grouped_folds
from alllib.learn.metrics import binary_metrics, wilson_interval
from alllib.learn.predict import classify_features

__all__ = ["ScreenError", "SlideRule", "SlideScreen", "screen_image", "screen_files", "overlay", "MATCH_RADIUS",
           "ScreeningStudy", "screening_study", "marked_points", "crop_centres", "acquisition_baseline"]

#: A marked blast is found where a cell lies within a third of a crop's width of its centroid.
MATCH_RADIUS = CROP_SIZE / 3
#: A file whose shorter side is below this is a crop of one cell, not a slide.
MIN_SLIDE_SIDE = 2 * CROP_SIZE


class ScreenError(AlllibError, ValueError):
    """A model that cannot screen slides (trained on segmented single cells, or without the error
    counts its slide rule needs)."""


@dataclass(frozen=True)
class SlideRule:
    """The slide call from the count of cells called blasts (see the module's docstring).

    ``false_positives`` of ``negatives`` normal cells were called blasts in the cell model's
    slide-grouped cross-validation; ``alpha`` and ``grey`` are the tail probabilities below which a
    slide is called ALL and above which it is called normal; fewer than ``min_cells`` cells give
    no call."""

    false_positives: int
    negatives: int
    alpha: float = 0.01
    grey: float = 0.05
    min_cells: int = 3

    _parameter_constraints = {"false_positives": [count(0)], "negatives": [count()],
                              "alpha": [Interval(numbers.Real, 0, 1, "neither")],
                              "grey": [Interval(numbers.Real, 0, 1, "neither")], "min_cells": [count()]}

    def __post_init__(self):
        self.check_params()

    def check_params(self) -> "SlideRule":
        """Raise :class:`~alllib.errors.ParameterError` naming the first parameter not allowed,
        or two of them that disagree."""
        validate_estimator(self)
        if not self.false_positives <= self.negatives:
            raise ParameterError(f"SlideRule: false_positives must be at most negatives, not {self.false_positives} of "
                                 f"{self.negatives}")
        if not self.alpha <= self.grey:
            raise ParameterError(f"SlideRule: alpha must be at most grey, not alpha={self.alpha}, grey={self.grey}")
        return self

    @classmethod
    def from_metadata(cls, metadata: dict, **kwargs) -> "SlideRule":
        """The rule of a model file: its grouped cross-validation's pooled errors on normal cells."""
        errors = (metadata.get("grouped_cv") or {}).get("errors")
        if not errors:
            raise ScreenError("the model file holds no cross-validated error counts (made before alllib could screen "
                              "slides, or trained on too few groups to cross-validate): train it again")
        return cls(int(errors["false_positives"]), int(errors["negatives"]), **kwargs)

    @property
    def rate(self) -> float:
        """The upper end of the 95 % Wilson interval of the cell false-positive rate."""
        return wilson_interval(self.false_positives, self.negatives)[1]

    def call(self, cells: int, blasts: int) -> tuple[str, float]:
        """``(call, p)``: ``p`` is the chance of ``blasts`` or more among ``cells`` on a healthy smear."""
        if cells < self.min_cells:
            return "uncertain", float("nan")
        p = float(stats.binom.sf(blasts - 1, cells, self.rate))
        return ("ALL" if p < self.alpha else "uncertain" if p < self.grey else "normal"), p

    def describe(self) -> str:
        """The rule in one sentence, with the numbers it rests on."""
        return (f"{self.false_positives} of {self.negatives} normal cells were called blasts in slide-grouped "
                f"cross-validation (95 % upper bound {100 * self.rate:.1f} %); a slide is called ALL where so many cells "
                f"called blasts would happen on a healthy smear with probability below {self.alpha:g}, normal where "
                f"above {self.grey:g}, and uncertain in between or with fewer than {self.min_cells} cells")


@dataclass
class SlideScreen:
    """One slide screened: ``cells`` (one row per cell: ``x, y, at_border, label, probability_blast``),
    the summary (``cells``, ``blasts``, ``blast_share`` and its Wilson interval ``share_low``,
    ``share_high``, the tail probability ``p`` and the ``call``), what :func:`find_cells` found,
    and ``status`` / ``message`` as ``predict`` gives them."""

    slide: str
    cells: pd.DataFrame
    summary: dict
    found: CellsFound | None = field(default=None, repr=False)
    status: str = "ok"
    message: str = ""


def _check_model(metadata: dict) -> None:
    data = (metadata.get("training_data") or {}).get("dataset")
    if data == "cnmc":
        raise ScreenError("the model was trained on C-NMC's segmented single cells on black; screening cuts cells "
                          "with their surroundings as ALL-IDB2 was cut: train with --dataset all_idb2")


def _features(pipeline: Pipeline, crops: list[np.ndarray]) -> np.ndarray:
    extractor = pipeline.named_steps["features"]
    with warnings.catch_warnings():  # a crop whose nucleus the paper's segmentation misses keeps its pixels
        warnings.simplefilter("ignore")
        return extractor.transform(crops) if crops else np.zeros((0, 0))


def _summary(cells: pd.DataFrame, rule: SlideRule | None) -> dict:
    n, k = len(cells), int(cells["label"].sum()) if len(cells) else 0
    low, high = wilson_interval(k, n) if n else (float("nan"), float("nan"))
    call, p = rule.call(n, k) if rule is not None else ("uncertain", float("nan"))
    return {"cells": n, "blasts": k, "blast_share": k / n if n else float("nan"), "share_low": low,
            "share_high": high, "p": p, "call": call}


def screen_image(pipeline: Pipeline, image: np.ndarray, *, metadata: dict, rule: SlideRule | None = None,
                 slide: str = "", seed: int = 0) -> SlideScreen:
    """Screen one slide image with a model (``pipeline`` and its ``metadata``): every white cell
    found, cut, labelled at the model's threshold, and the slide called by ``rule`` (by default the
    model's own, :meth:`SlideRule.from_metadata`)."""
    _check_model(metadata)
    rule = SlideRule.from_metadata(metadata) if rule is None else rule
    found = find_cells(image, seed=seed)
    feats = _features(pipeline, cut_crops(image, found.cells[["x", "y"]].to_numpy()))
    cells = _classify_cells(pipeline, metadata, feats, found.cells)
    cells.insert(0, "slide", slide)
    screen = SlideScreen(slide, cells, _summary(cells, rule), found)
    if found.note:
        screen.status, screen.message = "warning", f"{slide}: {found.note}"
    elif not len(cells):
        screen.status, screen.message = "warning", f"{slide}: no white cell found"
    return screen


def screen_files(pipeline: Pipeline, paths: list, *, metadata: dict, rule: SlideRule | None = None,
                 progress: bool = False, each=None) -> list[SlideScreen]:
    """Screen slide files one by one (one in memory at a time). A file that cannot be read, or whose
    shorter side is under two crops (a single-cell crop: ``predict`` labels those), gets an
    ``error`` row; a slide of a size no training crop came from (another acquisition) or with no
    cell found a ``warning``; the others ``ok``. One row per input, in order. ``each(screen,
    image)``, where given, is called for every slide screened while its image is in memory (to
    draw its :func:`overlay`, say)."""
    _check_model(metadata)
    rule = SlideRule.from_metadata(metadata) if rule is None else rule
    seen = set((metadata.get("training_data") or {}).get("acquisitions") or [])
    out = []
    for path in tqdm(paths, desc="screening slides", unit="slide", disable=not progress):
        name = str(path)
        try:
            image = read_image(path)
        except ImageReadError as err:
            out.append(SlideScreen(name, pd.DataFrame(), {}, status="error", message=str(err)))
            continue
        h, w = image.shape[:2]
        if min(h, w) < MIN_SLIDE_SIDE:
            out.append(SlideScreen(name, pd.DataFrame(), {}, status="error",
                                   message=f"{name}: {w}x{h} pixels, a crop of one cell rather than a slide (a slide "
                                           f"is at least {MIN_SLIDE_SIDE} pixels on each side); label crops with "
                                           "predict"))
            continue
        screen = screen_image(pipeline, image, metadata=metadata, rule=rule, slide=name)
        size = acquisition(w, h)
        if seen and size not in seen and screen.status == "ok":
            screen.status = "warning"
            screen.message = (f"{name}: a {size} slide; the model's training crops came from {', '.join(sorted(seen))} "
                              "slides only, so its cells may look unlike any it was trained on")
        if each is not None:
            each(screen, image)
        out.append(screen)
        del image
    return out


def overlay(image: np.ndarray, cells: pd.DataFrame, diameter: float) -> np.ndarray:
    """``image`` with every cell of ``cells`` circled: orange where called a blast, blue otherwise
    (colours told apart by people with the commoner colour-vision deficiencies)."""
    out = image.copy()
    radius = max(4, int(0.6 * diameter))
    width = max(2, int(round(min(image.shape[:2]) / 300)))
    for x, y, label in cells[["x", "y", "label"]].itertuples(index=False):
        colour = (230, 120, 0) if label == 1 else (0, 90, 230)
        cv2.circle(out, (int(round(x)), int(round(y))), radius, colour, width, lineType=cv2.LINE_AA)
    return out


@dataclass
class ScreeningStudy:
    """What :func:`screening_study` measured: ``slides`` (one row per slide: its label, acquisition,
    fold, cells, blasts, share, call, whether the call is right, of its marked blasts how many
    were found and how many found and called blasts, and of the crops cut from it, ALL-IDB2's, how
    many were found, and its typical nucleus ``diameter``), ``cells`` (every cell, with its slide and
    whether it lies near a marked blast), the ``rules`` each fold's model gave, the matching
    ``radius`` and the slides' ``source`` (their dataset's name: ``all_idb1`` or ``synthetic_slides``)."""

    slides: pd.DataFrame
    cells: pd.DataFrame
    rules: list[SlideRule]
    radius: float
    source: str = ""

    def detection(self) -> dict:
        """Of the marked blasts: how many, found at all, found and called blasts (shares); of the
        white cells ALL-IDB2's crops were cut around (blasts and others): how many, found at all;
        and cells found per slide; byte-identical slides counted once."""
        t = self.slides.drop_duplicates("group")  # a byte-identical slide counted once
        marked, crops = int(t["marked"].sum()), int(t["crops"].sum())
        found, called = int(t["found"].sum()), int(t["found_called"].sum())
        return {"marked": marked, "found": found / marked if marked else float("nan"),
                "crops": crops, "crops_found": int(t["crops_found"].sum()) / crops if crops else float("nan"),
                "found_called": called / marked if marked else float("nan"),
                "cells_per_slide": float(t["cells"].mean()),
                "radius_px": self.radius,
                "radius_diameters": self.radius / float(self.slides["diameter"].median())}

    def view(self, slides: Dataset, slide: str, seed: int = 0) -> dict:
        """What a figure of one screened slide needs: its ``image``, the cells ``found`` again (the
        study keeps no pixels), its ``cells`` as called, its ``marked`` blasts and a ``title``."""
        i = int(np.flatnonzero(slides.table["id"].to_numpy() == slide)[0])
        row, image = slides.table.iloc[i], slides.image(i)
        title = f"{slide}: {'an ALL patient' if row['label'] else 'a healthy person'}, {row['acquisition']} pixels"
        return {"image": image, "found": find_cells(image, seed=seed), "cells": self.cells[self.cells["slide"] == slide],
                "marked": marked_points(row), "title": title}

    def calls(self, same_acquisition: str | None = None) -> dict:
        """Slide-level results, counting byte-identical slides once: slides, right, uncertain,
        wrong, and the balanced accuracy of the calls (an uncertain call counts as wrong); with
        ``same_acquisition``, the slides of that size only."""
        t = self.slides.drop_duplicates("group")
        if same_acquisition is not None:
            t = t[t["acquisition"] == same_acquisition]
        pred = np.where(t["call"] == "ALL", 1, np.where(t["call"] == "normal", 0, -1))
        y = t["label"].to_numpy(int)
        recall = [np.mean(pred[y == c] == c) for c in (0, 1) if (y == c).any()]
        return {"slides": len(t), "right": int(t["right"].sum()), "uncertain": int((t["call"] == "uncertain").sum()),
                "wrong": int(((pred >= 0) & (pred != y)).sum()),
                "balanced_accuracy": float(np.mean(recall)) if len(recall) == 2 else float("nan")}


def marked_points(row: pd.Series) -> np.ndarray:
    """A slide row's marked blasts, ``(n, 2)`` ``(x, y)``: a synthetic slide's ``marked_points``, else
    the points of its ``.xyc`` file (none where it has no file)."""
    from alllib.data.all_idb1 import marked_blasts

    if isinstance(row.get("marked_points"), np.ndarray):
        return row["marked_points"]
    return marked_blasts(row["xyc"]) if row.get("xyc") else np.zeros((0, 2))


def crop_centres(crops: pd.DataFrame) -> np.ndarray:
    """Where the cells of ALL-IDB2-style crops lie on their slide (``(n, 2)`` ``x, y``), from each
    crop's top-left corner ``x, y`` and its ``width, height``: the centre of the 257-pixel window,
    which a crop cut short at the slide's left or top edge lost part of.

    >>> crop_centres(pd.DataFrame({"x": [100, 0], "y": [50, 0], "width": [257, 200], "height": [257, 257]}))
    array([[228., 178.],
           [ 71., 128.]])
    """
    half = CROP_SIZE // 2
    out = []
    for axis, side in (("x", "width"), ("y", "height")):
        start, size = crops[axis].to_numpy(float), crops[side].to_numpy(float)
        out.append(np.where((start == 0) & (size < CROP_SIZE), size - CROP_SIZE + half, start + half))
    return np.column_stack(out)


def _slide_names(crops: Dataset) -> pd.Series:
    return crops.table["slide"].astype(str).str.replace(r"\.\w+$", "", regex=True)


def _exclusion(crops: Dataset, slides: pd.DataFrame) -> np.ndarray:
    """Which crops come from any of ``slides`` (or a byte-identical twin): those a model screening
    them must not train on."""
    if "slide" not in crops.table:
        return np.zeros(len(crops), bool)
    return _slide_names(crops).isin(set(slides["id"]) | set(slides["group"])).to_numpy()


def screening_study(slides: Dataset, crops: Dataset, *, n_splits: int = 5, seed: int = 0,
                    radius: float = MATCH_RADIUS, progress: bool = True, **train) -> ScreeningStudy:
    """Screen every slide of ``slides`` slide-disjointly: the slides are split into folds by
    ``group`` (byte-identical slides together, :func:`~alllib.learn.evaluation.grouped_folds`), and
    each fold's slides are screened by a model :func:`~alllib.learn.training.train_image_classifier`
    trained (with ``train``'s arguments; the segmentation ``train`` uses for the crops' dataset unless
    told otherwise) on the ``crops`` of every other slide, with its own
    :class:`SlideRule`. Each slide's cells are found and featurised once. A marked blast (the
    slides' ``.xyc`` points, or a synthetic slide's ``marked`` list) is found where a cell lies
    within ``radius`` pixels."""
    from alllib.learn.training import train_defaults, train_image_classifier

    if "segmentation" not in train:  # as ``train`` segments this dataset by default
        method = train_defaults(crops.name)["segmentation"]
        train["segmentation"] = None if method == "none" else {"method": method, "k": 3}

    table = slides.table.reset_index(drop=True)
    folds = grouped_folds(table["label"].to_numpy(int), table["group"].to_numpy(), n_splits=n_splits, seed=seed)
    models, trained = [], {}
    for fold in tqdm(folds, desc="cell models, one per fold of slides", unit="model", disable=not progress):
        keep = np.flatnonzero(~_exclusion(crops, table.iloc[fold.test]))
        if keep.tobytes() not in trained:  # folds whose slides gave no crop share one model
            trained[keep.tobytes()] = train_image_classifier(crops.subset(keep), seed=seed, progress=False, **train)
        models.append(trained[keep.tobytes()])
    extractor_pipe = models[0][0]
    found, feats = {}, {}
    for i in tqdm(range(len(table)), desc="finding and featurising cells", unit="slide", disable=not progress):
        image = slides.image(i)
        f = find_cells(image, seed=seed)
        # each slide's pixel labels are dropped once its cells are known: memory stays bounded for any number of slides
        found[i] = replace(f, regions=np.zeros((0, 0), np.int32))
        feats[i] = _features(extractor_pipe, cut_crops(image, f.cells[["x", "y"]].to_numpy()))
    rows, cells, rules = [], [], []
    for fold, (pipe, meta) in zip(folds, models):
        rules.append(SlideRule.from_metadata(meta))
        for i in fold.test:
            row, c = _scored_slide(table, i, found[i], _classify_cells(pipe, meta, feats[i], found[i].cells), crops,
                                   rules[-1], radius)
            rows.append({**row, "fold": fold.index})
            cells.append(c)
    out = pd.DataFrame(rows).sort_values("slide").reset_index(drop=True)
    return ScreeningStudy(out, pd.concat(cells, ignore_index=True), rules, float(radius), slides.name)


def _classify_cells(pipe: Pipeline, meta: dict, feats: np.ndarray, found: pd.DataFrame) -> pd.DataFrame:
    """The cells found on a slide, labelled by a model at its threshold."""
    c = found[["x", "y", "at_border"]].copy()
    threshold = (meta.get("threshold") or {}).get("probability")
    labels, proba = classify_features(pipe, feats, threshold) if len(c) else (np.zeros(0, int), np.zeros(0))
    c["label"], c["probability_blast"] = labels.astype(int), proba
    return c


def _scored_slide(table: pd.DataFrame, i: int, found: CellsFound, c: pd.DataFrame, crops: Dataset, rule: SlideRule,
                  radius: float) -> tuple[dict, pd.DataFrame]:
    """Slide ``i``'s row of the study (its call, and its marked blasts and ALL-IDB2 crops found) and
    its cells, marked where they lie near a marked blast."""
    row = table.iloc[i]
    points = marked_points(row)
    hit = match_cells(c[["x", "y"]].to_numpy(), points, radius)
    c["near_marked"] = np.isin(np.arange(len(c)), hit[hit >= 0])
    c.insert(0, "slide", row["id"])
    twins = set(table.loc[table["group"] == row["group"], "id"])
    placed = {"slide", "x", "y", "width", "height"} <= set(crops.table.columns)  # where each crop lies on its slide
    own = crops.table[_slide_names(crops).isin(twins).to_numpy()] if placed else crops.table[:0]
    crops_hit = match_cells(c[["x", "y"]].to_numpy(), crop_centres(own), radius) if len(own) else np.zeros(0)
    s = _summary(c, rule)
    return {"slide": row["id"], "group": row["group"], "label": int(row["label"]), "acquisition": row["acquisition"],
            **s, "right": s["call"] == {1: "ALL", 0: "normal"}[int(row["label"])], "marked": len(points),
            "found": int((hit >= 0).sum()), "found_called": int(sum(c["label"].iloc[j] == 1 for j in hit if j >= 0)),
            "crops": len(own), "crops_found": int((crops_hit >= 0).sum()), "diameter": found.diameter}, c


def acquisition_baseline(table: pd.DataFrame, *, n_splits: int = 5, seed: int = 0) -> dict:
    """How well a slide's acquisition (its size) alone predicts its label: each held-out slide
    (folds by ``group``, as :func:`screening_study` splits) gets the majority label of the training
    slides of its size (the overall majority for a size they lack). Returns the balanced accuracy,
    the slides and, per size, the slides and ALL share."""
    t = table.drop_duplicates("group").reset_index(drop=True)
    y = t["label"].to_numpy(int)
    pred = np.full(len(t), -1)
    for fold in grouped_folds(y, t["group"].to_numpy(), n_splits=n_splits, seed=seed):
        train = t.iloc[fold.train]
        overall = int(train["label"].mean() >= 0.5)
        by_size = train.groupby("acquisition")["label"].mean()
        for i in fold.test:
            share = by_size.get(t.at[i, "acquisition"])
            pred[i] = overall if share is None or share == 0.5 else int(share > 0.5)
    per_size = t.groupby("acquisition")["label"].agg(slides="size", all_share="mean")
    return {"balanced_accuracy": binary_metrics(y, pred)["balanced_accuracy"], "slides": len(t),
            "per_size": per_size}

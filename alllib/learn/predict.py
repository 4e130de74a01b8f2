"""Labelling image files with a trained model, and one call per person.

:func:`predict_files` labels each file on its own (an unreadable one gets an ``error`` row, one
unlike the training images a ``warning``: :mod:`alllib.learn.familiarity`), at the model's saved
threshold, with the neighbourhood correction within each person where the model asks for it;
:func:`subject_calls` turns the rows into one call per person; :func:`describe_model` says what a
model file is and what it is worth for a new patient (``predict --about``).

>>> LABEL_NAMES[1]
'ALL blast'
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from alllib.data import ImageReadError, cnmc_subject, read_image
from alllib.learn.familiarity import feature_distance, fitted_scaler, unfamiliar, visible_cell_problem
from alllib.learn.neighbours import neighbourhood_correction
from alllib.learn.training import REPORTED
from alllib.segmentation import MIN_SIZE, EmptyMaskWarning

__all__ = ["predict_images", "classify_features", "predict_files", "Prediction", "LABEL_NAMES", "subject_calls",
           "describe_model"]


def predict_images(pipeline: Pipeline, images: list[np.ndarray], threshold: float | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Labels and blast probabilities of RGB ``uint8`` images; with ``threshold`` (a model's
    ``metadata["threshold"]["probability"]``) the label is 1 where the probability reaches it."""
    return classify_features(pipeline, pipeline.named_steps["features"].transform(images), threshold)


def classify_features(pipeline: Pipeline, feats: np.ndarray, threshold: float | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Labels and blast probabilities of features already extracted by ``pipeline``'s extractor
    (what :func:`predict_images` does after extracting them); ``threshold`` as there."""
    clf = pipeline.named_steps["classifier"]
    labels = clf.predict(feats)
    proba = clf.predict_proba(feats)[:, 1] if hasattr(clf, "predict_proba") else np.full(len(labels), np.nan)
    if threshold is not None and not np.isnan(proba).any():
        labels = (proba >= threshold).astype(int)
    return labels.astype(int), proba


@dataclass
class Prediction:
    """What :func:`predict_files` says about one input file. ``status`` is ``ok``, ``warning``
    (labelled, but the image shows no cell the method can read: see ``message``) or ``error``
    (not labelled: ``message`` says why)."""

    image: str
    status: str = "ok"
    message: str = ""
    label: int | None = None
    probability: float = float("nan")
    subject: str | None = None  # the person the cell belongs to, where known
    corrected: bool = False  # the neighbourhood correction, within its person, moved its probability

    @property
    def label_name(self) -> str:
        return "" if self.label is None else LABEL_NAMES[self.label]


LABEL_NAMES = {1: "ALL blast", 0: "not a blast"}


def predict_files(pipeline: Pipeline, paths: list, *, chunk: int = 64, metadata: dict | None = None,
                  neighbours: int | None = None, subjects: dict[str, str] | None = None) -> list[Prediction]:
    """Label image files one by one, at the model's saved threshold (``metadata``): a file that
    cannot be read or is too small gets an
    ``error`` row and the others are still labelled; an image with no visible cell (uniform,
    grayscale, or where segmentation keeps no nucleus), or one unlike the training images
    (:func:`~alllib.learn.familiarity.unfamiliar`, with the model's ``metadata``), gets a ``warning`` row naming the file
    and the reason. One row per input, in order. Files are prepared in chunks of ``chunk``.

    Parameters
    ----------
    pipeline : Pipeline
        From :func:`~alllib.learn.modelfile.load_model` or :func:`~alllib.learn.training.train_image_classifier`.
    paths : list
        Image files.
    chunk : int
        Files prepared at a time.
    metadata : dict, optional
        The model's metadata (its threshold and training statistics).
    neighbours : int, optional
        With ``k > 0``, each file's probability is mixed half and half with those of its ``k``
        most similar files of the same person in this batch
        (:func:`~alllib.learn.neighbours.neighbourhood_correction`, Pan et al. 2019), before the
        threshold. A file whose person is unknown is left as it is (its ``corrected`` is False):
        the correction was measured within a person, and across people it would pull a healthy
        donor's cells toward a patient's. ``None``: the model's own setting
        (``metadata["neighbours"]``, 0 where absent).
    subjects : dict, optional
        Each file's person (as given); by default read from C-NMC file names
        (:func:`~alllib.data.cnmc_subject`).

    Returns
    -------
    list of Prediction
        One row per file, in order: label, probability, or the error or warning.
    """
    extractor = pipeline.named_steps["features"]
    neighbours = int((metadata or {}).get("neighbours") or 0) if neighbours is None else neighbours
    stats = (metadata or {}).get("training_statistics")
    threshold = ((metadata or {}).get("threshold") or {}).get("probability")
    rows = [Prediction(str(p)) for p in paths]
    labelled, features = [], []  # for the neighbourhood correction, once the whole batch is in
    for start in range(0, len(rows), chunk):
        ready = []
        for row in rows[start:start + chunk]:
            try:
                img = read_image(row.image)
                if min(img.shape[:2]) < MIN_SIZE:
                    raise ImageReadError(f"{row.image}: {img.shape[1]}x{img.shape[0]} pixels, too small to hold a "
                                         f"cell (at least {MIN_SIZE}x{MIN_SIZE})")
                problems = [p for p in [visible_cell_problem(img)] if p] or unfamiliar(stats, img)  # one reason is enough
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    x = extractor.network_input(img, image_id=row.image)
                for w in caught:
                    if issubclass(w.category, EmptyMaskWarning):
                        problems.append(str(w.message))
                    else:
                        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            except (ImageReadError, ValueError, TypeError, cv2.error) as err:
                text = str(err)
                row.status, row.message = "error", text if row.image in text else f"{row.image}: {text}"
                continue
            ready.append((row, x, problems))
        if ready:
            feats = extractor.embed([x for _, x, _ in ready])
            labels, proba = classify_features(pipeline, feats, threshold)
            far = (feature_distance(fitted_scaler(pipeline.named_steps["classifier"]), feats) if stats
                   else [None] * len(ready))
            for (row, _, problems), label, p, d in zip(ready, labels, proba, far):
                row.label, row.probability = int(label), float(p)
                problems = problems + unfamiliar(stats, distance=d)
                if problems:
                    row.status, row.message = "warning", f"{row.image}: " + "; ".join(problems)
            if neighbours:
                labelled += [row for row, _, _ in ready]
                features.append(feats)
    for row in rows:
        row.subject = subjects.get(row.image) if subjects is not None else cnmc_subject(row.image)
    if neighbours and labelled:
        people = np.array([r.subject or "" for r in labelled], dtype=object)
        names, counts = np.unique(people, return_counts=True)
        known = (people != "") & np.isin(people, names[counts > 1])  # a person with one cell has no neighbour
        feats = np.concatenate(features)[known]
        mine = [r for r, k in zip(labelled, known) if k]
        proba = neighbourhood_correction(feats, np.array([r.probability for r in mine]), k=neighbours, weight=0.5,
                                         groups=people[known]) if mine else []
        for row, p in zip(mine, proba):
            row.probability, row.label, row.corrected = float(p), int(p >= (0.5 if threshold is None else threshold)), True
    return rows


_UNITS = {"cnmc": "subject", "all_idb2": "slide"}


def subject_calls(rows: list["Prediction"], subjects: dict[str, str] | None = None) -> pd.DataFrame:
    """One call per person from their cells' labels: for each subject (``subjects`` maps an image
    to its subject; by default each row's own ``subject``, which :func:`predict_files` reads from
    C-NMC file names), the cells labelled, how many were called blasts, that share with its 95 %
    Wilson interval, the mean probability of a blast, and the call (:func:`~alllib.learn.metrics.person_call`):
    ``ALL`` where the whole interval lies above one half, ``normal`` where it lies below,
    ``uncertain`` otherwise. Cells that could not be labelled, or whose subject is unknown, are
    left out (their count is in ``table.attrs["unassigned"]``)."""
    from alllib.learn.metrics import person_call, wilson_interval

    found = [((r.subject or cnmc_subject(r.image)) if subjects is None else subjects.get(r.image), r) for r in rows]
    labelled = [(s, r) for s, r in found if s is not None and r.label is not None]
    out = []
    for subject in sorted({s for s, _ in labelled}):
        mine = [r for s, r in labelled if s == subject]
        blasts = sum(r.label == 1 for r in mine)
        low, high = wilson_interval(blasts, len(mine))
        out.append({"subject": subject, "cells": len(mine), "blast cells": blasts, "share blast": blasts / len(mine),
                    "share 95% low": low, "share 95% high": high,
                    "mean p(blast)": float(np.mean([r.probability for r in mine])),
                    "call": person_call(blasts, len(mine))})
    table = pd.DataFrame(out, columns=["subject", "cells", "blast cells", "share blast", "share 95% low",
                                       "share 95% high", "mean p(blast)", "call"]).set_index("subject")
    table.attrs["unassigned"] = len(rows) - len(labelled)
    return table


def describe_model(meta: dict) -> str:
    """What a model file says about itself, in a few lines: what it is, what it was trained on,
    what grouped cross-validation found for a new patient (:func:`~alllib.learn.training.grouped_report`), each group's
    result for the class with the fewest groups, and the threshold ``predict`` applies."""
    data = meta.get("training_data") or {}
    unit = _UNITS.get(data.get("dataset"), "group")
    lines = [f"{meta.get('classifier')} on {meta.get('backbone_label')} features ({meta.get('weights')} weights), "
             f"trained on {data.get('originals')} {data.get('dataset')} images in {data.get('groups')} {unit}s"]
    cv = meta.get("grouped_cv") or {}
    if cv.get("folds"):
        rule = ("the threshold chosen inside each training side, for balanced accuracy"
                if cv.get("threshold_rule") == "balanced" else "the classifier's own threshold")
        m = cv["metrics"]
        figures = ", ".join(f"{name.replace('_', ' ')} {100 * m[name]['mean']:.1f} % (+/- {100 * m[name]['std']:.1f})"
                            for name in REPORTED if name in m and m[name]["mean"] == m[name]["mean"])
        lines.append(f"for a new {unit} (grouped cross-validation, {cv['folds']} folds by {unit}, {cv['scored']} "
                     f"original images scored, {rule}): {figures}")
        groups = cv.get("per_group") or {}
        what = {0: "specificity", 1: "sensitivity"}.get(cv.get("smaller_class"), "share right")
        if groups and len(groups) <= 12:
            lines.append(f"{what} of each {unit} of class {cv.get('smaller_class')}: " + ", ".join(
                f"{g} {100 * r['correct']:.1f} % ({r['images']} images)" for g, r in groups.items()))
        elif groups:
            shares = np.array([r["correct"] for r in groups.values()])
            lines.append(f"{what} per {unit} of class {cv.get('smaller_class')} ({len(shares)} {unit}s): lowest "
                         f"{100 * shares.min():.1f} %, median {100 * np.median(shares):.1f} %")
        if cv.get("people"):
            lines.append(f"one call per {unit} while held out: {_calls(cv['people'])}")
        lines.append(f"({cv.get('note')})")
        for r in (cv.get("cohorts") or {}).get("per_cohort", []):
            lines.append(f"across cohorts, trained on {r['trained on']}, scored on {r['scored on']}: "
                         + ", ".join(f"{name.replace('_', ' ')} {100 * r[name]:.1f} %" for name in REPORTED[:4]
                                     if r[name] == r[name])
                         + (f"; one call per {unit}: {_calls(r['people'])}" if r.get("people") else ""))
    elif cv:
        lines.append(f"not cross-validated: {cv.get('note')}")
    if meta.get("neighbours"):
        lines.append(f"predict corrects each cell by its {meta['neighbours']} most similar cells of the batch "
                     "(neighbourhood correction, Pan et al. 2019; the figures above include it; --neighbours 0 "
                     "turns it off)")
    if meta.get("defaults"):
        lines.append(f"settings: the default for {data.get('dataset')} ({meta['defaults']})")
    cut = meta.get("threshold") or {}
    if cut.get("probability") is not None:
        lines.append(f"decision threshold: a blast where p(blast) >= {cut['probability']:.3f} (chosen for balanced "
                     "accuracy on the grouped cross-validated decisions)")
    elif cut:
        lines.append("decision threshold: the classifier's own (p(blast) >= 0.5)")
    return "\n".join(lines)


def _calls(people: dict) -> str:
    """A count of one call per person (``grouped_report``'s ``people``) in words."""
    parts = []
    for word, c in people.items():
        if c["people"]:
            few = c["with 3 cells or fewer"]
            parts.append(f"{word} {c['called right']} of {c['people']} right ({c['uncertain']} uncertain, "
                         f"{c['called wrong']} wrong" + (f", {few} with 3 cells or fewer)" if few else ")"))
    return "; ".join(parts)

"""The chapters' studies: several protocols or settings run together and tabled, as a chapter shows them
(the study of attribution maps is :mod:`alllib.attribution.study`).

* :func:`protocol_study`: the paper's and the honest protocol, with and without augmentation, and
  the subject probe (chapter 10);
* :func:`layers_study`: ALL-IDB2's layers of structure (duplicates, slides, acquisition) for one setting (chapter 9);
* :func:`screening_inputs`: the slides a screening chapter screens and the crops its cell models learn
  from (chapter 14; the study itself is :func:`alllib.learn.screening.screening_study`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from alllib.augmentation import Augmenter
from alllib.book.prose import Box
from alllib.book.reported import results_frame
from alllib.data import Dataset
from alllib.learn.classifiers import CLASSIFIERS
from alllib.learn.evaluation import ProtocolResult
from alllib.learn.protocols import Featurize, confound_probe, honest_protocol, paper_protocol, subject_probe
from alllib.memo import recipe

__all__ = ["compare_protocols", "Study", "protocol_study", "layers_table", "layers_study", "screening_inputs"]

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

    def frame(self, backbone: str) -> pd.DataFrame:
        """Every run as :func:`~alllib.book.reported.results_frame` rows (percent), ``condition`` saying
        which: ``test`` (both protocols, augmented: Table VI), ``train`` (the paper protocol's training
        metrics: Table III), ``aug`` and ``noaug`` (both protocols with and without augmentation:
        Table VIII)."""
        runs = ((self.paper, "test"), (self.honest, "test"), (self.paper, "train"), (self.paper, "aug"),
                (self.paper_noaug, "noaug"), (self.honest, "aug"), (self.honest_noaug, "noaug"))
        return pd.concat([results_frame(r, dataset=self.ds.name, backbone=backbone, condition=c) for r, c in runs],
                         ignore_index=True)


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


def screening_inputs(ch, n_slides: int | None) -> tuple[Dataset, Dataset, list]:
    """``(slides, crops, shown)`` for chapter 14: ALL-IDB1's slides and the chapter's ALL-IDB2 crops
    where both are in the data folder, else synthetic slides (``n_slides`` of them, 12 where it is
    None) and synthetic crops. At most ``n_slides`` slides, as many of each label as there are, drawn
    with the chapter's seed, byte-identical slides kept together. ``shown`` holds what the page
    says first: a box where ALL-IDB1 is missing, and what the full profile adds where slides were
    left out, each ready for ``display``."""
    from IPython.display import Markdown

    from alllib.data import DatasetError, make_synthetic
    from alllib.data.all_idb1 import load_all_idb1
    from alllib.data.synthetic import make_synthetic_slides

    shown = []
    slides = None
    if ch.real:
        try:
            slides, crops = load_all_idb1(ch.data_dir), ch.ds
        except DatasetError as err:
            shown.append(Box(f"ALL-IDB2 is here but ALL-IDB1's slides are not ({err}); this chapter screens synthetic "
                             "slides with a model trained on synthetic crops instead.", "warning", title="No slides"))
    if slides is None:
        slides = make_synthetic_slides(n_slides or 12, seed=ch.seed)
        crops = ch.ds if not ch.real else make_synthetic(160, seed=ch.seed)
    available = slides.table["group"].nunique()
    if n_slides is not None and available > n_slides:
        groups = slides.table.drop_duplicates("group")
        rng = np.random.default_rng(ch.seed)
        chosen = [g for label, part in groups.groupby("label")
                  for g in rng.permutation(part["group"].to_numpy())[:max(1, n_slides // 2)]]
        slides = slides.subset(np.flatnonzero(slides.table["group"].isin(chosen)))
        shown.append(Markdown(ch.left_out(f"{available - len(chosen)} of the {available} distinct slides in the data "
                                          "folder")))
    return slides, crops, shown

"""Sentences about protocols: how much splitting by image inflates, what the probes find, how the
folds were made, what carries across datasets.

>>> import pandas as pd
>>> t = pd.DataFrame({"paper protocol accuracy": [0.95], "honest accuracy": [0.80], "honest 95% low": [0.7],
...                   "honest 95% high": [0.9], "inflation (points)": [15.0]}, index=pd.Index(["svm"], name="classifier"))
>>> print(inflation_sentences(t, "accuracy"))  # doctest: +NORMALIZE_WHITESPACE
For the SVM, splitting by image scores 95.0 % against 80.0 % when whole subjects are held out (+15.0 points,
above the honest 95 % interval 70.0-90.0 %).
"""
from __future__ import annotations

import pandas as pd

from alllib.book.prose.display import CLASSIFIER_NAMES, percent

__all__ = ["inflation_sentences", "probe_sentences", "folds_sentence", "takeaway_sentences", "layers_sentences",
           "acquisition_probe_sentences", "probe_change_sentences", "cross_dataset_sentences", "cells_sentence",
           "hardest_groups_sentence", "growth_sentence", "leak_sentences"]


def inflation_sentences(table: pd.DataFrame, metric: str = "accuracy", *, held_out: str = "whole subjects are held out",
                        paper_split: str = "splitting by image") -> str:
    """One sentence per classifier of a :func:`alllib.book.studies.compare_protocols` table: the
    paper-protocol value against the honest one, the difference, and where the paper-protocol
    value lies relative to the honest interval."""
    out = []
    for name, r in table.iterrows():
        p, h = r[f"paper protocol {metric}"], r[f"honest {metric}"]
        lo, hi = r["honest 95% low"], r["honest 95% high"]
        who = CLASSIFIER_NAMES.get(name, name)
        if pd.isna(h):
            out.append(f"For {who}, only the paper protocol ran ({percent(p)}).")
            continue
        gap = 100 * (p - h)
        if lo <= p <= hi:
            where = f"inside the honest 95 % interval {100 * lo:.1f}-{100 * hi:.1f} %: no measurable inflation"
        elif p > hi:
            where = f"above the honest 95 % interval {100 * lo:.1f}-{100 * hi:.1f} %"
        else:
            where = f"below the honest 95 % interval {100 * lo:.1f}-{100 * hi:.1f} %: the leak did not help here"
        out.append(f"For {who}, {paper_split} scores {percent(p)} against {percent(h)} when {held_out} "
                   f"({gap:+.1f} points, {where}).")
    return " ".join(out)


def probe_sentences(probe: pd.DataFrame) -> str:
    """What a :func:`alllib.learn.protocols.subject_probe` table says, task by task."""
    out = []
    for task, r in probe.iterrows():
        ratio = r["accuracy"] / r["chance (largest subject)"]
        verdict = ("far above" if ratio >= 2 else "above" if r["accuracy"] > r["chance (largest subject)"] + 0.05
                   else "close to")
        out.append(f"Among {task} ({int(r['subjects'])} subjects, {int(r['cells']):,} cells), the features name a "
                   f"cell's subject correctly {percent(r['accuracy'])} of the time (balanced accuracy "
                   f"{percent(r['balanced accuracy'])}), {verdict} chance ({percent(r['chance (largest subject)'])} "
                   f"by always guessing the largest subject, {percent(r['chance (1 / subjects)'])} by guessing uniformly)."
                   + (f" {int(r['subjects left out (one cell)'])} subjects with a single cell were left out."
                      if r.get("subjects left out (one cell)", 0) else ""))
    return " ".join(out)


def folds_sentence(settings: dict, unit: str = "subjects") -> str:
    """Why the honest protocol used the number of folds it used."""
    used, asked = settings["n_splits"], settings.get("n_splits_asked", settings["n_splits"])
    reps = settings.get("n_repeats", 1)
    rep = f", repeated {reps} times with other shuffles" if reps > 1 else ""
    if used < asked:
        return (f"The smaller class has only {used} {unit}, so the honest protocol uses {used} folds (not the "
                f"{asked} asked for): each fold holds out whole {unit} of both classes{rep}.")
    return f"The honest protocol uses {used} folds, each holding out whole {unit} of both classes{rep}."


def takeaway_sentences(results: pd.DataFrame, metric: str = "accuracy") -> str:
    """One sentence per dataset of a :func:`alllib.book.reported.results_frame` table holding a paper
    and an honest row per classifier (values in percent): the mean difference, and for how many
    classifiers the paper-protocol value lies above, inside or below the honest interval."""
    out = []
    part = results[results["metric"] == metric]
    for dataset, d in part.groupby("dataset", sort=False):
        paper = d[d["protocol"] == "paper"].set_index("classifier")["value"]
        honest = d[d["protocol"] == "honest"].set_index("classifier")
        both = paper.index.intersection(honest.index)
        if len(both) == 0:
            continue
        gap = (paper[both] - honest.loc[both, "value"]).mean()
        above = int((paper[both] > honest.loc[both, "high"]).sum())
        below = int((paper[both] < honest.loc[both, "low"]).sum())
        inside = len(both) - above - below
        parts = [f"{n} {where}" for n, where in ((above, "above"), (inside, "inside"), (below, "below")) if n]
        verdict = ("the leak inflated every score beyond what the honest protocol can explain" if above == len(both)
                   else "the leak measurably inflated some scores" if above
                   else "this run cannot tell the two protocols apart" if inside == len(both)
                   else "the paper protocol scored lower, so this run shows no inflation")
        out.append(f"On {dataset}, the paper protocol scores {gap:+.1f} points against the honest one on average "
                   f"({metric.replace('_', ' ')}), with the paper-protocol value {', '.join(parts)} the honest 95 % "
                   f"interval over {len(both)} classifiers: {verdict}.")
    return " ".join(out)


def layers_sentences(table: pd.DataFrame, probe: dict | None = None) -> str:
    """What a :func:`alllib.book.studies.layers_table` says, row after row (each against the one
    before it), and what the acquisition probe (:func:`alllib.learn.protocols.confound_probe`) found."""
    out = []
    rows = list(table.iterrows())
    for (prev, p), (name, r) in zip(rows, rows[1:]):
        gap = 100 * (r["balanced accuracy"] - p["balanced accuracy"])
        lo, hi = r["balanced 95% low"], r["balanced 95% high"]
        inside = not pd.isna(lo) and lo <= p["balanced accuracy"] <= hi
        where = ("inside this row's interval: no measurable difference" if inside
                 else "outside this row's interval" if not pd.isna(lo) else "")
        out.append(f"{name[0].upper()}{name[1:]}: balanced accuracy {percent(r['balanced accuracy'])} against "
                   f"{percent(p['balanced accuracy'])} for {prev} ({gap:+.1f} points{', ' + where if where else ''}).")
    if probe is not None:
        b = probe["balanced accuracy"]
        verdict = ("the features carry the acquisition almost perfectly" if b >= 0.9
                   else "the features carry much of the acquisition" if b >= 0.7
                   else "the features carry some of the acquisition" if b >= probe["chance"] + 0.1
                   else "the features barely tell the acquisitions apart")
        out.append(f"Among {probe['images']} images of {probe['among']} ({probe['values']}), a linear probe tells the "
                   f"{probe['target']} apart with balanced accuracy {percent(b)} (chance {percent(probe['chance'])}, "
                   f"{probe['folds']} folds grouped by slide): {verdict}.")
    return " ".join(out)


def acquisition_probe_sentences(balanced: pd.Series) -> str:
    """What the acquisition probe (:func:`alllib.learn.protocols.confound_probe`, one balanced
    accuracy per feature setting) says: where each setting stands, and whether any removes the
    shortcut."""
    parts = ", ".join(f"{percent(v)} on the {k} features" for k, v in balanced.items())
    verdict = ("No candidate removes the shortcut: all still tell the cameras apart far above chance."
               if balanced.min() >= 0.8 else f"The {balanced.idxmin()} features carry the least of it.")
    return f"The acquisition probe scores {parts} (chance 50 %). {verdict}"


def probe_change_sentences(before: pd.DataFrame, after: pd.DataFrame, change: str = "normalisation") -> str:
    """Two :func:`alllib.learn.protocols.subject_probe` tables, before and after a ``change``: per
    task, how much the probe's balanced accuracy moved (a change below 0.05 points reads as none)."""
    out = []
    for task in before.index.intersection(after.index):
        b, a = before.loc[task, "balanced accuracy"], after.loc[task, "balanced accuracy"]
        d = 100 * (b - a)
        moved = (f"{'lowers' if d > 0 else 'raises'} the probe's balanced accuracy by {abs(d):.1f} points"
                 if abs(d) >= 0.05 else "leaves the probe's balanced accuracy unchanged")
        out.append(f"Among {task}, {change} {moved} ({percent(b)} to {percent(a)}).")
    if len(after) and after["balanced accuracy"].min() > after["chance (1 / subjects)"].max() + 0.1:
        out.append("Colour statistics are only part of a subject's signature.")
    return " ".join(out)


def cross_dataset_sentences(across: pd.DataFrame) -> str:
    """What a table of :func:`alllib.learn.candidates.cross_dataset` rows (indexed by setting,
    train, test) says: the best balanced accuracy across datasets, and whether anything carries."""
    best = across["balanced_accuracy"].max()
    where = ", ".join(across["balanced_accuracy"].idxmax()[:2])
    verdict = ("no direction comes near the within-dataset scores: the features learnt on one dataset's images "
               "do not carry to the other's." if best < 0.75 else
               "some of what is learnt carries over, though below the within-dataset scores.")
    return f"Across datasets the best balanced accuracy is {percent(best)} ({where}); {verdict}"


def cells_sentence(ds, cells_per_subject: int | None, folds: int | None = None) -> str:
    """Which C-NMC cells a run uses (``ds``, after drawing at most ``cells_per_subject`` per subject;
    None: every cell): how many, of how many subjects of each class, from which cohorts, and into
    how many ``folds`` split by subject, if given."""
    people = ds.table.groupby("label")["patient"].nunique()
    cohorts = (f"; cohorts: {', '.join(f'fold_{f}' for f in sorted(ds.table['fold'].unique()))}"
               if "fold" in ds.table else "")
    drawn = "every cell" if cells_per_subject is None else f"at most {cells_per_subject} cells drawn at random per subject"
    return (f"**{len(ds):,} cells of {ds.table['patient'].nunique()} subjects** ({people.get(1, 0)} with ALL, "
            f"{people.get(0, 0)} normal{cohorts}; {drawn})" + (f", {folds} folds split by subject" if folds else ""))


def hardest_groups_sentence(held_out: pd.DataFrame, by_image: pd.DataFrame, n: int = 3, unit: str = "subjects") -> str:
    """The ``n`` groups scored worst when held out (a :func:`alllib.learn.protocols.per_group_accuracy`
    table of the honest protocol), against the lowest group score when split by image (the paper's)."""
    worst = held_out.sort_values("accuracy").head(n)
    return ("Held out, the hardest " + unit + " for the SVM were "
            + ", ".join(f"{g} ({'ALL' if r.label else 'normal'}, {percent(r.accuracy)} of {int(r.n_test)} cells)"
                        for g, r in worst.iterrows())
            + f"; split by image, the lowest {unit[:-1]} scored {percent(by_image['accuracy'].min())}.")


def growth_sentence(settings: dict, unit: str = "images") -> str:
    """How far the paper protocol's augmentation grew the data before it split (a paper protocol's
    ``settings``: ``n_originals``, ``n_total``)."""
    n, total = settings["n_originals"], settings["n_total"]
    return (f"The paper protocol grew {n:,} {unit} to {total:,} ({total // 2:,} per class), "
            f"{total / n:.1f} per original, before it split.")


def leak_sentences(paper, honest) -> str:
    """What the leak audits (:func:`alllib.learn.protocols.leak_audit`) found: in the paper protocol's
    split (a :class:`~alllib.learn.evaluation.ProtocolResult`), the test images that are copies of, or
    the source of, a training image, and those that share a group with one; in the honest protocol's
    folds, the same counts."""
    audit = paper.evaluations[0].leak
    return (f"Paper protocol: {audit['shared_source']} of {audit['n_test']} test images "
            f"({audit['fraction_shared_source']:.1%}) are copies of, or the source of, a training image; "
            f"{audit['shared_group']} ({audit['fraction_shared_group']:.1%}) share a group with the training set. "
            f"Honest protocol: {honest.leaks} test images share a source, {honest.group_leaks} share a group, over "
            f"{len(honest.evaluations)} folds.")

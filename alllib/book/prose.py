"""How the book shows a run's results: readable tables, and sentences written from the numbers.

Every sentence about this project's own results is produced here, from the run's tables, so
that the prose follows the numbers: it branches on the sign of a difference and on whether a
value lies inside an interval, and never states a figure the run did not compute.

>>> import pandas as pd
>>> t = pd.DataFrame({"paper protocol accuracy": [0.95], "honest accuracy": [0.80], "honest 95% low": [0.7],
...                   "honest 95% high": [0.9], "inflation (points)": [15.0]}, index=pd.Index(["svm"], name="classifier"))
>>> print(inflation_sentences(t, "accuracy"))  # doctest: +NORMALIZE_WHITESPACE
For the SVM, splitting by image scores 95.0 % against 80.0 % when whole subjects are held out (+15.0 points,
above the honest 95 % interval 70.0-90.0 %).
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pandas as pd

__all__ = ["Box", "percent_table", "full_profile_note", "cohort_sentences", "ranking_sentences",
           "inflation_sentences", "probe_sentences", "folds_sentence", "takeaway_sentences", "layers_sentences",
           "attribution_sentences", "candidates_sentences", "acquisition_probe_sentences", "probe_change_sentences",
           "cross_dataset_sentences", "training_sentence", "per_group_sentences", "sanity_sentences",
           "agreement_sentences", "CLASSIFIER_NAMES"]

_BOX_COLOURS = {"note": ("#e7f2fa", "#6ab0de"), "warning": ("#fff4e5", "#f0b37e"), "important": ("#e8f5e9", "#5cb85c")}


@dataclass
class Box:
    """A note, warning or banner that renders as a box both in JupyterLab and in the book.

    ``body`` is HTML (use :func:`html.escape` for text from elsewhere). The box is an HTML
    ``div`` with the ``admonition`` classes that the book's theme styles, and inline styles for
    JupyterLab, which does not parse the book's MyST directives in outputs.

    >>> "admonition note" in Box("C-NMC is <b>absent</b>.", title="Note")._repr_html_()
    True
    >>> print(repr(Box("C-NMC is <b>absent</b>.", title="Note")))
    Note: C-NMC is absent.
    """

    body: str
    kind: str = "note"
    title: str | None = None

    def __post_init__(self):
        if self.kind not in _BOX_COLOURS:
            raise ValueError(f"kind must be one of {', '.join(_BOX_COLOURS)}, not {self.kind!r}")

    def _repr_html_(self) -> str:
        bg, edge = _BOX_COLOURS[self.kind]
        title = (f'<p class="admonition-title" style="font-weight:bold;margin:0 0 0.3em 0">{html.escape(self.title)}</p>'
                 if self.title else "")
        return (f'<div class="admonition {self.kind}" style="background:{bg};border-left:4px solid {edge};'
                f'padding:0.5em 0.9em;margin:0.6em 0;white-space:normal">{title}{self.body}</div>')

    def __repr__(self) -> str:
        text = html.unescape(re.sub(r"<[^>]+>", "", self.body))
        return f"{self.title}: {text}" if self.title else text


#: How the book names each classifier in prose.
CLASSIFIER_NAMES = {"svm": "the SVM", "rf": "the random forest", "xgboost": "XGBoost"}


def percent_table(frame: pd.DataFrame, *, fractions: bool = True, decimals: int = 1, exclude=()):
    """A table for reading: fractions shown as percentages with ``decimals`` decimals, counts as
    integers, empty cells for missing values (never ``NaN``), column names wrapped so the table
    fits the page. Returns a pandas ``Styler`` (rendered as HTML in JupyterLab and the book).

    ``fractions=False`` for tables already in percent. Columns named in ``exclude`` are shown as
    they are; p-values (columns named ``p``, ``p (...)`` or ``... p``) with two significant digits;
    rank correlations (``rho``) with two decimals; columns of integers, or named ``n_...`` or for
    leaks, counts, cells, subjects, images or groups, as whole numbers; columns named for points,
    with a sign.
    """
    t = frame.copy()
    fmt = {}
    for col in t.columns:
        s = t[col]
        name = str(col).lower()
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) or col in exclude:
            continue
        if name == "p" or name.startswith("p (") or " p (" in name or name.endswith(" p"):
            fmt[col] = lambda v: "" if pd.isna(v) else f"{v:.2g}"
        elif "rho" in name:
            fmt[col] = lambda v: "" if pd.isna(v) else f"{v:.2f}"
        elif pd.api.types.is_integer_dtype(s) or name.startswith("n_") or any(
                w in name for w in ("leak", "count", "cells", "subjects", "images", "groups")):
            fmt[col] = lambda v: "" if pd.isna(v) else f"{int(round(v)):,}"
        elif "points" in name:
            fmt[col] = lambda v, d=decimals: "" if pd.isna(v) else f"{v:+.{d}f}"
        else:
            scale = 100 if fractions else 1
            fmt[col] = lambda v, d=decimals, k=scale: "" if pd.isna(v) else f"{k * v:.{d}f} %"
    styler = t.style.format(fmt, na_rep="")
    return styler.set_table_styles([{"selector": "th.col_heading", "props": [("white-space", "normal"),
                                                                              ("max-width", "9em")]},
                                    {"selector": "th.row_heading", "props": [("white-space", "nowrap")]}])


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


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
            out.append(f"For {who}, only the paper protocol ran ({_pct(p)}).")
            continue
        gap = 100 * (p - h)
        if lo <= p <= hi:
            where = f"inside the honest 95 % interval {100 * lo:.1f}-{100 * hi:.1f} %: no measurable inflation"
        elif p > hi:
            where = f"above the honest 95 % interval {100 * lo:.1f}-{100 * hi:.1f} %"
        else:
            where = f"below the honest 95 % interval {100 * lo:.1f}-{100 * hi:.1f} %: the leak did not help here"
        out.append(f"For {who}, {paper_split} scores {_pct(p)} against {_pct(h)} when {held_out} "
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
                   f"cell's subject correctly {_pct(r['accuracy'])} of the time (balanced accuracy "
                   f"{_pct(r['balanced accuracy'])}), {verdict} chance ({_pct(r['chance (largest subject)'])} by always "
                   f"guessing the largest subject, {_pct(r['chance (1 / subjects)'])} by guessing uniformly)."
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
        out.append(f"{name[0].upper()}{name[1:]}: balanced accuracy {_pct(r['balanced accuracy'])} against "
                   f"{_pct(p['balanced accuracy'])} for {prev} ({gap:+.1f} points{', ' + where if where else ''}).")
    if probe is not None:
        b = probe["balanced accuracy"]
        verdict = ("the features carry the acquisition almost perfectly" if b >= 0.9
                   else "the features carry much of the acquisition" if b >= 0.7
                   else "the features carry some of the acquisition" if b >= probe["chance"] + 0.1
                   else "the features barely tell the acquisitions apart")
        out.append(f"Among {probe['images']} images of {probe['among']} ({probe['values']}), a linear probe tells the "
                   f"{probe['target']} apart with balanced accuracy {_pct(b)} (chance {_pct(probe['chance'])}, "
                   f"{probe['folds']} folds grouped by slide): {verdict}.")
    return " ".join(out)


def attribution_sentences(table: pd.DataFrame) -> str:
    """What a :func:`alllib.book.studies.inside_table` says, row by row: the Grad-CAM share inside
    the nucleus against the nucleus's area (what an even map would score), judged by the
    share's 95 % interval."""
    out = []
    for (setting, cls), r in table.iterrows():
        area, share, lo, hi = r["nucleus area"], r["Grad-CAM inside"], r["inside 95% low"], r["inside 95% high"]
        if lo > area:
            verdict = f"{share / area:.1f} times an even spread: the decision leans on the nucleus"
        elif hi < area:
            verdict = (f"less than an even spread would put there ({share / area:.2f} times): the decision leans on "
                       "what lies around the nucleus")
        else:
            verdict = "no different from an even spread, by its 95 % interval"
        out.append(f"With {setting}, for {int(r['cells'])} {cls} cells, {_pct(share)} of the Grad-CAM lies inside "
                   f"the nucleus mask (95 % interval {_pct(lo)}-{_pct(hi)}), which covers {_pct(area)} of the image: "
                   f"{verdict}.")
    return " ".join(out)


def candidates_sentences(table: pd.DataFrame, baseline: str, metric: str = "balanced accuracy",
                         goal: float | None = None) -> str:
    """What a :func:`alllib.learn.candidates.candidates_table` says: each candidate against
    ``baseline`` on ``metric``, with its ``verdict``: "better" or "worse" only where the group
    sign-flip test and the corrected t-test both find the difference after Holm's correction for
    the candidates compared; otherwise "could not tell", with the interval of the difference and
    the smallest one this run could have detected, never "does not help". Then how many spurious
    verdicts the family could hold, and how far the best candidate is from ``goal`` (the best of
    several is an optimistic pick)."""
    base = table.loc[baseline, metric]
    n = int(table.attrs.get("comparisons", len(table) - 1))
    alpha = float(table.attrs.get("alpha", 0.05))
    out = [f"The baseline, {baseline}, scores {_pct(base)} {metric} "
           f"(95 % interval {_pct(table.loc[baseline, metric + ' 95% low'])}-"
           f"{_pct(table.loc[baseline, metric + ' 95% high'])}, by a bootstrap over the groups)."]
    for name, r in table.drop(index=baseline).iterrows():
        d, lo, hi = r["difference (points)"], r["difference low (points)"], r["difference high (points)"]
        tests = (f"sign-flip p = {r['p (sign flip)']:.2g}, corrected t-test p = {r['p (corrected t-test)']:.2g}"
                 if not pd.isna(r["p (corrected t-test)"]) else "too few folds for the t-test")
        tests += f", Holm-adjusted p = {r['p (Holm)']:.2g}" if not pd.isna(r.get("p (Holm)")) else ""
        if isinstance(r.get("higher in folds"), str):
            tests += f"; higher in {r['higher in folds'].replace('/', ' of ')} folds"
        interval = f"{lo:+.1f} to {hi:+.1f} points" if not pd.isna(lo) else "no interval"
        corrected = not pd.isna(r.get("p (Holm)")) and r["p"] < alpha <= r["p (Holm)"]
        if r["verdict"] != "could not tell":
            said = (f"{r['verdict']} than the baseline: both tests find the difference, after the correction for "
                    f"{n} comparison{'s' if n != 1 else ''} ({interval} by the corrected t-test; {tests})")
        elif r.get("images called differently") == 0:
            said = "the same calls as the baseline on every image"
        elif corrected:
            said = (f"could not tell it from the baseline once {n} comparisons are allowed for: both tests find the "
                    f"difference at 5 % alone (p = {r['p']:.2g}; {interval} by the corrected t-test), but not after "
                    f"Holm's correction ({tests})")
        else:
            said = (f"could not tell it from the baseline ({interval} by the corrected t-test); this run could "
                    f"detect about {r['detectable (points)']:.1f} points or more ({tests})")
        out.append(f"{name[0].upper()}{name[1:]}: {_pct(r[metric])} ({d:+.1f} points; {said}).")
    if n > 1:
        out.append(f"With {n} candidates against one baseline, an uncorrected test at {100 * alpha:g} % would give "
                   f"about {n * alpha:.2g} spurious verdicts per run where nothing differs; Holm's correction keeps the "
                   f"chance of any at most {100 * alpha:g} %.")
    groups = table.attrs.get("smaller class groups")
    if groups is not None and groups < 10:
        out.append(f"The smaller class has {groups} group{'s' if groups != 1 else ''}: the scores' bootstrap intervals "
                   "redraw it in few ways and are too narrow, so the verdicts rest on the two tests, whose false verdicts "
                   "the suite holds at 5 % or less with 3 groups (tests/test_verdicts.py).")
    if goal is not None:
        best = table[metric].idxmax()
        gap = 100 * (goal - table.loc[best, metric])
        pick = f"the best of {len(table)} (an optimistic pick)" if len(table) > 2 else "the best"
        out.append(f"{pick[0].upper()}{pick[1:]}, {best}, is {gap:.1f} points short of the goal of {_pct(goal)}."
                   if gap > 0 else f"{pick[0].upper()}{pick[1:]}, {best}, reaches the goal of {_pct(goal)} "
                   f"({-gap:.1f} points above it).")
    return " ".join(out)


def person_level_sentences(people: pd.DataFrame, baseline: str) -> str:
    """What a :func:`alllib.learn.candidates.subject_level_table` says: how many people the baseline
    calls right (donors and patients apart), and which candidates call more of them right, if any;
    with a dozen people, one person more is a hint, not a result."""
    base = people.loc[baseline]
    out = [f"Called by person, the baseline, {baseline}, gets {base['called right']} of {base['people']} subjects "
           f"right: {base['normal called right']} healthy donors and {base['ALL called right']} patients"
           + (f", with {base['uncertain']} left uncertain." if base["uncertain"] else ".")]
    better = people[people["called right"] > base["called right"]].sort_values("called right", ascending=False)
    if len(better):
        out.append("More people right: " + "; ".join(
            f"{name}, {r['called right']} ({r['normal called right']} donors)" for name, r in better.iterrows())
            + f". With {base['people']} people, a person or two more is a hint, not a result.")
    else:
        out.append("No candidate calls more people right than the baseline.")
    return " ".join(out)


def sanity_sentences(table: pd.DataFrame) -> str:
    """What an :func:`alllib.attribution.sanity_table` says: for each map kind, the checks it
    failed (with the numbers behind them), and which maps earn a reading."""
    out = []
    fills = [c[len("deletion p ("):-1] for c in table.columns if c.startswith("deletion p (")]
    for kind, r in table.iterrows():
        failed = []
        if r["randomisation"] == "not measured":
            failed.append("its randomisation could not be judged, its variant not having been computed")
        elif r["randomisation"] == "fail":
            failed.append(f"it is about as like its maps under shuffled weights (median |rho| "
                          f"{r['weights randomised |rho|']:.2f}) or shuffled labels ({r['labels randomised |rho|']:.2f}) "
                          f"as like its own variant ({r['consistency rho']:.2f}; paired p = "
                          f"{r['randomisation p (weights)']:.2g} and {r['randomisation p (labels)']:.2g}, the rule asks "
                          "for both below 0.05): it does not show what the SVM learnt")
        for curve in ("deletion", "insertion"):
            if r[curve] == "fail":
                lost = [f"with the {fill} fill it beats a random smooth map on {r[f'beats random in {curve} ({fill})']} "
                        f"cells, p = {r[f'{curve} p ({fill})']:.2g}" for fill in fills
                        if not r[f"{curve} p ({fill})"] < 0.05]
                failed.append(f"in {curve} " + "; ".join(lost) + " (the rule asks for p < 0.05 with every fill)")
        empty = f" {int(r['empty'])} of its {int(r['cells'])} maps were empty (no positive part)." if r["empty"] else ""
        name = kind[0].upper() + kind[1:]
        if failed:
            out.append(f"{name} fails: {'; '.join(failed)}.{empty}")
        else:
            beats = ", ".join(f"{r[f'beats random in deletion ({fill})']} and {r[f'beats random in insertion ({fill})']} "
                              f"with the {fill} fill" for fill in fills)
            out.append(f"{name} passes: it changes with the model more than with its own variant, and beats the "
                       f"random map in deletion and insertion on {beats}.{empty}")
    reads = list(table.index[table["reads"]])
    out.append(f"Only {' and '.join(reads)} earn{'s' if len(reads) == 1 else ''} a reading here; the nucleus share "
               "below is theirs." if reads else
               "No map passes all three checks on these cells, so none is read: the nucleus shares above describe "
               "the maps, not the evidence the SVM uses.")
    if (~table["reads"]).any():
        cells = int(table["cells"].max())
        out.append(f"Each check is a paired test on {cells} cells, which sees only large effects: where a map fails "
                   "here, read it as \"could not tell\", not as \"no better than random\"; more cells "
                   "(`sanity_cells`) test it with more power.")
    return " ".join(out)


def agreement_sentences(agreement: pd.DataFrame) -> str:
    """What :func:`alllib.book.studies.map_agreement` says: how many images were compared, and for
    each pair of map kinds the median Spearman correlation with its quartiles, most alike first."""
    images = agreement["id"].nunique()
    pairs = (agreement.groupby(["first", "second"])["rho"].describe()
             .sort_values("50%", ascending=False))
    flat = [f"{a} and {b}" for (a, b), r in pairs.iterrows() if r["count"] == 0]
    pairs = pairs[pairs["count"] > 0]
    said = "; ".join(f"{a} and {b}, {r['50%']:.2f} (quartiles {r['25%']:.2f} to {r['75%']:.2f}, {int(r['count'])} images)"
                     for (a, b), r in pairs.iterrows())
    out = [f"Over {images} images, the median rank correlation of each pair of maps: {said}." if said else
           f"Over {images} images, no pair of maps could be compared."]
    if flat:
        out.append(f"Not compared, every map of one kind being flat (it ranks nothing): {'; '.join(flat)}.")
    if len(pairs):
        best = pairs.iloc[0]
        out.append("No two kinds rank the pixels much alike (every median below 0.5): they answer different "
                   "questions, and the sanity checks say which answers are about the SVM." if best["50%"] < 0.5 else
                   f"{pairs.index[0][0][0].upper() + pairs.index[0][0][1:]} and {pairs.index[0][1]} rank the pixels "
                   f"alike on at least half the images (median {best['50%']:.2f}).")
    return " ".join(out)


def acquisition_probe_sentences(balanced: pd.Series) -> str:
    """What the acquisition probe (:func:`alllib.learn.protocols.confound_probe`, one balanced
    accuracy per feature setting) says: where each setting stands, and whether any removes the
    shortcut."""
    parts = ", ".join(f"{_pct(v)} on the {k} features" for k, v in balanced.items())
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
        out.append(f"Among {task}, {change} {moved} ({_pct(b)} to {_pct(a)}).")
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
    return f"Across datasets the best balanced accuracy is {_pct(best)} ({where}); {verdict}"


def training_sentence(result, speed: float, epochs: int) -> str:
    """How fine-tuning went (``result``, a :func:`alllib.learn.finetune.finetuned` candidate's; ``speed``
    from :func:`alllib.learn.finetune.training_report`): the speed and the epoch that early
    stopping kept in each fold."""
    kept = ", ".join(str(e.best_params["epoch"]) for e in result.evaluations)
    return (f"Training ran at a median of **{speed:.1f} images/s** on this machine (epochs after the first); "
            f"early stopping kept epoch {kept} of at most {epochs} in the {len(result.evaluations)} folds.")


def per_group_sentences(table: pd.DataFrame, candidate: str, cls: str = "normal", unit: str = "subject") -> str:
    """What a :func:`alllib.learn.candidates.per_group_table` says of ``candidate`` for the groups
    of class ``cls`` (C-NMC's normal donors): each one's share labelled correctly with its interval,
    and the spread between the best and the worst."""
    part = table.loc[candidate]
    part = part[part["class"] == cls]
    if part.empty:
        return f"No {cls} {unit} was tested."
    each = "; ".join(f"{g}: {_pct(r['correct'])} of {int(r['images'])} images ({_pct(r['95% low'])}-"
                     f"{_pct(r['95% high'])})" for g, r in part.iterrows())
    what = part["measures"].iloc[0]
    return (f"With {candidate}, the {len(part)} {cls} {unit}s' {what}, one by one: {each}. From the worst "
            f"to the best {unit} it spans {100 * (part['correct'].max() - part['correct'].min()):.1f} points: "
            f"the pooled {what} hides how differently the model treats each {unit}.")


def full_profile_note(profile: str, chapter: str, adds: list[str]) -> str:
    """One sentence for a chapter run below the full profile: what the full profile adds (``adds``,
    rows or figures this run did not compute) and the command that computes them; empty in the
    full profile or where it adds nothing.

    >>> full_profile_note("quick", "13_cnmc_gains", ["fine-tuning"])[:65]
    'This quick run leaves out fine-tuning; the full profile adds them'
    """
    if profile == "full" or not adds:
        return ""
    return (f"This {profile} run leaves out {', '.join(adds)}; the full profile adds them: "
            f"`python -m alllib book --profile full --only {chapter}`.")


def cohort_sentences(table: pd.DataFrame, baseline: str) -> str:
    """What a :func:`alllib.learn.cohorts.cohort_table` says: for each cohort scored, the baseline's
    balanced accuracy, specificity and people called right; the candidates that reach a higher
    balanced accuracy there, with their sign-flip p-value; and how many people had too few cells
    for any call."""
    out = []
    for scored, part in table.groupby(level="scored on", sort=False):
        base = part.loc[baseline].iloc[0] if baseline in part.index.get_level_values(0) else None
        if base is None:
            continue
        out.append(f"Trained on {base['trained on']} and scored on {scored} ({int(base['cells'])} cells of "
                   f"{int(base['people'])} people), the baseline reaches {_pct(base['balanced accuracy'])} balanced "
                   f"accuracy (specificity {_pct(base['specificity'])}) and calls {base['ALL called right']} patients "
                   f"and {base['normal called right']} healthy donors right, {int(base['normal called ALL'])} donor"
                   f"{'s' if base['normal called ALL'] != 1 else ''} called ALL.")
        higher = part[part["balanced accuracy"] > base["balanced accuracy"]].droplevel("scored on")
        if len(higher):
            out.append("Higher there: " + "; ".join(
                f"{name}, {_pct(r['balanced accuracy'])} (sign-flip p = {r['p (sign flip, vs baseline)']:.2g})"
                for name, r in higher.sort_values("balanced accuracy", ascending=False).iterrows()) + ".")
        few = int(base["people with 3 cells or fewer"])
        if few:
            out.append(f"{few} of its people have 3 cells or fewer: no share of so few cells can be told from one half "
                       "at 95 %, so they are left uncertain, which counts as a miss.")
    out.append("One training set per row: a sign-flip p says whether these fitted models differ on these new people, "
               "not whether the methods would with another draw of training people.")
    return " ".join(out)


def ranking_sentences(agreements: dict[str, dict], train_cohort: str) -> str:
    """What :func:`alllib.learn.cohorts.rank_agreement` says for each ranking (name -> its result):
    the Spearman rank correlation between the ranking by cross-validation within
    ``train_cohort`` and the ranking on the other cohort's people, and where the first choice
    within lands across."""
    out = []
    for name, a in agreements.items():
        if a["n"] < 3 or a["rho"] != a["rho"]:
            out.append(f"The {name} could not be compared ({a['n']} entries).")
            continue
        out.append(f"Over the {a['n']} {name}, the ranking by cross-validation within {train_cohort} and the ranking "
                   f"on the other cohort's people correlate at Spearman rho {a['rho']:+.2f} (p = {a['p']:.2g}); "
                   f"the first choice within, {a['best within']}, ranks {a['its rank across']} of {a['n']} across"
                   + (", where it is also first." if a["its rank across"] == 1 else
                      f", where {a['best across']} is first."))
    return " ".join(out)

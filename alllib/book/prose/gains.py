"""Sentences about candidates: each against the baseline with its verdict, person by person, cohort
by cohort, and whether a ranking carries from one cohort to another."""
from __future__ import annotations

import pandas as pd

from alllib.book.prose.display import percent
from alllib.learn.finetune import training_report

__all__ = ["candidates_sentences", "person_level_sentences", "per_group_sentences", "training_sentence",
           "training_sentences", "cohort_sentences", "ranking_sentences"]


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
    out = [f"The baseline, {baseline}, scores {percent(base)} {metric} "
           f"(95 % interval {percent(table.loc[baseline, metric + ' 95% low'])}-"
           f"{percent(table.loc[baseline, metric + ' 95% high'])}, by a bootstrap over the groups)."]
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
        out.append(f"{name[0].upper()}{name[1:]}: {percent(r[metric])} ({d:+.1f} points; {said}).")
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
        out.append(f"{pick[0].upper()}{pick[1:]}, {best}, is {gap:.1f} points short of the goal of {percent(goal)}."
                   if gap > 0 else f"{pick[0].upper()}{pick[1:]}, {best}, reaches the goal of {percent(goal)} "
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


def training_sentences(results: dict, epochs: int) -> str:
    """:func:`training_sentence` for every fine-tuned candidate of ``results`` (those named
    ``"fine-tuned ..."``), each after its name; empty where none was fine-tuned."""
    return "\n\n".join(f"{name}: " + training_sentence(result, training_report(result)[1], epochs)
                       for name, result in results.items() if name.startswith("fine-tuned"))


def per_group_sentences(table: pd.DataFrame, candidate: str, cls: str = "normal", unit: str = "subject") -> str:
    """What a :func:`alllib.learn.candidates.per_group_table` says of ``candidate`` for the groups
    of class ``cls`` (C-NMC's normal donors): each one's share labelled correctly with its interval,
    and the spread between the best and the worst."""
    part = table.loc[candidate]
    part = part[part["class"] == cls]
    if part.empty:
        return f"No {cls} {unit} was tested."
    each = "; ".join(f"{g}: {percent(r['correct'])} of {int(r['images'])} images ({percent(r['95% low'])}-"
                     f"{percent(r['95% high'])})" for g, r in part.iterrows())
    what = part["measures"].iloc[0]
    return (f"With {candidate}, the {len(part)} {cls} {unit}s' {what}, one by one: {each}. From the worst "
            f"to the best {unit} it spans {100 * (part['correct'].max() - part['correct'].min()):.1f} points: "
            f"the pooled {what} hides how differently the model treats each {unit}.")


def training_sentence(result, speed: float, epochs: int) -> str:
    """How fine-tuning went (``result``, a :func:`alllib.learn.finetune.finetuned` candidate's; ``speed``
    from :func:`alllib.learn.finetune.training_report`): the speed and the epoch that early
    stopping kept in each fold."""
    kept = ", ".join(str(e.best_params["epoch"]) for e in result.evaluations)
    return (f"Training ran at a median of **{speed:.1f} images/s** on this machine (epochs after the first); "
            f"early stopping kept epoch {kept} of at most {epochs} in the {len(result.evaluations)} folds.")


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
                   f"{int(base['people'])} people), the baseline reaches {percent(base['balanced accuracy'])} balanced "
                   f"accuracy (specificity {percent(base['specificity'])}) and calls {base['ALL called right']} patients "
                   f"and {base['normal called right']} healthy donors right, {int(base['normal called ALL'])} donor"
                   f"{'s' if base['normal called ALL'] != 1 else ''} called ALL.")
        higher = part[part["balanced accuracy"] > base["balanced accuracy"]].droplevel("scored on")
        if len(higher):
            out.append("Higher there: " + "; ".join(
                f"{name}, {percent(r['balanced accuracy'])} (sign-flip p = {r['p (sign flip, vs baseline)']:.2g})"
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

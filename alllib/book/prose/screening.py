"""Sentences about a slide screen (chapter 14), written from a :class:`~alllib.learn.screening.ScreeningStudy`
and the acquisition baselines, never typed in.

>>> _share(3, 4), _pct(0.9714)
('3 of 4 (75 %)', '97 %')
"""
from __future__ import annotations

import numpy as np

from alllib.learn.metrics import wilson_interval

__all__ = ["detection_sentence", "calls_sentence", "unmarked_sentence", "trap_sentence", "rules_sentence"]


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def _share(k: int, n: int) -> str:
    return f"{k} of {n} ({_pct(k / n)})" if n else f"{k} of {n}"


def detection_sentence(study) -> str:
    """How many of the marked blasts were found, and found and called blasts, at the study's radius;
    the cells found per slide."""
    d, t = study.detection(), study.slides.drop_duplicates("group")
    per = f"{d['cells_per_slide']:.1f} cells per slide ({int(t['cells'].min())} to {int(t['cells'].max())})"
    crops = ""
    if d["crops"]:
        k = int(t["crops_found"].sum())
        crops = (f" Of the {d['crops']} white cells, blasts or not, that ALL-IDB2's crops were cut around on these "
                 f"slides, {_share(k, d['crops'])} were found.")
    if not d["marked"]:
        return f"No slide here marks its blasts, so detection cannot be scored on them; the detector found {per}.{crops}"
    found, called = int(t["found"].sum()), int(t["found_called"].sum())
    marked = "the experts marked" if study.source == "all_idb1" else "drawn"
    return (f"Of the {d['marked']} blasts {marked} on {int((t['marked'] > 0).sum())} slides, "
            f"{_share(found, d['marked'])} were found (a cell within {d['radius_px']:.0f} pixels of the mark, a third "
            f"of a crop's width or {d['radius_diameters']:.2f} typical nucleus diameters; 95 % interval from "
            f"{_pct(wilson_interval(found, d['marked'])[0])} up) and {_share(called, d['marked'])} were found and "
            f"called blasts.{crops} The detector found {per}. Its settings were chosen on the seven ALL-IDB1 slides "
            "shared with this project and on synthetic slides: on those, these figures flatter it.")


def calls_sentence(study, same: str | None = None) -> str:
    """The slide calls: right, uncertain, wrong, with the interval a run of this size allows; and on
    the slides of the acquisition ``same`` alone, where given."""
    c = study.calls()
    lo, hi = wilson_interval(c["right"], c["slides"]) if c["slides"] else (np.nan, np.nan)
    text = (f"Screened by models trained on no crop of the slide screened, {c['right']} of {c['slides']} slides were "
            f"called right ({c['uncertain']} uncertain, {c['wrong']} wrong; byte-identical slides counted once). "
            f"With {c['slides']} slides the share a screen calls right is only known to lie between {_pct(lo)} and "
            f"{_pct(hi)} (95 % Wilson interval): this run cannot tell whether it reaches 97 % on "
            f"{'ALL-IDB1 as a whole' if study.source == 'all_idb1' else 'real slides'}.")
    if same is not None:
        s = study.calls(same)
        if s["slides"]:
            text += (f" On the {s['slides']} slides of {same} pixels alone, where the camera cannot give the label "
                     f"away, {s['right']} were called right ({s['uncertain']} uncertain, {s['wrong']} wrong).")
    return text


def unmarked_sentence(study) -> str:
    """On the ALL slides: the share of the cells near no marked blast that were called blasts, per
    acquisition, and what it can and cannot mean."""
    slides = study.slides[["slide", "label", "acquisition"]].rename(columns={"label": "slide_label"})
    cells = study.cells.merge(slides, on="slide")
    cells = cells[(cells["slide_label"] == 1) & ~cells["near_marked"]]
    if not len(cells):
        return ""
    parts = [f"{_share(int(g['label'].sum()), len(g))} on the {size} slides" for size, g in cells.groupby("acquisition")]
    if study.source != "all_idb1":  # a synthetic slide's every other cell was drawn normal
        return "On the ALL slides, the normal cells called blasts: " + "; ".join(parts) + "."
    return ("On the ALL slides, the cells near no marked blast that were called blasts: " + "; ".join(parts) + ". Some "
            "are blasts the experts did not mark (ALL-IDB1 marks blasts, not every cell); neutrophils, monocytes and "
            "smudged cells called blasts are the model's errors, and the overlays show which is which. A share near "
            "100 % on one camera only would be chapter 9's acquisition trap at work on single cells.")


def trap_sentence(here: dict, shipped: dict) -> str:
    """How well a slide's size alone predicts its label, on the slides ALL-IDB2's crops come from
    (``shipped``) and on the slides screened (``here``)."""
    sizes = "; ".join(f"{size}: {int(r.slides)} slide{'s' if r.slides != 1 else ''}, {_pct(r.all_share)} of them an "
                      "ALL patient's"
                      for size, r in shipped["per_size"].iterrows())
    text = (f"The slide's size alone, learned on the other slides of each fold, gives a balanced accuracy of "
            f"{_pct(shipped['balanced_accuracy'])} on the {shipped['slides']} slides ALL-IDB2's crops come from "
            f"({sizes})")
    if here["slides"]:
        text += f", and {_pct(here['balanced_accuracy'])} on the {here['slides']} slides screened here"
    return (text + ". A model fed whole photographs could learn the camera; the screen calls each slide from its "
            "cells, and its results on one acquisition alone say what the cells are worth.")


def rules_sentence(study) -> str:
    """Each fold's rule: the false-positive counts it rests on, and the first one in words."""
    rules = study.rules
    counts = ", ".join(f"{r.false_positives} of {r.negatives}" for r in rules)
    return (f"Each fold's slide rule comes from its model's slide-grouped cross-validation on the training crops "
            f"(normal cells called blasts, fold by fold: {counts}). For the first: {rules[0].describe()}.")

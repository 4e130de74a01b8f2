"""Sentences about attribution maps: where Grad-CAM lies against the nucleus, which maps pass their
sanity checks, and how alike the kinds of map rank the pixels."""
from __future__ import annotations

import pandas as pd

from alllib.book.prose.display import percent

__all__ = ["attribution_sentences", "sanity_sentences", "agreement_sentences"]


def attribution_sentences(table: pd.DataFrame, sanity: pd.DataFrame | None = None) -> str:
    """What a :func:`alllib.attribution.inside_table` says, row by row: the Grad-CAM share inside
    the nucleus against the nucleus's area (what an even map would score), judged by the
    share's 95 % interval; first, where the :func:`alllib.attribution.sanity_table` ``sanity`` says
    Grad-CAM did not pass its checks, that the shares describe the map, not the SVM's evidence."""
    out = []
    if sanity is not None and not sanity.loc["Grad-CAM", "reads"]:
        out.append("**Grad-CAM did not pass its sanity checks on these cells: its nucleus shares describe the map, "
                   "not the SVM's evidence.**")
    for (setting, cls), r in table.iterrows():
        area, share, lo, hi = r["nucleus area"], r["Grad-CAM inside"], r["inside 95% low"], r["inside 95% high"]
        if lo > area:
            verdict = f"{share / area:.1f} times an even spread: the decision leans on the nucleus"
        elif hi < area:
            verdict = (f"less than an even spread would put there ({share / area:.2f} times): the decision leans on "
                       "what lies around the nucleus")
        else:
            verdict = "no different from an even spread, by its 95 % interval"
        out.append(f"With {setting}, for {int(r['cells'])} {cls} cells, {percent(share)} of the Grad-CAM lies inside "
                   f"the nucleus mask (95 % interval {percent(lo)}-{percent(hi)}), which covers {percent(area)} of the "
                   f"image: {verdict}.")
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
    """What :func:`alllib.attribution.map_agreement` says: how many images were compared, and for
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

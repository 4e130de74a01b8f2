"""What carries to people the model has never seen: the C-NMC candidates, judged by person and across
cohorts, and the setting ``train`` uses for C-NMC, chosen by that judgement.

    python benchmarks/cnmc_specificity.py                          # every cell of every subject
    python benchmarks/cnmc_specificity.py --cells-per-subject 40   # a quicker subsample
    python benchmarks/cnmc_specificity.py --full                   # also augmentation, Lite2, fine-tuning
    python benchmarks/cnmc_specificity.py --write-defaults         # record the choice for train

The candidates are chapter 13's (:func:`alllib.learn.candidates.cnmc_candidates`), on the cells of
``$ALLLIB_DATA``'s C-NMC-2019, judged two ways:

* **pooled people**, split by subject (:func:`alllib.learn.candidates.evaluate_candidates`, 5 folds
  with the normal donors spread over them): each candidate against the baseline by the calibrated
  verdict of :mod:`alllib.learn.verdicts` (the group sign-flip test and the corrected t-test must
  agree, Holm's correction over the candidates);
* **across cohorts**: each cohort (C-NMC fold) held out in turn, trained on the others
  (:func:`alllib.learn.cohorts.cohort_table`: cells and one call per person).

Prints both tables, each normal donor's specificity (:func:`alllib.learn.candidates.per_group_table`)
and the seconds taken. ``train``'s C-NMC default is the setting of the candidate that the verdict
finds **better** than the baseline on pooled people with the largest gain, or the baseline's where
none is: with ``--write-defaults`` the choice and the measurement behind it are written to
``alllib/learn/train_defaults.json``, which ``train`` reads (it says how sure the choice is).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

#: What each candidate of chapter 13 means for ``train``'s settings (a candidate not listed has none).
SETTINGS = {"frozen": {"neighbours": 0}, "+ neighbourhood correction (within each person)": {"neighbours": 10}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells-per-subject", type=int, default=None, help="cells drawn per subject (default: all)")
    p.add_argument("--search", default="small", choices=["paper", "small", "none"])
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-per-class", type=int, default=600, help="--full: training sides grown to this")
    p.add_argument("--epochs", type=int, default=3, help="--full: fine-tuning epochs at most")
    p.add_argument("--full", action="store_true", help="the full profile's candidates too")
    p.add_argument("--write-defaults", action="store_true", help="record the chosen default for train")
    a = p.parse_args()

    import pandas as pd

    from alllib.data import load_dataset
    from alllib.features import BACKBONES, Featurizer
    from alllib.learn.candidates import (
        candidates_table,
        cnmc_candidates,
        evaluate_candidates,
        per_group_table,
        subject_level_table,
    )
    from alllib.learn.cohorts import cohort_table

    t0 = time.time()
    ds = load_dataset("cnmc").sample_per_group(a.cells_per_subject, seed=a.seed)
    deep = Featurizer("efficientnet_lite0")
    lite2 = Featurizer("efficientnet_lite2", size=BACKBONES["efficientnet_lite2"].native_size) if a.full else None
    baseline, candidates, _ = cnmc_candidates(deep, profile="full" if a.full else "quick", search=a.search, seed=a.seed,
                                              target_per_class=a.target_per_class, epochs=a.epochs, lite2=lite2)
    people = ds.table.groupby("label")["patient"].nunique()
    print(f"{len(ds):,} cells of {ds.table['patient'].nunique()} people ({people.get(1, 0)} patients, "
          f"{people.get(0, 0)} donors) in folds {sorted(set(ds.table['fold']))}; {len(candidates)} candidates")
    pooled = evaluate_candidates(ds, candidates, n_splits=5, n_repeats=a.repeats, seed=a.seed, checkpoint=True)
    pd.set_option("display.width", 250, "display.max_columns", 40)
    table = candidates_table(pooled, baseline, seed=a.seed)
    cols = ["balanced accuracy", "balanced accuracy 95% low", "balanced accuracy 95% high", "weighted f1",
            "difference (points)", "difference low (points)", "difference high (points)", "detectable (points)",
            "p (sign flip)", "p (corrected t-test)", "p (Holm)", "verdict", "higher in folds"]
    print(f"\npooled people, by subject ({table.attrs['groups']} subjects, {table.attrs['folds']} folds; verdicts "
          f"by sign flip and corrected t, Holm over {table.attrs['comparisons']}):")
    print(table[cols].round(4).to_markdown())
    by_subject = per_group_table(pooled)
    normal = by_subject[by_subject["class"] == "normal"]["correct"].unstack("group")
    print("\nspecificity of each normal donor, pooled people (share of its cells called normal):")
    print((100 * normal).round(1).to_markdown())
    print("\none call per person, pooled people:")
    print(subject_level_table(by_subject).round(3).to_markdown())
    across = None
    if ds.table["fold"].nunique() >= 2:
        across = cohort_table(evaluate_candidates(ds, candidates, cohorts="fold", seed=a.seed, checkpoint=True),
                              baseline)
        print("\nacross cohorts (trained on the other cohorts, scored on this one):")
        print(across.round(4).to_markdown())
    better = table[(table["verdict"] == "better") & table.index.isin(list(SETTINGS))]
    chosen = better["difference (points)"].idxmax() if len(better) else baseline
    r = table.loc[chosen] if chosen != baseline else None
    measured = {
        "data": f"{len(ds):,} C-NMC cells of {ds.table['patient'].nunique()} people ({people.get(0, 0)} healthy donors), "
                f"folds {', '.join(f'fold_{f}' for f in sorted(set(ds.table['fold'])))}",
        "command": "python benchmarks/cnmc_specificity.py" + (f" --cells-per-subject {a.cells_per_subject}"
                                                              if a.cells_per_subject else ""),
        "candidates": {name: {k: (v if isinstance(v, str) else round(float(v), 6)) for k, v in row.items()
                              if k in cols and pd.notna(v)} for name, row in table.iterrows() if name in SETTINGS},
    }
    if r is None:
        runner_up = table.drop(index=baseline).loc[[n for n in SETTINGS if n != baseline]]
        best = runner_up["difference (points)"].idxmax()
        q = runner_up.loc[best]
        why = (f"no candidate was found better than frozen features alone on pooled people ({measured['data']}): "
               f"{best} differed by {q['difference (points)']:+.1f} points of balanced accuracy, could not tell "
               f"(Holm-adjusted p = {q['p (Holm)']:.2g}; this run could detect about {q['detectable (points)']:.1f} "
               "points); so the plain pipeline")
    else:
        why = (f"{chosen} was better than frozen features alone on pooled people ({measured['data']}): "
               f"{r['difference (points)']:+.1f} points of balanced accuracy (Holm-adjusted p = {r['p (Holm)']:.2g}, "
               "sign-flip test and corrected t-test agreeing)")
    if across is not None and chosen in across.index.get_level_values(0):
        row = across.loc[chosen].iloc[-1]
        why += (f"; trained on {row['trained on']} and scored on the people of {across.loc[chosen].index[-1]}, "
                f"it reached {100 * row['balanced accuracy']:.1f} % balanced accuracy")
    print(f"\nchosen for train --dataset cnmc: {chosen} ({SETTINGS[chosen]}); why: {why}")
    if a.write_defaults:
        out = Path(__file__).resolve().parents[1] / "alllib" / "learn" / "train_defaults.json"
        out.write_text(json.dumps({"cnmc": {"segmentation": "none", **SETTINGS[chosen], "chosen": chosen,
                                            "why": "C-NMC cells come segmented; " + why, "measured": measured}},
                                  indent=1) + "\n")
        print(f"written to {out}")
    print(f"\ntotal: {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

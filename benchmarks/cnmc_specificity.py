"""What raises specificity for people the model has never seen: C-NMC candidates, judged by subject.

    python benchmarks/cnmc_specificity.py                          # every cell of every subject
    python benchmarks/cnmc_specificity.py --cells-per-subject 40   # a quicker subsample

Every candidate runs on the same folds split by subject (:func:`alllib.book.candidates.evaluate_candidates`;
fold_1's 3 normal donors allow 3 folds), on the cells of ``$ALLLIB_DATA``'s C-NMC-2019:

* ``frozen``: EfficientNet-Lite0 features and an SVM tuned by grouped inner CV (the baseline);
* ``+ class weights``: the same SVM with both classes weighing the same in the fit;
* ``+ neighbourhood``: the baseline's decisions corrected by each test cell's 10 nearest test
  cells (Pan et al. 2019; :func:`alllib.learn.neighbours.neighbourhood_correction`);
* ``+ class weights + neighbourhood``;
* ``nucleus features``: 14 hand-crafted nucleus measurements alone (:mod:`alllib.features.nucleus`);
* ``deep + nucleus``: both side by side.

Prints, against the baseline, each candidate's balanced accuracy and weighted F1 with intervals by
a bootstrap over subjects, the paired difference, the corrected t-test and the difference this run
could detect (:func:`alllib.book.candidates.candidates_table`); then each normal donor's
specificity, one by one (:func:`alllib.book.candidates.per_group_table`), and the seconds taken.
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells-per-subject", type=int, default=None, help="cells drawn per subject (default: all)")
    p.add_argument("--search", default="small", choices=["paper", "small", "none"])
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    import pandas as pd

    from alllib.book.candidates import candidates_table, evaluate_candidates, frozen_svm, per_group_table, side_by_side
    from alllib.data import load_dataset
    from alllib.features import Featurizer
    from alllib.features.nucleus import NucleusFeaturizer

    t0 = time.time()
    ds = load_dataset("cnmc").sample_per_group(a.cells_per_subject, seed=a.seed)
    deep = Featurizer("efficientnet_lite0")
    nucleus = NucleusFeaturizer(seed=a.seed)
    deep(ds), nucleus(ds)  # computed once, with progress, before the folds
    print(f"features of {len(ds):,} cells: {time.time() - t0:.0f} s")
    svm = dict(search=a.search)
    candidates = {
        "frozen": frozen_svm(deep, **svm),
        "+ class weights": frozen_svm(deep, class_weight="balanced", **svm),
        "+ neighbourhood": frozen_svm(deep, neighbours=10, **svm),
        "+ class weights + neighbourhood": frozen_svm(deep, class_weight="balanced", neighbours=10, **svm),
        "nucleus features": frozen_svm(nucleus, **svm),
        "deep + nucleus": frozen_svm(side_by_side(deep, nucleus), **svm),
    }
    t1 = time.time()
    results = evaluate_candidates(ds, candidates, n_splits=5, n_repeats=a.repeats, seed=a.seed)
    print(f"{len(candidates)} candidates x {len(results['frozen'].evaluations)} folds: {time.time() - t1:.0f} s")
    pd.set_option("display.width", 200, "display.max_columns", 30)
    for metric in ("balanced accuracy", "weighted f1"):
        table = candidates_table(results, "frozen", metric=metric, seed=a.seed)
        cols = [metric, f"{metric} 95% low", f"{metric} 95% high", "difference (points)",
                "difference low (points)", "difference high (points)", "detectable (points)", "p (corrected t-test)"]
        shown = table[cols].copy()
        shown[cols[:3]] = 100 * shown[cols[:3]]
        print(f"\n{metric}, by subject ({table.attrs['groups']} subjects, {table.attrs['folds']} folds):")
        print(shown.round(2).to_markdown())
    by_subject = per_group_table(results)
    normal = by_subject[by_subject["class"] == "normal"]["correct"].unstack("group")
    print("\nspecificity of each normal donor (share of its cells called normal):")
    print((100 * normal).round(1).to_markdown())
    patients = by_subject[by_subject["class"] == "ALL"]["correct"].unstack("candidate")
    print("\nsensitivity over the ALL patients (mean of per-patient shares, min):")
    print((100 * pd.DataFrame({"mean": patients.mean(), "min": patients.min()})).round(1).to_markdown())
    print(f"\ntotal: {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

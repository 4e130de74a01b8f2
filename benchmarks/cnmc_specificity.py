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
* ``deep + nucleus``: both side by side;
* ``+ augmentation``: the training side balanced with the paper's augmentation (chapter 10's
  honest pipeline), and ``+ stain-jitter augmentation``: the same copies with HED and HSV jitter;
* ``EfficientNet-Lite1`` / ``-Lite2``: the larger offline networks at their native 240 / 260 pixels,
  and ``Lite2 + neighbourhood``;
* with ``--finetune``: EfficientNet-Lite0 fine-tuned from block 14 with the paper's augmentation,
  and from block 10 with stain jitter (``--epochs``, early-stopped).

``--only NAME ...`` runs some of them (the baseline always runs).

Prints, against the baseline, each candidate's balanced accuracy and weighted F1 with intervals by
a bootstrap over subjects, the paired difference, the corrected t-test and the difference this run
could detect (:func:`alllib.book.candidates.candidates_table`); then each normal donor's
specificity, one by one (:func:`alllib.book.candidates.per_group_table`), one call per person
(:func:`alllib.book.candidates.subject_level_table`), and the seconds taken.
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
    p.add_argument("--target-per-class", type=int, default=600, help="training side balanced to at least this")
    p.add_argument("--only", nargs="+", default=None, help="candidates to run besides the baseline")
    p.add_argument("--finetune", action="store_true", help="add the fine-tuned candidates")
    p.add_argument("--epochs", type=int, default=3)
    a = p.parse_args()

    import pandas as pd

    from alllib.augmentation import Augmenter
    from alllib.book.candidates import (
        candidates_table,
        evaluate_candidates,
        frozen_svm,
        per_group_table,
        side_by_side,
        subject_level_table,
    )
    from alllib.data import load_dataset
    from alllib.features import BACKBONES, Featurizer
    from alllib.features.nucleus import NucleusFeaturizer
    from alllib.learn.finetune import finetuned, training_report

    t0 = time.time()
    ds = load_dataset("cnmc").sample_per_group(a.cells_per_subject, seed=a.seed)
    deep = Featurizer("efficientnet_lite0")
    lite = {v: Featurizer(f"efficientnet_lite{v}", size=BACKBONES[f"efficientnet_lite{v}"].native_size) for v in (1, 2)}
    nucleus = NucleusFeaturizer(seed=a.seed)
    svm = dict(search=a.search)
    paper_aug = Augmenter(border="constant", seed=a.seed)
    stain_aug = Augmenter(border="constant", hed=0.05, hue=0.04, saturation=0.2, seed=a.seed)
    grown = dict(target_per_class=a.target_per_class, **svm)
    candidates = {
        "frozen": lambda: frozen_svm(deep, **svm),
        "+ class weights": lambda: frozen_svm(deep, class_weight="balanced", **svm),
        "+ neighbourhood": lambda: frozen_svm(deep, neighbours=10, **svm),
        "+ class weights + neighbourhood": lambda: frozen_svm(deep, class_weight="balanced", neighbours=10, **svm),
        "nucleus features": lambda: frozen_svm(nucleus, **svm),
        "deep + nucleus": lambda: frozen_svm(side_by_side(deep, nucleus), **svm),
        "+ augmentation": lambda: frozen_svm(deep, augmenter=paper_aug, **grown),
        "+ stain-jitter augmentation": lambda: frozen_svm(deep, augmenter=stain_aug, **grown),
        "EfficientNet-Lite1": lambda: frozen_svm(lite[1], **svm),
        "EfficientNet-Lite2": lambda: frozen_svm(lite[2], **svm),
        "Lite2 + neighbourhood": lambda: frozen_svm(lite[2], neighbours=10, **svm),
    }
    if a.finetune:
        candidates["fine-tuned (block14)"] = lambda: finetuned(epochs=a.epochs, augmenter=paper_aug)
        candidates["fine-tuned (block10, stain jitter)"] = lambda: finetuned(epochs=a.epochs, augmenter=stain_aug,
                                                                            trainable_from="block10")
    unknown = set(a.only or ()) - set(candidates)
    if unknown:
        p.error(f"unknown candidates {sorted(unknown)}; choose from {list(candidates)}")
    candidates = {k: make() for k, make in candidates.items() if k == "frozen" or a.only is None or k in a.only}
    t1 = time.time()
    results = evaluate_candidates(ds, candidates, n_splits=5, n_repeats=a.repeats, seed=a.seed)
    print(f"{len(candidates)} candidates x {len(results['frozen'].evaluations)} folds: {time.time() - t1:.0f} s")
    pd.set_option("display.width", 200, "display.max_columns", 30)
    for metric in ("balanced accuracy", "weighted f1"):
        table = candidates_table(results, "frozen", metric=metric, seed=a.seed)
        cols = [metric, f"{metric} 95% low", f"{metric} 95% high", "difference (points)",
                "difference low (points)", "difference high (points)", "detectable (points)", "p (corrected t-test)",
                "better in folds"]
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
    print("\none call per person (held out; ALL, normal or uncertain from the share of cells called blasts):")
    print(subject_level_table(by_subject).round(3).to_markdown())
    for name in (k for k in results if k.startswith("fine-tuned")):
        history, speed = training_report(results[name])
        print(f"\n{name}: {len(results[name].evaluations)} fits, median {speed:.1f} training images/s; best epochs "
              f"{[e.best_params['epoch'] for e in results[name].evaluations]}")
    print(f"\ntotal: {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

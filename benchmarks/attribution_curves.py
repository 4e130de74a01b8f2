"""Which maps beat a random map on every ALL-IDB2 image: chapter 11's sanity checks, at scale.

    python benchmarks/attribution_curves.py                      # every image, the four cheaper kinds
    python benchmarks/attribution_curves.py --cells 40 --kinds "RISE of the decision"
    python benchmarks/attribution_curves.py --dataset cnmc --cells-per-subject 40 --cells 32 --all-kinds

Chapter 11 runs :func:`alllib.attribution.sanity_checks` on a few cells drawn at random (8 in the
quick profile, 32 in the full one). This script runs them on every image of ``$ALLLIB_DATA``'s
ALL-IDB2 (or ``--cells`` drawn at random), unsegmented, with EfficientNet-Lite0 features and an SVM
per slide-grouped fold (:func:`alllib.attribution.attribution_study`), so that the paired tests
against the random smooth map with both fills (one-sided Wilcoxon over the images, Petsiuk et al.
2018) and the randomisation tests against each map's own variant (shuffled weights, shuffled
labels; Adebayo et al. 2018) rest on every image.

By default it tests the kinds that need no more than a few hundred network passes per image
(Grad-CAM at both layers, occlusion of the decision and of the evidence) with 8 deletion steps;
``--kinds``, ``--all-kinds``, ``--steps`` and ``--no-consistency`` change that. ``--dataset cnmc``
runs the same on C-NMC-2019, split by subject. Prints the sanity table
(:func:`alllib.attribution.sanity_table`), the median gains over the random map with each fill, the
nucleus share of the maps that pass, the seconds taken and the peak memory.
"""
from __future__ import annotations

import argparse
import resource
import time


def main() -> None:
    from alllib.attribution import AGREEMENT_KINDS, MAP_KINDS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=None, help="images drawn at random (default: every image)")
    p.add_argument("--dataset", default="all_idb2", choices=["all_idb2", "cnmc"])
    p.add_argument("--cells-per-subject", type=int, default=None, help="C-NMC: cells drawn per subject first")
    p.add_argument("--kinds", nargs="+", default=list(AGREEMENT_KINDS), choices=MAP_KINDS)
    p.add_argument("--all-kinds", action="store_true", help="every kind of chapter 11 (RISE, Integrated Gradients)")
    p.add_argument("--steps", type=int, default=8, help="deletion and insertion steps (chapter 11: 16)")
    p.add_argument("--no-consistency", dest="consistency", action="store_false",
                   help="skip the consistency variants (fewer passes, but then no map can pass randomisation)")
    p.add_argument("--search", default="small", choices=["paper", "small", "none"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--csv", default=None, help="also write every image's rows to this CSV file")
    args = p.parse_args()

    import numpy as np
    import pandas as pd

    from alllib.attribution import FILLS, attribution_study, passing_inside_table, sanity_checks, sanity_table
    from alllib.data import load_dataset
    from alllib.features import FeatureExtractor

    t0 = time.time()
    ds = load_dataset(args.dataset).sample_per_group(args.cells_per_subject, seed=args.seed)
    study = attribution_study(ds, FeatureExtractor("efficientnet_lite0", segmentation=None, seed=args.seed),
                              search=args.search, seed=args.seed)
    print(f"{len(ds)} images; {study.description}; the SVM got {study.table['correct'].mean():.1%} right "
          f"({time.time() - t0:.0f} s)")
    n = len(study.table) if args.cells is None else min(args.cells, len(study.table))
    cells = sorted(np.random.default_rng(args.seed).choice(len(study.table), size=n, replace=False).tolist())
    t1 = time.time()
    kinds = MAP_KINDS if args.all_kinds else args.kinds
    checks = sanity_checks(study, cells, kinds=kinds, steps=args.steps, consistency=args.consistency, seed=args.seed)
    seconds = time.time() - t1
    if args.csv:
        checks.to_csv(args.csv, index=False)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    table = sanity_table(checks)
    print(f"\nsanity checks on {n} images ({seconds:.0f} s, {seconds / n:.1f} s per image):")
    print(table.drop(columns=["cells"]).round(4).to_string())
    for fill in FILLS:
        gains = checks.assign(**{"deletion gain": checks[f"random deletion ({fill})"] - checks[f"deletion ({fill})"],
                                 "insertion gain": checks[f"insertion ({fill})"] - checks[f"random insertion ({fill})"]})
        print(f"\nmedian gains over the random map per kind, {fill} fill:")
        print(gains.groupby("map", sort=False)[["deletion gain", "insertion gain"]].median().round(4).to_string())
    passing = passing_inside_table(checks, table)
    print("\nnucleus share of the maps that pass:" if len(passing) else "\nno map passes all three checks")
    if len(passing):
        print(passing.round(4).to_string())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\ntotal {time.time() - t0:.0f} s; peak memory {peak:.2f} GB")


if __name__ == "__main__":
    main()

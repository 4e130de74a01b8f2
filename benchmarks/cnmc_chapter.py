"""Time and memory of the C-NMC chapter's work at the paper's size, stage by stage.

    python benchmarks/cnmc_chapter.py                       # full profile: every cell, 8,000 + 8,000, paper grid
    python benchmarks/cnmc_chapter.py --cells-per-subject 40 --target 600 --search small   # the quick profile

Runs exactly what chapter 10 runs (:func:`alllib.book.studies.protocol_study`: the paper protocol
and the honest one, with and without augmentation, and the subject probe) with a **cold
feature cache** (a fresh temporary folder; ``--cache DIR`` to reuse one), then prints the
seconds of each stage, the total, the time the paper's augmentation alone takes for the
augmented copies, and the process's peak resident memory. Goals (2 cores, EfficientNet-Lite0):
the whole chapter within 30 minutes, peak RSS within 4 GB.
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells-per-subject", type=int, default=None, help="cells drawn per subject (default: all)")
    p.add_argument("--target", type=int, default=8000, help="cells per class after balancing (the paper's 8,000)")
    p.add_argument("--search", default="paper", choices=["paper", "small", "none"])
    p.add_argument("--repeats", type=int, default=1, help="repeats of the honest protocol")
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--cache", default=None, help="feature cache folder (default: a new, empty one)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    os.environ["ALLLIB_CACHE"] = a.cache or tempfile.mkdtemp(prefix="alllib-cold-cache-")
    print(f"feature cache: {os.environ['ALLLIB_CACHE']}")

    import numpy as np

    from alllib.augmentation import Augmenter, balance
    from alllib.book.studies import protocol_study
    from alllib.data import load_dataset
    from alllib.features import Featurizer
    from alllib.learn.classifiers import n_jobs

    t0 = time.time()
    ds = load_dataset("cnmc").sample_per_group(a.cells_per_subject, seed=a.seed)
    augmenter = Augmenter(border="constant", seed=a.seed)
    study = protocol_study(ds, Featurizer(a.backbone), target_per_class=a.target, augmenter=augmenter,
                           search=a.search, n_repeats=a.repeats, seed=a.seed)
    total = time.time() - t0
    # the augmentation alone: make every augmented copy of the paper protocol's set once
    big = balance(ds, max(a.target, int(np.bincount(ds.labels).max())), augmenter)
    copies = np.flatnonzero(big.table["augmented"].to_numpy())
    sample = copies[:: max(1, len(copies) // 500)]
    t = time.time()
    for i in sample:
        big.image(int(i))
    per_copy = (time.time() - t) / max(1, len(sample))
    t = time.time()
    for i in range(min(len(ds), 500)):
        ds.image(i)
    per_read = (time.time() - t) / min(len(ds), 500)

    print(f"\n{len(ds):,} cells of {ds.table['patient'].nunique()} subjects, target {a.target} per class, "
          f"search {a.search}, {a.repeats} repeat(s), {n_jobs()} jobs")
    print(study.timings.round(1).to_string())
    print(f"\naugmentation alone: {1000 * (per_copy - per_read):.1f} ms per copy beyond reading its source "
          f"({1000 * per_read:.1f} ms), {len(copies):,} copies -> {(per_copy - per_read) * len(copies):.0f} s "
          "(inside the feature stages above)")
    print(f"total {total / 60:.1f} min; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GB")
    print(study.comparison("accuracy").round(4).to_string())
    print(study.comparison("weighted_f1").round(4).to_string())
    print(study.probe.round(4).to_string())


if __name__ == "__main__":
    main()

"""Paper protocol vs honest protocol on a dataset, for SVM, RF and XGBoost, with and without
segmentation: the table of the leakage chapter, as a script.

    python benchmarks/measure_protocols.py --dataset all_idb2 --backbone efficientnet_lite0

Prints, per segmentation setting and classifier: paper-protocol accuracy, honest accuracy with
its 95 % interval, the inflation and both leak counts, then the wall time.
"""
from __future__ import annotations

import argparse
import time

import pandas as pd

from alllib.book.studies import compare_protocols
from alllib.data import load_dataset
from alllib.features import Featurizer
from alllib.learn.protocols import honest_protocol, paper_protocol


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="auto")
    p.add_argument("--backbone", default="auto")
    p.add_argument("--target", type=int, default=750, help="paper protocol: images per class after augmentation")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--splits", type=int, default=5)
    p.add_argument("--search", default="paper", choices=["paper", "small", "none"])
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    ds = load_dataset(a.dataset)
    honest_target = round(a.target * (a.splits - 1) / a.splits)
    tables = []
    t0 = time.time()
    for seg_name, seg in (("none", None), ("kmeans K=3", {"method": "kmeans", "k": 3})):
        featurize = Featurizer(a.backbone, segmentation=seg, seed=a.seed)
        paper = paper_protocol(ds, featurize, target_per_class=a.target, search=a.search, seed=a.seed)
        honest = honest_protocol(ds, featurize, target_per_class=honest_target, n_splits=a.splits,
                                 n_repeats=a.repeats, search=a.search, seed=a.seed)
        t = compare_protocols(paper, honest)
        t.insert(0, "segmentation", seg_name)
        tables.append(t)
        print(f"[{time.time() - t0:.0f} s] done: segmentation {seg_name} ({featurize.description})", flush=True)
    out = pd.concat(tables)
    pct = [c for c in out.columns if "accuracy" in c or "95%" in c]
    out[pct] = (100 * out[pct]).round(2)
    out["inflation (points)"] = out["inflation (points)"].round(2)
    print(f"\n{ds.name}: {len(ds)} originals, {ds.table['group'].nunique()} groups; paper protocol "
          f"{a.target}+{a.target} augmented, split 80/20 by image; honest {a.repeats}x{a.splits}-fold grouped, "
          f"training side augmented to {honest_target}+{honest_target}; SVM grid '{a.search}'\n")
    print(out.to_markdown())
    print(f"\nwall time {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

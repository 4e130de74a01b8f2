"""ALL-IDB2's layers of structure, measured: the honest SVM with duplicate-only and slide grouping,
with and without the paper's segmentation; the acquisition probe; the same-acquisition subset.

    python benchmarks/slide_layers.py                  # one repeat of 5 grouped folds, paper grid
    python benchmarks/slide_layers.py --repeats 2 --search small

Prints one table (balanced accuracy and accuracy of each setting, in percent, with the balanced
accuracy's 95 % interval) and the acquisition probe's balanced accuracy among the blast crops.
The training side of every fold is augmented to ``--target`` per class (600: the paper's 750
after its 80/20 split), EfficientNet-Lite0 features (or ``--backbone``).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from alllib.data import load_dataset
from alllib.features import Featurizer
from alllib.learn.protocols import confound_probe, honest_protocol


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--target", type=int, default=600)
    p.add_argument("--search", default="paper", choices=["paper", "small", "none"])
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    ds = load_dataset("all_idb2")
    same = ds.subset(np.flatnonzero(ds.table["acquisition"] == "2592x1944"))
    rows, probes = [], {}
    for seg_name, seg in (("no segmentation", None), ("K-means segmentation", {"method": "kmeans", "k": 3, "seed": a.seed})):
        featurize = Featurizer(a.backbone, segmentation=seg, seed=a.seed)
        for name, d in (("duplicate groups", ds.regroup("dup_group")), ("slides", ds),
                        ("slides, 2592x1944 slides only", same)):
            t = time.time()
            r = honest_protocol(d, featurize, ["svm"], target_per_class=a.target, n_splits=5, n_repeats=a.repeats,
                                search=a.search, seed=a.seed, progress=False)["svm"].summary()
            rows.append({"segmentation": seg_name, "outer split by": name, "images": len(d),
                         "groups": d.table["group"].nunique(),
                         "balanced accuracy": 100 * r.loc["balanced_accuracy", "value"],
                         "low": 100 * r.loc["balanced_accuracy", "low"], "high": 100 * r.loc["balanced_accuracy", "high"],
                         "accuracy": 100 * r.loc["accuracy", "value"], "seconds": round(time.time() - t)})
            print(rows[-1], flush=True)
        probes[seg_name] = confound_probe(featurize(ds), ds, "acquisition", among_label=1, seed=a.seed)["balanced accuracy"]
    print(pd.DataFrame(rows).round(1).to_string(index=False))
    for seg_name, b in probes.items():
        print(f"acquisition probe among the 130 blast crops ({seg_name}), grouped by slide: "
              f"balanced accuracy {100 * b:.1f} %")


if __name__ == "__main__":
    main()

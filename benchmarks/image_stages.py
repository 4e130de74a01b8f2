"""Benchmark and quality report of the image stages (segmentation, augmentation).

Prints milliseconds per 257x257 image on one core, images per second for an ALL-IDB2-sized
batch, Dice against the synthetic ground truth, and, where ALLLIB_DATA holds the real
ALL-IDB2, the fraction of its images whose mask covers the centred cell.

    python benchmarks/image_stages.py [--n 260]
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import cv2
import numpy as np

from alllib.augmentation import Augmenter
from alllib.data import find_all_idb2, load_all_idb2
from alllib.data.synthetic import make_synthetic
from alllib.segmentation import EmptyMaskWarning, covers_centre, dice, segment

METHODS = {"kmeans K=3": dict(method="kmeans", k=3), "kmeans K=7": dict(method="kmeans", k=7),
           "otsu": dict(method="otsu")}


def per_image_ms(fn, images, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        for img in images:
            fn(img)
        best = min(best, time.perf_counter() - t)
    return 1000 * best / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=260, help="images in the batch (ALL-IDB2 has 260)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ds = make_synthetic(n=args.n, size=257, seed=0)
    images = ds.images()
    masks = [ds.mask(i) for i in range(len(ds))]
    print(f"{args.n} synthetic images of 257x257, one core (cv2 threads = {cv2.getNumThreads()})\n")
    print(f"{'stage':<14}{'ms / image':>12}{'images / s':>12}{'Dice (synthetic)':>18}")
    for name, kw in METHODS.items():
        ms = per_image_ms(lambda im: segment(im, **kw), images)
        d = np.mean([dice(segment(im, return_stages=True, **kw).mask, m) for im, m in zip(images, masks)])
        print(f"{name:<14}{ms:>12.2f}{1000 / ms:>12.0f}{d:>18.3f}")
    aug, rng = Augmenter(seed=0), np.random.default_rng(0)
    ms = per_image_ms(lambda im: aug(im, rng), images)
    print(f"{'augmentation':<14}{ms:>12.2f}{1000 / ms:>12.0f}{'':>18}")

    root = os.environ.get("ALLLIB_DATA")
    if root and find_all_idb2(root):
        real = load_all_idb2(root, near_duplicates=False)
        rimgs = real.images()
        print(f"\nreal ALL-IDB2 ({len(real)} images): fraction whose mask covers the centred cell")
        for name, kw in METHODS.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EmptyMaskWarning)
                segs = [segment(im, return_stages=True, **kw) for im in rimgs]
            cover = np.mean([covers_centre(s.mask) for s in segs])
            print(f"  {name:<12} covers centre {cover:6.1%}   mean coverage {np.mean([s.coverage for s in segs]):6.1%}"
                  f"   empty masks {sum(s.empty for s in segs)}")
    else:
        print("\nreal ALL-IDB2 not found (set ALLLIB_DATA): centre-coverage figures skipped")


if __name__ == "__main__":
    main()

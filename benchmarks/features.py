"""Benchmark of deep-feature extraction on this machine's CPU.

For each backbone it can load, prints images per second batched and with the naive
one-image-per-``predict`` loop common in public notebooks, their ratio; then the time of a
cache hit against a compute; then the peak resident memory of a long synthetic stream.

    python benchmarks/features.py                      # backbones with ImageNet weights here
    python benchmarks/features.py --random-weights     # also the Keras backbones, random weights
    python benchmarks/features.py --stream 16000       # the memory figure for 16,000 images

Speed does not depend on the weights' values, so random weights give honest timings; they are
labelled as such.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speed(name: str, weights: str, n: int, batch: int) -> None:
    from alllib.features import load_backbone

    model, _ = load_backbone(name, weights)
    x = np.random.default_rng(0).uniform(-1, 1, (n, 224, 224, 3)).astype(np.float32)
    model.predict_on_batch(x[:batch])  # warm-up (graph tracing)
    model.predict(x[:1], verbose=0)
    t = time.perf_counter()
    for s in range(0, n, batch):
        model.predict_on_batch(x[s:s + batch])
    batched = n / (time.perf_counter() - t)
    m = max(4, n // 4)
    t = time.perf_counter()
    for i in range(m):
        model.predict(x[i:i + 1], verbose=0)
    naive = m / (time.perf_counter() - t)
    shown = "ImageNet" if weights == "imagenet" else "random (timing only)"
    print(f"{name:<20}{shown:<24}{batched:>10.1f}{naive:>10.1f}{batched / naive:>8.1f}x", flush=True)


def cache(n: int) -> None:
    from alllib.data.synthetic import make_synthetic
    from alllib.features import extract_features

    ds = make_synthetic(n, seed=11)
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        extract_features(ds, "efficientnet_lite0", cache_path=d, progress=False)
        compute = time.perf_counter() - t
        t = time.perf_counter()
        hit = extract_features(ds, "efficientnet_lite0", cache_path=d, progress=False)
        cached = time.perf_counter() - t
    assert hit.computed == 0
    print(f"\ncache, {n} synthetic images, EfficientNet-Lite0: compute {compute:.2f} s, "
          f"cache hit {cached:.3f} s, {compute / cached:.0f}x faster")


def stream(n: int) -> None:
    from alllib.data.synthetic import make_synthetic
    from alllib.features import extract_features

    ds = make_synthetic(n, seed=12)
    t = time.perf_counter()
    f = extract_features(ds, "efficientnet_lite0", cache=False, progress=True)
    dt = time.perf_counter() - t
    print(f"stream of {n} synthetic 257x257 images through EfficientNet-Lite0: {dt:.0f} s "
          f"({n / dt:.1f} img/s incl. image synthesis), features {f.X.nbytes / 2**20:.0f} MiB, "
          f"peak RSS {rss_mb():.0f} MiB (as float32 pixels at 224x224 the images alone would be "
          f"{n * 224 * 224 * 3 * 4 / 2**30:.1f} GiB)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=64, help="images for the speed runs")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--random-weights", action="store_true", help="also time backbones without ImageNet weights here")
    p.add_argument("--stream", type=int, default=0, help="images in the memory run (0: skip)")
    p.add_argument("--only", choices=["speed", "cache", "stream"], help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.only == "stream":
        return stream(a.stream)
    from alllib.features import BACKBONES, imagenet_weights_available

    print(f"CPU cores: {os.cpu_count()}; {a.n} images of 224x224, batch {a.batch}\n")
    print(f"{'backbone':<20}{'weights':<24}{'batched':>10}{'naive':>10}{'ratio':>9}   (images / s)")
    for name in BACKBONES:
        if imagenet_weights_available(name):
            speed(name, "imagenet", a.n, a.batch)
        elif a.random_weights:
            speed(name, "random", a.n, a.batch)
        else:
            print(f"{name:<20}{'(no ImageNet weights here)':<24}")
    cache(a.n)
    if a.stream:
        print()
        subprocess.run([sys.executable, __file__, "--only", "stream", "--stream", str(a.stream)], check=True)


if __name__ == "__main__":
    main()

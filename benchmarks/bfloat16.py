"""bfloat16 against float32 on this machine's CPU: speed, and what it changes in the results.

1. Inference speed (images/s, batches of 32 at 224 x 224) of EfficientNet-Lite0 (real weights)
   and DenseNet-201 (random weights: speed does not depend on the weights' values) in float32 and
   under Keras' ``mixed_bfloat16`` policy, and the training speed of the fine-tuning step.
2. With the real ALL-IDB2 (``$ALLLIB_DATA``) and Lite0's real weights: the cosine similarity of
   each crop's float32 and bfloat16 features, and the honest balanced accuracy of the frozen SVM
   with each, on the same folds split by slide, paired by a bootstrap over slides.

    python benchmarks/bfloat16.py [--batches 3]

The library keeps float32 as the default; ``precision="bfloat16"`` is an option of
``extract_features``, ``load_backbone`` and ``FineTuner``, worth it only where
``cpu_supports_bfloat16()`` (the AVX512_BF16 or AMX_BF16 instructions).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def inference_speed(name: str, weights: str, precision: str, batches: int, batch: int = 32) -> float:
    from alllib.features import load_backbone

    model, _ = load_backbone(name, weights, precision=precision)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 224, 224, 3)).astype(np.float32)
    model.predict_on_batch(x)  # warm-up: graph tracing
    t = time.perf_counter()
    for _ in range(batches):
        model.predict_on_batch(x)
    return batches * batch / (time.perf_counter() - t)


def training_speed(precision: str, batches: int, batch: int = 16) -> float:
    from alllib.learn.finetune import FineTuner

    tuner = FineTuner(precision=precision)
    tuner._build()
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 224, 224, 3)).astype(np.float32)
    y = (np.arange(batch) % 2).astype(np.float32)
    tuner.model_.train_on_batch(x, y)  # warm-up
    t = time.perf_counter()
    for _ in range(batches):
        tuner.model_.train_on_batch(x, y)
    return batches * batch / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=3, help="timed batches per measurement")
    args = ap.parse_args()
    from alllib.features import cpu_supports_bfloat16

    print(f"CPU computes bfloat16 natively (AVX512_BF16 / AMX_BF16): {cpu_supports_bfloat16()}")
    for name, weights in (("efficientnet_lite0", "imagenet"), ("densenet201", "random")):
        f32, bf16 = (inference_speed(name, weights, p, args.batches) for p in ("float32", "bfloat16"))
        print(f"{name} ({weights} weights) inference: float32 {f32:.1f} img/s, bfloat16 {bf16:.1f} img/s, "
              f"speed-up x{bf16 / f32:.2f}")
    f32, bf16 = (training_speed(p, args.batches) for p in ("float32", "bfloat16"))
    print(f"efficientnet_lite0 fine-tuning (last blocks): float32 {f32:.1f} img/s, bfloat16 {bf16:.1f} img/s, "
          f"speed-up x{bf16 / f32:.2f}")

    from alllib.data import DatasetError, load_dataset
    try:
        ds = load_dataset("all_idb2", verbose=False)
    except DatasetError as err:
        print(f"real ALL-IDB2 not available ({err}): no feature or accuracy check")
        return
    from alllib.features import Featurizer, extract_features
    from alllib.learn.candidates import candidates_table, evaluate_candidates, frozen_svm

    a = extract_features(ds, "efficientnet_lite0", progress=False).X
    b = extract_features(ds, "efficientnet_lite0", precision="bfloat16", progress=False).X
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(f"ALL-IDB2, {len(ds)} crops: cosine similarity of float32 and bfloat16 Lite0 features: mean {cos.mean():.5f}, "
          f"min {cos.min():.5f}")
    runs = evaluate_candidates(ds, {p: frozen_svm(Featurizer("efficientnet_lite0", precision=p, progress=False))
                                    for p in ("float32", "bfloat16")}, n_splits=5, progress=False)
    table = candidates_table(runs, "float32")
    r = table.loc["bfloat16"]
    print("honest balanced accuracy (frozen SVM, 5 folds by slide): "
          f"float32 {table.loc['float32', 'balanced accuracy']:.2%}, "
          f"bfloat16 {r['balanced accuracy']:.2%} ({r['difference (points)']:+.1f} points, 95 % interval by slide "
          f"{r['difference low (points)']:+.1f} to {r['difference high (points)']:+.1f}; detectable "
          f"{r['detectable (points)']:.1f} points; corrected t-test p={r['p (corrected t-test)']:.3g})")


if __name__ == "__main__":
    main()

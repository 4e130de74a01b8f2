"""Speed and memory of slide screening: detection alone, then the whole screen with a loaded model.

Detection (read the slide, find its cells) runs first, before any network is loaded, so the
process's peak resident memory after it is detection's own; then the model is loaded and every
slide screened (cells cut, featurised, labelled, the slide called), with the peak after that. The
slides are ALL-IDB1's under ``$ALLLIB_DATA`` where present, else synthetic slides of ALL-IDB1's
size; the model is ``--model`` or one trained here on ALL-IDB2's crops (the synthetic crops without
it). Goal: a slide screened in at most 2 s on 2 cores with the model loaded.

    python benchmarks/screening.py [--model m.alllib] [--repeat 3] [--synthetic 6]
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from alllib.data import DatasetError, load_dataset
from alllib.data.all_idb1 import load_all_idb1
from alllib.data.synthetic import make_synthetic_slides
from alllib.detection import find_cells


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def slides_to_screen(n_synthetic: int):
    try:
        return load_all_idb1(), "ALL-IDB1"
    except DatasetError:
        return make_synthetic_slides(n_synthetic, width=2592, height=1944), "synthetic 2592x1944"


def model_file(path: str | None, real: bool) -> Path:
    if path:
        return Path(path)
    from alllib.learn.modelfile import save_model
    from alllib.learn.training import train_image_classifier

    crops = load_dataset("all_idb2" if real else "synthetic", verbose=False)
    pipe, meta = train_image_classifier(crops, segmentation={"method": "kmeans", "k": 3}, search="small",
                                        progress=False)
    return save_model(Path(tempfile.mkdtemp()) / "bench.alllib", pipe, meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model file (default: train one on ALL-IDB2 here)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the slides (the best is kept)")
    parser.add_argument("--synthetic", type=int, default=6, help="synthetic slides, where ALL-IDB1 is absent")
    args = parser.parse_args()

    slides, what = slides_to_screen(args.synthetic)
    paths = slides.table.get("path")
    print(f"{len(slides)} slides ({what}), {args.repeat} passes, best kept")
    best = np.full(len(slides), np.inf)
    for _ in range(args.repeat):
        for i in range(len(slides)):
            t = time.perf_counter()
            find_cells(slides.image(i))
            best[i] = min(best[i], time.perf_counter() - t)
    print(f"detection (read + find cells): {len(slides) / best.sum():.2f} slides/s, median {np.median(best):.2f} s, "
          f"slowest {best.max():.2f} s; peak RSS {peak_gb():.2f} GB")

    from alllib.learn.modelfile import load_model
    from alllib.learn.screening import screen_files, screen_image

    pipe, meta = load_model(model_file(args.model, what == "ALL-IDB1"))
    screen_image(pipe, slides.image(0), metadata=meta)  # the network's first call builds its graph: not timed
    best = np.full(len(slides), np.inf)
    for _ in range(args.repeat):
        for i in range(len(slides)):
            t = time.perf_counter()
            if paths is not None:
                screen_files(pipe, [paths.iloc[i]], metadata=meta)
            else:
                screen_image(pipe, slides.image(i), metadata=meta)
            best[i] = min(best[i], time.perf_counter() - t)
    print(f"whole screen (read, find, cut, featurise, label, call): {len(slides) / best.sum():.2f} slides/s, median "
          f"{np.median(best):.2f} s, slowest {best.max():.2f} s (goal: 2 s); peak RSS {peak_gb():.2f} GB")


if __name__ == "__main__":
    main()

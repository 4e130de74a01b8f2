"""The paper's 50-point SVM grid with 5-fold CV: plain GridSearchCV against the precomputed-kernel
search of :mod:`alllib.learn.svm_search`, on real deep features.

    python benchmarks/svm_grid.py --dataset cnmc --target 8000 --n-sub 3000
    python benchmarks/svm_grid.py --dataset cnmc --target 8000 --skip-plain      # full size only

The features are those of the C-NMC chapter's paper protocol: the dataset balanced to
``--target`` per class with the paper's augmentation, EfficientNet-Lite0 (or ``--backbone``),
split 80/20 by image. On a random subsample of ``--n-sub`` training images both searches run
on the same folds; the script prints both times, the ratio, whether the score tables and best
parameters are identical, and the largest difference of decision values between the
precomputed-kernel SVC and plain SVC at the best parameters. Then the fast search alone on the
whole training side, with its time and the process's peak RSS.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from alllib.augmentation import Augmenter, balance
from alllib.data import load_dataset
from alllib.features import Featurizer
from alllib.learn.classifiers import SVM_GRID, make_classifier, n_jobs
from alllib.learn.svm_search import fold_kernels, kernel_from_gram, svm_grid_search


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="cnmc")
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--target", type=int, default=8000, help="images per class after augmentation (the paper's 8,000)")
    p.add_argument("--n-sub", type=int, default=3000, help="training images for the plain-vs-fast comparison")
    p.add_argument("--skip-plain", action="store_true", help="only the fast search on the whole training side")
    p.add_argument("--skip-full", action="store_true", help="only the comparison on the subsample")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    ds = load_dataset(a.dataset)
    aug = balance(ds, a.target, Augmenter(border="constant", seed=a.seed))
    t = time.time()
    X = Featurizer(a.backbone)(aug)
    y = aug.labels
    print(f"features: {X.shape} in {time.time() - t:.0f} s (cached features are read, not recomputed)")
    train, _ = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=a.seed)
    grid = SVM_GRID
    svc = make_classifier("svm", a.seed).named_steps["svm"].get_params()
    rows = []
    if not a.skip_plain:
        sub = np.sort(np.random.default_rng(a.seed).choice(train, a.n_sub, replace=False))
        Xs, ys = X[sub], y[sub]
        splits = list(StratifiedKFold(5, shuffle=True, random_state=a.seed).split(Xs, ys))
        t = time.time()
        best_fast, table = svm_grid_search(Xs, ys, splits, grid, svc_params=svc, n_jobs=n_jobs(), progress=True)
        fast = time.time() - t
        print(f"fast search on {a.n_sub}: {fast:.1f} s, best {best_fast}")
        t = time.time()
        gs = GridSearchCV(make_classifier("svm", a.seed), {f"svm__{k}": v for k, v in grid.items()}, cv=splits,
                          n_jobs=n_jobs(), refit=False).fit(Xs, ys)
        plain = time.time() - t
        best_plain = {k.split("__")[1]: v for k, v in gs.best_params_.items()}
        ref = pd.DataFrame({"C": gs.cv_results_["param_svm__C"], "gamma": gs.cv_results_["param_svm__gamma"],
                            "kernel": gs.cv_results_["param_svm__kernel"], "plain": gs.cv_results_["mean_test_score"]})
        same = ref.merge(table, on=["C", "gamma", "kernel"])
        identical = bool((same["plain"] == same["mean_test_score"]).all()) and len(same) == len(ref)
        tr, te = splits[0]
        g_tr, g_te, n_tr, n_te = fold_kernels(Xs, tr, te)
        from sklearn.svm import SVC

        k = dict(kernel=best_fast["kernel"], gamma=best_fast["gamma"])
        pre = SVC(C=best_fast["C"], kernel="precomputed").fit(kernel_from_gram(g_tr, n_tr, n_tr, **k), ys[tr])
        dv_pre = pre.decision_function(kernel_from_gram(g_te, n_te, n_tr, **k))
        pipe = make_classifier("svm", a.seed, C=best_fast["C"], **k).fit(Xs[tr], ys[tr])
        diff = float(np.abs(dv_pre - pipe.decision_function(Xs[te])).max())
        same_sv = bool(np.array_equal(pre.support_, pipe[-1].support_))
        print(f"plain GridSearchCV on {a.n_sub}: {plain:.1f} s, best {best_plain}")
        rows.append({"n": a.n_sub, "plain s": round(plain, 1), "fast s": round(fast, 1), "speed-up": round(plain / fast, 1),
                     "same scores": identical, "same best": best_plain == best_fast, "same support vectors": same_sv,
                     "max |decision difference|": diff})
    if not a.skip_full:
        Xt, yt = X[train], y[train]
        splits = list(StratifiedKFold(5, shuffle=True, random_state=a.seed).split(Xt, yt))
        t = time.time()
        best, _ = svm_grid_search(Xt, yt, splits, grid, svc_params=svc, n_jobs=n_jobs(), progress=True)
        rows.append({"n": len(train), "fast s": round(time.time() - t, 1), "best": best})
        print(f"fast search on {len(train)}: {time.time() - t:.0f} s, best {best}")
        t = time.time()
        make_classifier("svm", a.seed, **best).fit(Xt, yt)
        rows[-1]["plain refit s"] = round(time.time() - t, 1)
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"peak RSS {peak_rss_gb():.2f} GB, {n_jobs()} jobs")


if __name__ == "__main__":
    main()

"""How often each verdict rule says "better" or "worse" when nothing differs, and how often it
finds a planted difference: grouped cross-validations simulated at the group counts the book
meets (:data:`alllib.learn.verdicts.SETTINGS`), with the library's own folds, bootstrap and tests.

Prints, per setting and metric, the false-verdict rate of each rule of
:data:`alllib.learn.verdicts.RULES` with its Monte Carlo standard error, then the power of each
rule against a planted difference (its size in points is measured, not assumed).

    python benchmarks/verdict_calibration.py [--runs 600] [--power-runs 200] [--effect 1.0]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd

from alllib.learn.verdicts import RULES, SETTINGS, simulate_verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=600, help="simulated cross-validations per setting, null")
    parser.add_argument("--power-runs", type=int, default=200, help="simulated cross-validations per setting, planted")
    parser.add_argument("--effect", type=float, default=1.0, help="the planted difference (class shift, in cell SDs)")
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    pd.set_option("display.width", 200)
    t0 = time.time()
    for title, runs, effect in (("no difference (false-verdict rate; calibrated: at most 5 %)", a.runs, 0.0),
                                (f"planted difference, effect {a.effect} (power)", a.power_runs, a.effect)):
        rows = []
        for setting in SETTINGS:
            for metric in ("balanced_accuracy", "weighted_f1"):
                r = simulate_verdicts(setting, runs=runs, effect=effect, metric=metric, seed=a.seed)
                rows.append({"setting": setting.name, "metric": metric, **{k: 100 * r[k] for k in RULES},
                             "difference (points)": r["mean difference (points)"], "runs": runs,
                             "MC se (points)": 100 * r["monte carlo se at 5 %"]})
        print(f"\n{title}, in % of runs:")
        print(pd.DataFrame(rows).set_index(["setting", "metric"]).round(1).to_markdown())
    print(f"\ntotal: {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

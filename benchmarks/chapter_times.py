"""Seconds and peak memory per chapter of a book run, from its manifest; cold against warm.

    python benchmarks/chapter_times.py _build/manifest.json               # one run
    python benchmarks/chapter_times.py cold/manifest.json warm/manifest.json
    python benchmarks/chapter_times.py --run [--profile quick] [--data DIR]
    python benchmarks/chapter_times.py _build/manifest.json --budget .ci/chapter_budget.json

With manifests, one column per manifest (named by its folder). With ``--run`` the book is
executed twice without its HTML, first with an empty feature cache (cold: every feature,
augmented copy, K-means mask and protocol is computed), then again with the cache the first run
filled (warm), and both columns are printed. Each chapter is executed in its own kernel, so its
seconds include starting Python and importing the libraries (about 5 s). The peak memory is the
chapter kernel's largest resident memory (``alllib.book.runner.PeakMemory``), where the manifest
has it.

With ``--budget`` (a JSON file of seconds per chapter and for the whole book, per profile), the
exit status is 1 where a chapter or the whole book took more than ``--margin`` times its budget
(2 by default: a wide margin, for machines slower than the one that set it), and each one that
did is named: CI runs it after building the quick book, so that a chapter that grows is caught
in the landing that made it grow, not six landings later.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd


def chapter_seconds(manifest: str | os.PathLike) -> pd.Series:
    """Seconds of each chapter of one run (the manifest's order), with the run's total."""
    m = json.loads(Path(manifest).read_text())
    s = pd.Series({Path(e["notebook"]).stem: e["seconds"] for e in m["notebooks"]}, dtype=float)
    failed = [Path(e["notebook"]).stem for e in m["notebooks"] if e.get("status") != "ok"]
    if failed:
        print(f"{manifest}: not ok: {', '.join(failed)}", file=sys.stderr)
    return pd.concat([s, pd.Series({"total (chapters)": s.sum(), "total (run)": m.get("total_seconds", float("nan"))})])


def chapter_peaks(manifest: str | os.PathLike) -> pd.Series:
    """Peak memory (GB) of each chapter's kernel in one run, with the largest; empty for a
    manifest written before the runner measured it."""
    m = json.loads(Path(manifest).read_text())
    s = pd.Series({Path(e["notebook"]).stem: e["peak_memory_mb"] / 1024 for e in m["notebooks"]
                   if e.get("peak_memory_mb")}, dtype=float)
    return pd.concat([s, pd.Series({"largest": s.max()})]) if len(s) else s


def run_twice(profile: str, data: str | None) -> dict[str, Path]:
    """The book executed cold then warm, each into its own build folder, sharing one new cache."""
    from alllib.book.runner import run_book

    work = Path(tempfile.mkdtemp(prefix="chapter-times-"))
    os.environ["ALLLIB_CACHE"] = str(work / "cache")
    out = {}
    for name in ("cold", "warm"):
        print(f"{name} run ({profile} profile) into {work / name} ...", file=sys.stderr)
        run_book(profile, data=data, out=work / name, html=False,
                 progress=lambda line: print(line, file=sys.stderr))
        out[name] = work / name / "manifest.json"
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifests", nargs="*", help="manifest.json files of book runs")
    parser.add_argument("--run", action="store_true", help="run the book cold, then warm, and time both")
    parser.add_argument("--profile", default="quick", choices=["quick", "full", "tiny"])
    parser.add_argument("--data", help="data folder (default: $ALLLIB_DATA, else the project's data/)")
    parser.add_argument("--budget", help="a JSON file of seconds per chapter and 'total', per profile")
    parser.add_argument("--margin", type=float, default=2.0, help="how far over its budget a chapter may go")
    args = parser.parse_args(argv)
    manifests = run_twice(args.profile, args.data) if args.run else {
        Path(m).resolve().parent.name or str(m): Path(m) for m in args.manifests}
    if not manifests:
        parser.error("give manifest files, or --run")
    table = pd.DataFrame({name: chapter_seconds(path) for name, path in manifests.items()})
    print("seconds per chapter")
    print(table.round(1).to_string())
    peaks = pd.DataFrame({name: chapter_peaks(path) for name, path in manifests.items()})
    if not peaks.empty:
        print("\npeak memory per chapter (GB)")
        print(peaks.round(2).to_string())
    if not args.budget:
        return 0
    profile = json.loads(Path(next(iter(manifests.values()))).read_text()).get("profile", "quick")
    budget = json.loads(Path(args.budget).read_text()).get(profile, {})
    over = over_budget(table.iloc[:, -1], budget, args.margin)
    for line in over:
        print(f"over budget: {line}", file=sys.stderr)
    if not over:
        print(f"every chapter within {args.margin:g} times its budget ({args.budget}, {profile} profile)")
    return 1 if over else 0


def over_budget(seconds: pd.Series, budget: dict, margin: float = 2.0) -> list[str]:
    """The chapters (and ``"total"``) of a run that took more than ``margin`` times their budget,
    each as a line naming its time and its budget; chapters without a budget are not judged.

    >>> over_budget(pd.Series({"09_leakage": 200.0, "10_cnmc": 50.0, "total (run)": 400.0}),
    ...             {"09_leakage": 70, "10_cnmc": 60, "total": 600})
    ['09_leakage took 200 s, more than 2 times its budget of 70 s: it grew']
    """
    out = []
    for name, limit in budget.items():
        key = "total (run)" if name == "total" else name
        if key in seconds and seconds[key] > margin * limit:
            out.append(f"{name} took {seconds[key]:.0f} s, more than {margin:g} times its budget of {limit} s: it grew")
    return out


if __name__ == "__main__":
    sys.exit(main())

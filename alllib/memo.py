"""Results remembered on disk, keyed by everything that produced them.

A memo is a gzipped JSON file (reading it runs no code, unlike a pickle) under a name made from a
SHA-256 of its inputs: the data, the settings, the :func:`recipe` of what was fitted, and the
:func:`source_digest` of the code that computes, so that a change to any input, or to the code,
computes it again. Memos are written atomically (a temporary file renamed), so a run killed
while writing leaves no half file; one that cannot be read is computed again, and says so.

:func:`alllib.learn.evaluation.cross_validate` keeps one per fold and fitter (``checkpoint=``), so a
long evaluation killed midway resumes at the next fit; :meth:`alllib.book.chapter.Chapter.compare`
keeps one per comparison; chapter 11's sanity checks and map agreement keep one per cell.

>>> recipe({"search": "small", "augmenter": None, "sizes": (1, 2)})
{'augmenter': None, 'search': 'small', 'sizes': [1, 2]}
>>> recipe(lambda ds: ds) is None   # nothing says what it does: never remembered
True
"""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

from alllib.paths import cache_dir, read_regular, shown_path, write_atomic

__all__ = ["DISPLAY_ONLY", "recipe", "with_recipe", "digest", "source_digest", "memo_path", "read_memo", "write_memo",
           "kept"]


def recipe(obj):
    """What defines ``obj`` as plain JSON data, or ``None`` where nothing says.

    Numbers, strings, lists and dicts stand for themselves; an object with a ``recipe``
    attribute (a featurizer, a candidate of :mod:`alllib.learn.candidates`) gives it; a
    scikit-learn estimator (an :class:`~alllib.augmentation.Augmenter`) gives its class and
    parameters. Anything else, a bare function for one, has no recipe: whatever contains it has
    none either.
    """
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item") and not hasattr(obj, "__len__"):  # a numpy scalar
        return obj.item()
    if hasattr(obj, "recipe"):
        return obj.recipe
    if isinstance(obj, (list, tuple)):
        parts = [recipe(v) for v in obj]
        return None if any(p is None and v is not None for p, v in zip(parts, obj)) else parts
    if isinstance(obj, dict):
        parts = {str(k): recipe(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
        return None if any(parts[str(k)] is None and v is not None for k, v in obj.items()) else parts
    if hasattr(obj, "get_params"):
        params = recipe(obj.get_params(deep=False))
        return None if params is None else {type(obj).__name__: params}
    return None


def with_recipe(fn, kind: str, **arguments):
    """``fn`` carrying the recipe ``{kind: arguments}`` (``None`` where an argument has none): how
    the library's candidates, fitters and featurizers say what they are.

    >>> with_recipe(lambda ds: ds, "frozen_svm", search="small").recipe
    {'frozen_svm': {'search': 'small'}}
    """
    parts = recipe(arguments)
    fn.recipe = None if parts is None else {kind: parts}
    return fn


def digest(*parts) -> str:
    """A short SHA-256 of ``parts`` (JSON data), for a memo's name."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


#: The modules that only show results (sentences, figures, the paper's figures) or run the
#: chapters: a change to them leaves the memos valid. Every other module is in :func:`source_digest`,
#: the book's candidates and studies included.
DISPLAY_ONLY = ("book/build.py", "book/lab.py", "book/plots.py", "book/prose/__init__.py", "book/prose/attribution.py",
                "book/prose/display.py", "book/prose/gains.py", "book/prose/protocols.py", "book/reported.py",
                "book/runner.py")


def source_digest() -> str:
    """SHA-256 of the content of every module of the package but :data:`DISPLAY_ONLY`: a change to
    the code that computes a result invalidates the memos."""
    package = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(package.rglob("*.py")):
        name = p.relative_to(package).as_posix()
        if name not in DISPLAY_ONLY:
            h.update(name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def memo_path(checkpoint, kind: str, *parts) -> Path | None:
    """Where a memo of ``kind`` keyed by ``parts`` is kept: in ``checkpoint`` (a folder; ``True``: the
    cache's ``<kind>-v1``, :func:`alllib.paths.cache_dir`), or ``None`` where ``checkpoint`` is
    false (nothing is kept)."""
    if not checkpoint:
        return None
    folder = cache_dir() / f"{kind}-v1" if checkpoint is True else Path(checkpoint)
    return folder / f"{digest(*parts)}.json.gz"


def read_memo(path: Path | None):
    """The JSON data stored at ``path``, or ``None`` (no path, absent, or unreadable: computed again)."""
    if path is None:
        return None
    try:  # a regular file only, never through a link: a FIFO or a device cannot block or redirect the run
        return json.loads(gzip.decompress(read_regular(path, follow=False)))
    except FileNotFoundError:
        return None
    except Exception as err:  # a damaged memo is computed again, and says so
        print(f"alllib: ignoring the unreadable memo {shown_path(path)} ({type(err).__name__}); recomputing")
        return None


def write_memo(path: Path | None, data) -> None:
    """Store ``data`` at ``path`` atomically (nothing where ``path`` is ``None``); a cache that cannot
    be written costs a rerun only."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, default=lambda v: v.item() if hasattr(v, "item") else str(v))
        write_atomic(path, gzip.compress(text.encode(), mtime=0))
    except OSError as err:
        print(f"alllib: could not store a memo in {shown_path(path.parent)} ({err.strerror or err})")


def kept(path: Path | None, compute):
    """The data kept at ``path``, or ``compute()``'s, kept there (``path`` ``None``: computed, not kept)."""
    data = read_memo(path)
    if data is None:
        data = compute()
        write_memo(path, data)
    return data

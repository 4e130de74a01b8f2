"""Results remembered on disk, keyed by everything that produced them.

A memo is a gzipped JSON file (reading it runs no code, unlike a pickle) under a name made from a
SHA-256 of its inputs: the data, the settings, the :func:`recipe` of what was fitted, and the
:func:`source_digest` of the library's core, so that a change to any input, or to the code,
computes it again. Memos are written atomically (a temporary file renamed), so a run killed
while writing leaves no half file; one that cannot be read is computed again, and says so.

:func:`alllib.learn.evaluation.cross_validate` keeps one per fold and fitter (``checkpoint=``), so a
long evaluation killed midway resumes at the next fit; :meth:`alllib.book.chapter.Chapter.compare`
keeps one per comparison.

>>> recipe({"search": "small", "augmenter": None, "sizes": (1, 2)})
{'augmenter': None, 'search': 'small', 'sizes': [1, 2]}
>>> recipe(lambda ds: ds) is None   # nothing says what it does: never remembered
True
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

from alllib.paths import shown_path

__all__ = ["recipe", "digest", "source_digest", "read_memo", "write_memo"]


def recipe(obj):
    """What defines ``obj`` as plain JSON data, or ``None`` where nothing says.

    Numbers, strings, lists and dicts stand for themselves; an object with a ``recipe``
    attribute (a featurizer, a candidate of :mod:`alllib.book.candidates`) gives it; a
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


def digest(*parts) -> str:
    """A short SHA-256 of ``parts`` (JSON data), for a memo's name."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def source_digest() -> str:
    """SHA-256 of the content of every module of the library's core (not the book's layer, whose
    prose and plots do not change a result): a change to the code invalidates the memos."""
    core = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(core.rglob("*.py")):
        if "book" not in p.relative_to(core).parts:
            h.update(str(p.relative_to(core)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def read_memo(path: Path):
    """The JSON data stored at ``path``, or ``None`` (absent, or unreadable: computed again)."""
    try:
        with gzip.open(path, "rt") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except Exception as err:  # a damaged memo is computed again, and says so
        print(f"alllib: ignoring the unreadable memo {shown_path(path)} ({type(err).__name__}); recomputing")
        return None


def write_memo(path: Path, data) -> None:
    """Store ``data`` at ``path`` atomically; a cache that cannot be written costs a rerun only."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        with gzip.open(tmp, "wt") as f:
            json.dump(data, f, default=lambda v: v.item() if hasattr(v, "item") else str(v))
        tmp.replace(path)
    except OSError as err:
        print(f"alllib: could not store a memo in {shown_path(path.parent)} ({err.strerror or err})")

"""Settings read from the environment, checked where they are read.

>>> import os
>>> os.environ["ALLLIB_EXAMPLE"] = "3"
>>> positive_int("ALLLIB_EXAMPLE", 1, "examples")
3
"""
from __future__ import annotations

import os

__all__ = ["positive_int"]


def positive_int(name: str, default: int, what: str) -> int:
    """The environment variable ``name`` as a positive integer (``what`` it counts, for the
    error), or ``default`` where it is unset; anything else raises ``ValueError`` naming it."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} must be a positive integer ({what}), not {raw!r}")
    return value

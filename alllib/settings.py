"""Checks of counts, one rule for all: a positive integer (never a bool), from an argument or from
the environment, with an error that names it.

>>> import os
>>> os.environ["ALLLIB_EXAMPLE"] = "3"
>>> positive_int("ALLLIB_EXAMPLE", 1, "examples")
3
>>> check_positive_int(True, "epochs")
Traceback (most recent call last):
...
ValueError: epochs must be a positive integer, not True
"""
from __future__ import annotations

import numbers
import os

__all__ = ["positive_int", "check_positive_int", "is_count", "MAX_SEED", "is_seed"]

#: The largest seed: numpy's generators take seeds from 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1


def check_positive_int(value, name: str) -> int:
    """``value`` where it is a positive integer (Python's or numpy's, never a bool); ``ValueError``
    naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


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


def is_count(value, most: int | None = None) -> bool:
    """Whether ``value`` is a whole number from 0 (to ``most``), never a bool.

    >>> is_count(3), is_count(True), is_count(-1), is_count(12, most=10)
    (True, False, False, False)
    """
    return (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0
            and (most is None or value <= most))


def is_seed(value) -> bool:
    """Whether ``value`` is a seed numpy takes, a whole number from 0 to :data:`MAX_SEED` (never a bool).

    >>> is_seed(0), is_seed(2**32), is_seed(False)
    (True, False, False)
    """
    return is_count(value, MAX_SEED)

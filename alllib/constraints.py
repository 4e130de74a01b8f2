"""What a parameter may be, declared once, and the one check of it (in the manner of
scikit-learn's ``_param_validation``).

A small vocabulary (:class:`Interval` and :func:`count` for numbers, :data:`SEED`,
:class:`Options`, :class:`InstanceOf`, :class:`Satisfies` for the odd rule), checked by one
function (:func:`validate_params`) that raises :class:`~alllib.errors.ParameterError` naming the
parameter, what it must be and what it was. Estimators declare ``_parameter_constraints`` and
call it from ``check_params``; the chapters' parameters (``alllib.book.parameters.PARAMETERS``) and
the command line (:func:`argparse_type`) use the same constraints. A parameter's constraints are
a list: any one satisfied will do (``[count(), None]``: a count or ``None``).

>>> validate_params({"epochs": 3, "seed": 0}, {"epochs": [count()], "seed": [SEED]}, "FineTuner")
>>> check_param("size", 12000, [Interval(numbers.Integral, 32, 1024)], "FeatureExtractor")
Traceback (most recent call last):
...
alllib.errors.ParameterError: FeatureExtractor: size must be an integer from 32 to 1024, not 12000
>>> import os
>>> os.environ["ALLLIB_EXAMPLE"] = "3"
>>> positive_int("ALLLIB_EXAMPLE", 1, "examples")
3
"""
from __future__ import annotations

import argparse
import numbers
import os
from dataclasses import dataclass
from typing import Callable

from alllib.errors import ParameterError

__all__ = ["Constraint", "Interval", "Options", "InstanceOf", "Satisfies", "count", "SEED", "MAX_SEED", "BOOLEAN",
           "describe", "check_param", "satisfies", "validate_params", "validate_estimator",
           "argparse_type", "check_positive_int", "positive_int",
           "is_count", "is_seed"]

#: The largest seed: numpy's generators take seeds from 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1


class Constraint:
    """One rule a value may satisfy: ``constraint(value)`` says whether it does, ``str(constraint)``
    says the rule in words, and :attr:`breaking` gives values that do not satisfy it (the common
    test sets each parameter to them)."""

    def __call__(self, value) -> bool:
        raise NotImplementedError

    @property
    def breaking(self) -> tuple:
        return ()


@dataclass(frozen=True)
class Interval(Constraint):
    """A number of ``kind`` (``numbers.Integral`` or ``numbers.Real``; never a bool, never NaN)
    from ``low`` to ``high`` (``None``: unbounded), ends included as ``closed`` says."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right" or "neither"

    def __call__(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind) or value != value:  # NaN
            return False
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        return ((self.low is None or value > self.low or (left and value == self.low))
                and (self.high is None or value < self.high or (right and value == self.high)))

    def __str__(self) -> str:
        what = "an integer" if self.kind is numbers.Integral else "a number"
        if self.kind is numbers.Integral and self.high is None and self.low in (0, 1):
            return "a positive integer" if self.low == 1 else "a whole number from 0"
        if self.high == MAX_SEED and self.low == 0:
            return "a seed, an integer from 0 to 2**32 - 1"
        if self.low is not None and self.high is not None:
            if self.closed == "both":
                return f"{what} from {self.low:g} to {self.high:g}"
            return (f"{what} in {'[' if self.closed == 'left' else '('}{self.low:g}, {self.high:g}"
                    f"{']' if self.closed == 'right' else ')'}")
        if self.low is not None:
            return f"{what} {'>=' if self.closed in ('both', 'left') else '>'} {self.low:g}"
        return f"{what} {'<=' if self.closed in ('both', 'right') else '<'} {self.high:g}"

    @property
    def breaking(self) -> tuple:
        out = [True, "1", float("nan")]
        if self.low is not None:
            out.append(self.low - 1 if self.closed in ("both", "left") else self.low)
        if self.high is not None:
            out.append(self.high + 1 if self.closed in ("both", "right") else self.high)
        if self.kind is numbers.Integral:
            out.append(1.5 if self.low is None or self.low <= 1.5 else self.low + 0.5)
        return tuple(out)


def count(low: int = 1, high: int | None = None) -> Interval:
    """An integer from ``low`` (1: a positive integer) to ``high``.

    >>> count()(3), count()(0), count(2)(True), str(count(2))
    (True, False, False, 'an integer >= 2')
    """
    return Interval(numbers.Integral, low, high)


#: A seed numpy takes: a whole number from 0 to :data:`MAX_SEED`.
SEED = count(0, MAX_SEED)


@dataclass(frozen=True)
class Options(Constraint):
    """One of ``values``, of the same type (``True`` is not ``1``, ``None`` only itself).

    >>> Options(("paper", "small"))("small"), Options((None,))(0), str(Options(("a", None)))
    (True, False, "one of 'a', None")
    """

    values: tuple

    def __call__(self, value) -> bool:
        return any(value is v or (type(value) is type(v) and value == v) for v in self.values)

    def __str__(self) -> str:
        return (repr(self.values[0]) if len(self.values) == 1
                else "one of " + ", ".join(map(repr, self.values)))

    @property
    def breaking(self) -> tuple:
        return ("no such option",) if not any(isinstance(v, str) and v == "no such option" for v in self.values) else ()


#: True or False, never 1 or 0.
BOOLEAN = Options((True, False))


@dataclass(frozen=True)
class InstanceOf(Constraint):
    """An instance of ``types`` (a bool is not an ``int`` here), called ``name`` in messages."""

    types: type | tuple
    name: str

    def __call__(self, value) -> bool:
        return isinstance(value, self.types) and not (isinstance(value, bool) and bool not in _tuple(self.types))

    def __str__(self) -> str:
        return self.name

    @property
    def breaking(self) -> tuple:
        return tuple(v for v in (object(), 1.5) if not self(v))


@dataclass(frozen=True)
class Satisfies(Constraint):
    """A rule the vocabulary does not have words for: ``test(value)``, said as ``description``."""

    test: Callable
    description: str
    examples_breaking: tuple = ()

    def __call__(self, value) -> bool:
        try:
            return bool(self.test(value))
        except (TypeError, ValueError):
            return False

    def __str__(self) -> str:
        return self.description

    @property
    def breaking(self) -> tuple:
        return self.examples_breaking


def _tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _as_constraint(spec) -> Constraint:
    """``None`` as ``Options((None,))``, a type as :class:`InstanceOf`, a constraint as itself."""
    if spec is None:
        return Options((None,))
    if isinstance(spec, type):
        return InstanceOf(spec, {str: "text", os.PathLike: "a path"}.get(spec, f"a {spec.__name__}"))
    if isinstance(spec, Constraint):
        return spec
    raise TypeError(f"not a constraint: {spec!r}")


def describe(constraints: list) -> str:
    """The constraints in words: ``"a positive integer or None"``."""
    return " or ".join(str(_as_constraint(c)) for c in constraints)


def check_param(name: str, value, constraints: list, owner: str | None = None):
    """``value`` where it satisfies one of ``constraints``; :class:`ParameterError` naming
    ``owner``, ``name``, the rule and ``value`` otherwise."""
    if not satisfies(value, constraints):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise ParameterError(f"{owner + ': ' if owner else ''}{name} must be {describe(constraints)}, not {shown}")
    return value


def satisfies(value, constraints: list) -> bool:
    """Whether ``value`` satisfies one of ``constraints``."""
    return any(_as_constraint(c)(value) for c in constraints)


def validate_params(params: dict, constraints: dict, owner: str | None = None) -> None:
    """Check every parameter of ``params`` that ``constraints`` declares (see the module)."""
    for name, rules in constraints.items():
        if name in params:
            check_param(name, params[name], rules, owner)


def validate_estimator(estimator):
    """Check every parameter an estimator declares in its class's ``_parameter_constraints``
    (a missing one read as ``None``), naming the class; returns the estimator. What each
    estimator's ``check_params`` calls."""
    constraints = type(estimator)._parameter_constraints
    validate_params({name: getattr(estimator, name, None) for name in constraints}, constraints,
                    type(estimator).__name__)
    return estimator


def argparse_type(constraint: Interval, name: str = "value"):
    """An argparse ``type`` for a number that must satisfy ``constraint``: the text read as its kind
    and checked, a usage error (exit 2) saying the rule otherwise.

    >>> argparse_type(count(2))("1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be an integer >= 2, not 1
    """
    def parse(text: str):
        try:
            value = int(text) if constraint.kind is numbers.Integral else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {constraint}, not {text!r}") from None
        if not constraint(value):
            raise argparse.ArgumentTypeError(f"must be {constraint}, not {value}")
        return value
    parse.__name__ = name  # argparse names the type in its message
    return parse


def check_positive_int(value, name: str) -> int:
    """``value`` where it is a positive integer (Python's or numpy's, never a bool); a
    :class:`ParameterError` (a ``ValueError``) naming ``name`` otherwise.

    >>> check_positive_int(True, "epochs")
    Traceback (most recent call last):
    ...
    alllib.errors.ParameterError: epochs must be a positive integer, not True
    """
    return int(check_param(name, value, [count()]))


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
    return count(0, most)(value)


def is_seed(value) -> bool:
    """Whether ``value`` is a seed numpy takes (:data:`SEED`).

    >>> is_seed(0), is_seed(2**32), is_seed(False)
    (True, False, False)
    """
    return SEED(value)

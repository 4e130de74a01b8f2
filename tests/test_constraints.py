"""Constraints declared once (alllib.constraints): the vocabulary, and a common test over every
estimator that declares ``_parameter_constraints``, in the manner of scikit-learn's
``check_param_validation``: each parameter set to values its rules exclude must be refused with a
message naming the estimator and the parameter; the chapters' parameters and the run profiles
are held to the same rules."""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import numbers
import pkgutil

import pytest

import alllib
from alllib.book.parameters import PARAMETERS, PROFILES, check_parameters
from alllib.constraints import (
    BOOLEAN,
    SEED,
    Interval,
    Options,
    argparse_type,
    check_param,
    count,
    describe,
    satisfies,
)
from alllib.errors import ParameterError


def _classes_with_constraints() -> list[type]:
    found = {}
    for info in pkgutil.walk_packages(alllib.__path__, "alllib."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__.startswith("alllib") and "_parameter_constraints" in vars(cls):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[k] for k in sorted(found)]


ESTIMATORS = _classes_with_constraints()
#: What a class needs besides its defaults to be made at all.
REQUIRED = {"SlideRule": {"false_positives": 1, "negatives": 10}}


def _parameter_names(cls) -> set[str]:
    if dataclasses.is_dataclass(cls):
        return {f.name for f in dataclasses.fields(cls)}
    return set(cls._get_param_names())


def _make(cls, **params):
    if dataclasses.is_dataclass(cls):  # checked when made, as a frozen dataclass must be
        return cls(**{**REQUIRED.get(cls.__name__, {}), **params})
    est = cls(**REQUIRED.get(cls.__name__, {}))
    for name, value in params.items():
        setattr(est, name, value)
    return est.check_params()


def _breaking(rules) -> list:
    out = []
    for rule in rules:
        c = Options((None,)) if rule is None else rule
        out += [v for v in getattr(c, "breaking", ()) if not satisfies(v, rules)]
    return out


def test_every_estimator_is_found():
    names = {cls.__name__ for cls in ESTIMATORS}
    assert {"FeatureExtractor", "FineTuner", "Augmenter", "Segmenter", "Macenko", "SlideRule"} <= names


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_parameter_has_a_rule_and_the_defaults_keep_it(cls):
    assert set(cls._parameter_constraints) == _parameter_names(cls)
    _make(cls)  # the defaults pass


CASES = [(cls, name, bad) for cls in ESTIMATORS for name, rules in cls._parameter_constraints.items()
         for bad in _breaking(rules)]


@pytest.mark.parametrize("cls,name,bad", CASES, ids=[f"{c.__name__}.{n}={b!r}"[:60] for c, n, b in CASES])
def test_every_estimator_refuses_what_its_rules_exclude(cls, name, bad):
    with pytest.raises(ParameterError, match=rf"^{cls.__name__}: {name} must be "):
        _make(cls, **{name: bad})


def test_every_estimator_parameter_has_something_to_break():
    """A rule whose breaking values are all allowed by another rule of the same parameter would
    leave the parameter untested above."""
    untested = [f"{cls.__name__}.{name}" for cls in ESTIMATORS for name, rules in cls._parameter_constraints.items()
                if not _breaking(rules) and not any(isinstance(r, type) for r in rules)]
    assert untested == []


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_every_chapter_parameter_refuses_what_its_rule_excludes(name):
    for bad in _breaking(PARAMETERS[name]) or [object()]:
        with pytest.raises(ParameterError, match=f"parameter '{name}' must be "):
            check_parameters(**{name: bad})


def test_every_profile_value_keeps_its_parameter_rule():
    for profile, values in PROFILES.items():
        for key, value in values.items():
            check_param(f"{profile}: {key}", value, PARAMETERS[key.split(".")[-1]])


def test_intervals_say_their_rule_and_keep_their_ends():
    half_open = Interval(numbers.Real, 0, 1, "left")
    assert str(half_open) == "a number in [0, 1)" and half_open(0) and not half_open(1)
    assert not half_open(float("nan")) and not half_open(True) and not half_open("0.5")
    assert str(count()) == "a positive integer" and str(count(0)) == "a whole number from 0"
    assert str(count(1, 1024)) == "an integer from 1 to 1024" and not count()(2.0)
    assert SEED(2**32 - 1) and not SEED(2**32) and not SEED(-1)
    assert describe([count(), None]) == "a positive integer or None"


def test_options_are_strict_about_type():
    assert BOOLEAN(True) and not BOOLEAN(1) and not BOOLEAN(0)
    assert Options((1, 2))(2) and not Options((1, 2))(True) and not Options(("a",))(b"a")


def test_a_refusal_names_the_owner_the_parameter_the_rule_and_the_value():
    with pytest.raises(ParameterError) as err:
        check_param("zoom", 1.5, [Interval(numbers.Real, 0, 1, "left")], "Augmenter")
    assert str(err.value) == "Augmenter: zoom must be a number in [0, 1), not 1.5"
    assert isinstance(err.value, ValueError) and isinstance(err.value, TypeError) and err.value.exit_code == 2


def test_the_command_line_reads_numbers_by_the_same_rules():
    import argparse

    parse = argparse_type(count(2), "k")
    assert parse("3") == 3
    for text, said in (("1", "must be an integer >= 2, not 1"), ("two", "not 'two'"), ("2.5", "not '2.5'")):
        with pytest.raises(argparse.ArgumentTypeError, match=said):
            parse(text)


@pytest.mark.parametrize("field,bad", [("segmentation", {"k": 1}), ("size", 20), ("size", 2000),
                                       ("interpolation", "bogus"), ("normalisation", "imagenet")])
def test_the_image_transform_keeps_the_extractor_rules(field, bad):
    from alllib.features.extract import ImageTransform

    with pytest.raises(ParameterError, match=f"^ImageTransform: {field} must be "):
        ImageTransform(**{"segmentation": None, "size": 224, "interpolation": "area", "normalisation": "backbone",
                          field: bad})

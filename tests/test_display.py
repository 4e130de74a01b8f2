"""Sentences written from a run's numbers follow the numbers; tables are readable."""
import numpy as np
import pandas as pd
import pytest

from alllib.book.prose import Box, folds_sentence, inflation_sentences, percent_table, probe_sentences


def _table(paper, honest, low, high):
    return pd.DataFrame({"paper protocol accuracy": [paper], "honest accuracy": [honest], "honest 95% low": [low],
                         "honest 95% high": [high], "inflation (points)": [100 * (paper - honest)]},
                        index=pd.Index(["xgboost"], name="classifier"))


@pytest.mark.parametrize("paper,honest,low,high,expected", [
    (0.95, 0.80, 0.70, 0.90, "(+15.0 points, above the honest 95 % interval 70.0-90.0 %)"),
    (0.84, 0.86, 0.72, 0.98, "(-2.0 points, inside the honest 95 % interval 72.0-98.0 %: no measurable inflation)"),
    (0.60, 0.80, 0.75, 0.85, "(-20.0 points, below the honest 95 % interval 75.0-85.0 %: the leak did not help here)"),
])
def test_inflation_sentence_follows_the_numbers(paper, honest, low, high, expected):
    text = inflation_sentences(_table(paper, honest, low, high))
    assert text.startswith(f"For XGBoost, splitting by image scores {100 * paper:.1f} % against {100 * honest:.1f} %")
    assert text.endswith(expected + ".")


def test_probe_sentence_compares_with_chance():
    probe = pd.DataFrame({"subjects": [14, 3], "cells": [3554, 1157], "accuracy": [0.64, 0.36],
                          "chance (largest subject)": [0.21, 0.34], "balanced accuracy": [0.59, 0.35],
                          "chance (1 / subjects)": [1 / 14, 1 / 3]}, index=["all subjects", "normal subjects only"])
    text = probe_sentences(probe)
    assert "Among all subjects (14 subjects, 3,554 cells), the features name a cell's subject correctly 64.0 %" in text
    assert "far above chance (21.0 %" in text and "close to chance (34.0 %" in text


def test_folds_sentence():
    assert "only 3 subjects, so the honest protocol uses 3 folds (not the 5 asked for)" in folds_sentence(
        {"n_splits": 3, "n_splits_asked": 5, "n_repeats": 1})
    assert folds_sentence({"n_splits": 5, "n_splits_asked": 5, "n_repeats": 2}).endswith(
        "repeated 2 times with other shuffles.")


def test_percent_table_is_readable():
    t = pd.DataFrame({"honest accuracy": [0.891304, np.nan], "inflation (points)": [3.456, -1.0],
                      "paper leaks (test sharing a source)": [3160.0, 0.0]}, index=["svm", "rf"])
    html = percent_table(t).to_html()
    assert "89.1 %" in html and "+3.5" in html and "-1.0" in html and "3,160" in html
    assert "nan" not in html.lower() and "0.891304" not in html


def test_box_renders_as_a_box_everywhere():
    box = Box("a <code>file</code> is missing", "warning", title="Note")
    html = box._repr_html_()
    assert 'class="admonition warning"' in html and "border-left" in html and '<p class="admonition-title"' in html
    assert repr(box) == "Note: a file is missing"
    with pytest.raises(ValueError, match="kind must be one of"):
        Box("x", "tip")


def _results(paper, honest, low, high, dataset="all_idb2"):
    """A results_frame-shaped table: two classifiers, each with a paper and an honest row."""
    rows = []
    for name in ("svm", "rf"):
        rows.append({"dataset": dataset, "classifier": name, "metric": "accuracy", "protocol": "paper", "value": paper,
                     "low": float("nan"), "high": float("nan")})
        rows.append({"dataset": dataset, "classifier": name, "metric": "accuracy", "protocol": "honest",
                     "value": honest, "low": low, "high": high})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("paper,honest,low,high,expected", [
    (99.0, 90.0, 85.0, 95.0, "+9.0 points against the honest one on average (accuracy), with the paper-protocol "
                             "value 2 above the honest 95 % interval over 2 classifiers: the leak inflated every "
                             "score beyond what the honest protocol can explain."),
    (89.0, 90.0, 85.0, 95.0, "-1.0 points against the honest one on average (accuracy), with the paper-protocol "
                             "value 2 inside the honest 95 % interval over 2 classifiers: this run cannot tell the "
                             "two protocols apart."),
    (80.0, 90.0, 85.0, 95.0, "-10.0 points against the honest one on average (accuracy), with the paper-protocol "
                             "value 2 below the honest 95 % interval over 2 classifiers: the paper protocol scored "
                             "lower, so this run shows no inflation."),
])
def test_takeaway_follows_the_numbers(paper, honest, low, high, expected):
    from alllib.book.prose import takeaway_sentences

    assert takeaway_sentences(_results(paper, honest, low, high)) == f"On all_idb2, the paper protocol scores {expected}"


@pytest.mark.parametrize("slide,same,expected", [
    (0.80, 0.95, ["split by slide: balanced accuracy 80.0 % against 90.0 % for by duplicate (-10.0 points, "
                  "outside this row's interval)", "same acquisition: balanced accuracy 95.0 % against 80.0 %"]),
    (0.89, 0.88, ["split by slide: balanced accuracy 89.0 % against 90.0 % for by duplicate (-1.0 points, "
                  "inside this row's interval: no measurable difference)"]),
])
def test_layers_sentences_follow_the_numbers(slide, same, expected):
    from alllib.book.prose import layers_sentences

    t = pd.DataFrame({"balanced accuracy": [0.90, slide, same], "balanced 95% low": [0.85, slide - 0.05, same - 0.1],
                      "balanced 95% high": [0.95, slide + 0.05, same + 0.1]},
                     index=pd.Index(["by duplicate", "split by slide", "same acquisition"], name="evaluation"))
    text = layers_sentences(t, {"images": 130, "among": "label 1", "values": "a (73), b (57)", "target": "acquisition",
                                "balanced accuracy": 0.55, "chance": 0.5, "folds": 5})
    for part in expected:
        assert part[0].upper() + part[1:] in text
    assert text.endswith("the features barely tell the acquisitions apart.")

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


def test_the_growth_and_leak_sentences_read_the_protocols_numbers():
    from alllib.book.prose import growth_sentence, leak_sentences

    assert growth_sentence({"n_originals": 24, "n_total": 32}, "cells") == (
        "The paper protocol grew 24 cells to 32 (16 per class), 1.3 per original, before it split.")

    class Run:
        def __init__(self, leak, leaks=0, group_leaks=0, folds=1):
            self.evaluations = [type("E", (), {"leak": leak})()] * folds
            self.leaks, self.group_leaks = leaks, group_leaks

    paper = Run({"n_test": 40, "shared_source": 30, "shared_group": 35, "fraction_shared_source": 0.75,
                 "fraction_shared_group": 0.875})
    said = leak_sentences(paper, Run({}, 0, 2, folds=5))
    assert "30 of 40 test images (75.0%) are copies of, or the source of, a training image" in said
    assert "35 (87.5%) share a group" in said and "2 share a group, over 5 folds" in said


def test_the_cells_and_hardest_subjects_sentences_count_what_the_run_used():
    from alllib.book.prose import cells_sentence, hardest_groups_sentence
    from alllib.data import Dataset

    table = pd.DataFrame({"id": [f"c{i}" for i in range(7)], "label": [1, 1, 1, 0, 0, 1, 0],
                          "patient": ["1", "1", "2", "H3", "H3", "4", "H5"], "fold": [1, 1, 1, 1, 1, 2, 2]})
    ds = Dataset("cnmc", table.assign(group=table["patient"]), lambda row: None, source="made up")
    assert cells_sentence(ds, 20, folds=3) == ("**7 cells of 5 subjects** (3 with ALL, 2 normal; cohorts: fold_1, "
                                               "fold_2; at most 20 cells drawn at random per subject), 3 folds split "
                                               "by subject")
    assert "every cell" in cells_sentence(ds, None)
    held = pd.DataFrame({"label": [1, 0, 1], "n_test": [10, 8, 12], "accuracy": [0.5, 0.25, 0.9]},
                        index=["1", "H3", "2"])
    said = hardest_groups_sentence(held, held.assign(accuracy=[0.95, 0.97, 1.0]), n=2)
    assert said == ("Held out, the hardest subjects for the SVM were H3 (normal, 25.0 % of 8 cells), 1 (ALL, 50.0 % "
                    "of 10 cells); split by image, the lowest subject scored 95.0 %.")


def test_the_nucleus_share_sentences_warn_when_grad_cam_failed_its_checks():
    from alllib.book.prose import attribution_sentences

    inside = pd.DataFrame({"nucleus area": [0.3], "Grad-CAM inside": [0.6], "inside 95% low": [0.5],
                           "inside 95% high": [0.7], "cells": [20]},
                          index=pd.MultiIndex.from_tuples([("no segmentation", "ALL blast")]))
    plain = attribution_sentences(inside)
    assert plain.startswith("With no segmentation, for 20 ALL blast cells") and "leans on the nucleus" in plain
    failed = attribution_sentences(inside, pd.DataFrame({"reads": [False]}, index=["Grad-CAM"]))
    assert failed.startswith("**Grad-CAM did not pass its sanity checks") and failed.endswith(plain)
    assert attribution_sentences(inside, pd.DataFrame({"reads": [True]}, index=["Grad-CAM"])) == plain


def test_a_chapter_stores_tables_as_records(tmp_path):
    from alllib.book.chapter import record

    table = pd.DataFrame({"balanced accuracy": [0.81234567, np.nan], "verdict": ["better", "could not tell"],
                          "reads": [np.True_, False]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)]))
    assert record(table) == {"a | 1": {"balanced accuracy": 0.8123, "verdict": "better", "reads": True},
                             "b | 2": {"verdict": "could not tell", "reads": False}}
    assert record({"x": {"rho": np.float64(0.5), "n": np.int64(8)}}, digits=None) == {"x": {"rho": 0.5, "n": 8}}
    assert record([np.int64(3), 0.123456, "x"]) == [3, 0.1235, "x"]
    import json

    json.dumps(record(table), allow_nan=False)  # plain JSON: no numpy scalars, no NaN
    from alllib.book.chapter import Chapter

    ch = Chapter("00_test", dataset="synthetic", n_synthetic=8, results_dir=str(tmp_path))
    ch.save(None, table=table, probe={"folds": np.int64(5), "chance": 0.5}, shape=[2, 3])
    stored = json.loads((tmp_path / "00_test.json").read_text())
    assert stored["table"] == record(table) and stored["probe"] == {"folds": 5, "chance": 0.5}
    assert stored["shape"] == [2, 3]

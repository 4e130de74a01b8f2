"""The paper's figures as data, and the side-by-side tables."""
import numpy as np
import pandas as pd
import pytest

from alllib.book.reported import PAPER_SVM_BEST, paper_shape, reported, results_frame

from .conftest import protocol_result


def test_reported_figures_match_the_paper_page():
    t3 = reported("III", "cnmc").set_index(["classifier", "condition"])["value"]
    assert t3[("svm", "test")] == 99.13 and t3[("xgboost", "test")] == 98.0
    t4 = reported("IV", "all_idb2", classifier="svm").set_index("backbone")["value"]
    assert t4["mobilenetv2"] == 71.90 and t4["densenet201"] == 100
    assert len(reported("VII")) == 36 and len(reported("VIII")) == 12
    assert reported("VI", classifier="svm", metric="roc_auc")["value"].item() == 99.96
    assert PAPER_SVM_BEST == {"C": 10, "gamma": 0.01, "kernel": "rbf"}
    with pytest.raises(ValueError, match="unknown column"):
        reported(colour="red")


def test_paper_shape_places_ours_beside_reported():
    ours = pd.concat([results_frame(protocol_result("paper", [0.9]), dataset="all_idb2", backbone="efficientnet_lite0"),
                      results_frame(protocol_result("honest", [0.8, 0.7, 0.75]), dataset="all_idb2",
                                    backbone="efficientnet_lite0")])
    t = paper_shape("V", ours, "all_idb2")
    assert t.loc[("svm", "reported (DenseNet-201)"), "accuracy"] == 100
    assert t.loc[("svm", "paper protocol (EfficientNet-Lite0)"), "accuracy"] == pytest.approx(90)
    assert t.loc[("svm", "honest (EfficientNet-Lite0)"), "accuracy"] == pytest.approx(75)
    # figures we did not compute are absent, never filled in
    assert ("rf", "paper protocol (EfficientNet-Lite0)") not in t.index and ("rf", "reported (DenseNet-201)") in t.index


def test_paper_shape_keeps_the_paper_network_of_multi_network_tables():
    """Table VII reports six networks: ours stand beside DenseNet-201's rows, no average of six."""
    ours = results_frame(protocol_result("paper", [0.9]), dataset="all_idb2", backbone="efficientnet_lite0", condition="seg")
    t = paper_shape("VII", ours, "all_idb2", columns="condition")
    dn = reported("VII", "all_idb2", backbone="densenet201", classifier="svm").set_index("condition")["value"]
    assert t.loc[("svm", "reported (DenseNet-201)"), "seg"] == dn["seg"]
    assert t.loc[("svm", "reported (DenseNet-201)"), "noseg"] == dn["noseg"]
    assert list(t.columns) == ["seg", "noseg"]


def test_train_condition_uses_training_metrics():
    f = results_frame(protocol_result("paper", [0.9]), dataset="cnmc", backbone="densenet201", condition="train")
    assert (f["condition"] == "train").all()
    with pytest.raises(ValueError, match="no training metrics"):
        res = protocol_result("honest", [0.8])
        res["svm"].evaluations[0].train_metrics = None
        results_frame(res, dataset="cnmc", backbone="densenet201", condition="train")


def test_paper_shape():
    from alllib.book.reported import paper_shape

    ours = pd.concat([results_frame(protocol_result("paper", [0.9]), dataset="cnmc", backbone="densenet201",
                                    condition="aug"),
                      results_frame(protocol_result("honest", [0.8, 0.7]), dataset="cnmc", backbone="densenet201",
                                    condition="aug")])
    t = paper_shape("VIII", ours, "cnmc", columns="condition")
    assert list(t.columns) == ["aug", "noaug"]
    assert t.loc[("svm", "reported (DenseNet-201)"), "aug"] == 99.13
    assert t.loc[("svm", "paper protocol (DenseNet-201)"), "aug"] == 90
    assert t.loc[("svm", "honest (DenseNet-201)"), "aug"] == pytest.approx(75)
    assert np.isnan(t.loc[("svm", "honest (DenseNet-201)"), "noaug"])
    assert ("rf", "reported (DenseNet-201)") in t.index and len(t) == 5  # reported rows for all three, ours for svm only
    six = paper_shape("VI", ours.assign(condition="test"), "cnmc")
    assert list(six.columns)[:2] == ["accuracy", "specificity"] and six.loc[("svm", "reported (DenseNet-201)"), "f1"] == 99.1
    # a stand-in network is named on its own rows, never under the paper's network
    lite = results_frame(protocol_result("paper", [0.9]), dataset="cnmc", backbone="efficientnet_lite0", condition="test")
    rows = paper_shape("VI", lite, "cnmc").index.get_level_values("figure").unique().tolist()
    assert rows == ["reported (DenseNet-201)", "paper protocol (EfficientNet-Lite0)"]

"""The book's figures: each draws what its data says (bar heights, points, cells), not just a figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from alllib.book import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _heights(ax) -> list[float]:
    return [round(p.get_height(), 6) for p in ax.patches]


def test_show_images_draws_one_panel_per_image_with_its_title():
    imgs = [np.full((4, 4, 3), v, np.uint8) for v in (0, 128, 255)]
    fig = plots.show_images(imgs, titles=["a", "b", "c"], ncols=2)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 3 and [ax.get_title() for ax in shown] == ["a", "b", "c"]
    assert shown[1].images[0].get_array()[0, 0, 0] == 128


def test_roc_curves_one_line_per_classifier_from_0_to_1():
    y = np.array([0, 0, 1, 1])
    fig = plots.roc_curves({"perfect": (y, np.array([0.1, 0.2, 0.8, 0.9])), "random": (y, np.array([0.5] * 4))})
    lines = [ln for ln in fig.axes[0].lines if ln.get_label() and not ln.get_label().startswith("_")]
    assert len(lines) >= 2 and all(ln.get_xdata()[0] == 0 and ln.get_xdata()[-1] == 1 for ln in lines[:2])


def test_confusion_heatmap_shows_the_counts():
    fig = plots.confusion_heatmap([0, 0, 1, 1, 1], [0, 1, 1, 1, 0])
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["1", "1", "1", "2"]


def test_feature_map_one_point_per_image_per_class_and_rejects_unknown_methods():
    X = np.random.default_rng(0).normal(size=(12, 5))
    y = np.array([0] * 5 + [1] * 7)
    fig = plots.feature_map(X, y)
    assert [len(c.get_offsets()) for c in fig.axes[0].collections] == [5, 7]
    with pytest.raises(ValueError, match="method must be 'pca' or 'tsne'"):
        plots.feature_map(X, y, method="umap")


def test_compare_bars_heights_and_honest_error_bars():
    table = pd.DataFrame({"reported": [100.0, 98.0], "paper protocol": [99.0, 97.0], "honest": [80.0, 70.0],
                          "honest 95% low": [75.0, 60.0], "honest 95% high": [85.0, 80.0]}, index=["svm", "rf"])
    fig = plots.compare_bars(table)
    assert _heights(fig.axes[0]) == [100.0, 98.0, 99.0, 97.0, 80.0, 70.0]
    from matplotlib.container import ErrorbarContainer

    bars = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 1  # the honest bars, and only they, carry their intervals
    segments = bars[0].lines[2][0].get_segments()
    assert [(s[0][1], s[1][1]) for s in segments] == [(75.0, 85.0), (60.0, 80.0)]


def test_group_counts_per_subject_coloured_by_class():
    from alllib.data import Dataset

    t = pd.DataFrame({"id": list("abcdef"), "label": [1, 1, 1, 0, 0, 1], "group": list("xxyzzw"),
                      "patient": list("xxyzzw")})
    fig = plots.group_counts(Dataset("t", t, lambda r: None))
    assert _heights(fig.axes[0]) == [2, 1, 1, 2]


def test_interval_plot_sorted_with_its_intervals():
    table = pd.DataFrame({"balanced accuracy": [0.9, 0.7], "balanced accuracy 95% low": [0.85, 0.6],
                          "balanced accuracy 95% high": [0.95, 0.8]}, index=["best", "worst"])
    fig = plots.interval_plot(table, unit="slides")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["worst", "best"]
    assert list(ax.lines[0].get_xdata()) == [70.0, 90.0] and "slides" in ax.get_xlabel()


def test_probe_and_per_group_bars_show_percentages():
    probe = pd.DataFrame({"accuracy": [0.5], "balanced accuracy": [0.4], "chance (largest subject)": [0.2],
                          "chance (1 / subjects)": [0.1], "subjects": [10]}, index=["all subjects"])
    assert _heights(plots.probe_bars(probe).axes[0]) == [50.0, 40.0, 20.0, 10.0]
    per = pd.DataFrame({"label": [1, 0], "accuracy": [0.9, 0.25]}, index=["P1", "H1"])
    assert sorted(_heights(plots.per_group_bars({"honest": per}).axes[0])) == [25.0, 90.0]


def test_cells_by_subject_shows_each_subjects_first_cells_patients_first_without_the_border():
    from alllib.data import Dataset

    table = pd.DataFrame({"id": [f"c{i}" for i in range(7)], "label": [0, 0, 0, 1, 1, 1, 1],
                          "patient": ["H1", "H1", "H1", "2", "2", "3", "3"]})
    images = {f"c{i}": np.pad(np.full((6, 6, 3), 10 * i, np.uint8), ((3, 3), (3, 3), (0, 0))) for i in range(7)}
    ds = Dataset("cnmc", table.assign(group=table["patient"]), lambda row: images[row["id"]], source="made up")
    fig = plots.cells_by_subject(ds, per_subject=2)
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == ["2 (ALL)", "2 (ALL)", "3 (ALL)", "3 (ALL)", "H1 (normal)", "H1 (normal)"]
    cell = shown[2].images[0].get_array()  # subject 3's first cell, 6 pixels in a black border 3 wide
    assert cell.shape[:2] == (8, 8) and cell[0, 0, 0] == 0 and cell[1, 1, 0] == 50  # the centre two thirds

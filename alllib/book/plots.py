"""Figures of the book: image grids, ROC curves, confusion matrices, feature maps, comparisons.

Every function draws on a Matplotlib axis (made if not given) and returns the figure, so a
chapter can show it and a script can save it.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.metrics import confusion_matrix, roc_curve

from alllib.learn.predict import LABEL_NAMES

__all__ = ["ranking_plot", "show_images", "roc_curves", "confusion_heatmap", "feature_map", "compare_bars",
           "results_bars", "group_counts", "cells_by_subject", "per_group_bars", "probe_bars", "attribution_grid",
           "agreement_plot", "interval_plot", "slide_screen", "slide_calls"]


def _axis(ax, figsize=(5, 4)):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    return ax.figure, ax


def show_images(images, titles=None, ncols: int = 6, size: float = 2.0, cmap=None, suptitle: str | None = None):
    """A grid of images (RGB or single-channel) with optional titles."""
    images = list(images)
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    ncols = min(ncols, n) or 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, img in enumerate(images):
        ax = axes.ravel()[i]
        ax.imshow(img, cmap=cmap if img.ndim == 2 else None)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def roc_curves(curves: dict, ax=None, title: str = "ROC curves"):
    """ROC curves of several classifiers on one axis: ``{name: (y_true, scores)}``."""
    from sklearn.metrics import roc_auc_score

    fig, ax = _axis(ax, (5, 5))
    for name, (y, s) in curves.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, s):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set(xlabel="false positive rate (1 - specificity)", ylabel="true positive rate (sensitivity)", title=title,
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return fig


def confusion_heatmap(y_true, y_pred, ax=None, title: str = "", normalize: bool = False):
    """The confusion matrix as a heatmap, rows = truth, columns = prediction."""
    fig, ax = _axis(ax, (3.6, 3.2))
    cm = confusion_matrix(y_true, y_pred, labels=[0, 1])
    data = cm / cm.sum(axis=1, keepdims=True) if normalize else cm
    sns.heatmap(data, annot=True, fmt=".2f" if normalize else "d", cmap="Blues", cbar=False, ax=ax,
                xticklabels=[LABEL_NAMES[0], LABEL_NAMES[1]], yticklabels=[LABEL_NAMES[0], LABEL_NAMES[1]])
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return fig


def feature_map(X, y, ax=None, method: str = "pca", title: str = "", seed: int = 0):
    """A 2-D projection of deep features coloured by class (PCA, or t-SNE with ``method="tsne"``)."""
    from sklearn.preprocessing import StandardScaler

    Z = StandardScaler().fit_transform(np.asarray(X))
    if method == "pca":
        from sklearn.decomposition import PCA

        Z = PCA(2, random_state=seed).fit_transform(Z)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        Z = TSNE(2, random_state=seed, perplexity=min(30, max(5, len(Z) // 5))).fit_transform(Z)
    else:
        raise ValueError(f"method must be 'pca' or 'tsne', not {method!r}")
    fig, ax = _axis(ax, (5, 4.5))
    for label in (0, 1):
        m = np.asarray(y) == label
        ax.scatter(Z[m, 0], Z[m, 1], s=12, alpha=0.7, label=LABEL_NAMES[label])
    ax.set(title=title or f"{method.upper()} of the features", xlabel="component 1", ylabel="component 2")
    ax.legend()
    return fig


def compare_bars(table: pd.DataFrame, columns=("reported", "paper protocol", "honest"), ax=None,
                 title: str = "", ylabel: str = "accuracy (%)"):
    """Grouped bars of reported vs reproduced vs honest, one group per row of ``table``.

    Where ``table`` has ``honest 95% low`` / ``high``, the honest bars carry error bars.
    """
    cols = [c for c in columns if c in table.columns]
    fig, ax = _axis(ax, (max(5, 0.9 * len(table) + 2), 4))
    x = np.arange(len(table))
    w = 0.8 / max(1, len(cols))
    for i, c in enumerate(cols):
        vals = table[c].to_numpy(float)
        err = None
        if c == "honest" and {"honest 95% low", "honest 95% high"} <= set(table.columns):
            err = np.vstack([vals - table["honest 95% low"].to_numpy(float),
                             table["honest 95% high"].to_numpy(float) - vals])
        ax.bar(x + (i - (len(cols) - 1) / 2) * w, vals, w, label=c, yerr=err, capsize=3)
    labels = [" / ".join(str(v) for v in (idx if isinstance(idx, tuple) else (idx,))) for idx in table.index]
    ax.set_xticks(x, labels, rotation=30, ha="right")
    lo = np.nanmin(table[cols].to_numpy(float)) if len(table) else 0
    ax.set(ylabel=ylabel, title=title, ylim=(max(0, min(50, lo - 5)), 101))
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def results_bars(frame: pd.DataFrame, index=("classifier",), reported: pd.Series | None = None,
                 metric: str = "accuracy", title: str = "", ax=None):
    """:func:`compare_bars` of a :func:`alllib.book.reported.results_frame` table: one bar per
    protocol (honest with its interval), plus the paper's figure where ``reported`` (a Series on
    the same ``index``) is given."""
    part = frame[frame["metric"] == metric]
    table = part.pivot_table(index=list(index), columns="protocol", values="value")
    table = table.rename(columns={"paper": "paper protocol"})
    honest = part[part["protocol"] == "honest"]
    if len(honest):
        bounds = honest.pivot_table(index=list(index), values=["low", "high"])
        table["honest 95% low"], table["honest 95% high"] = bounds["low"], bounds["high"]
    if reported is not None:
        table["reported"] = reported.reindex(table.index)
    return compare_bars(table, ax=ax, title=title, ylabel=f"{metric.replace('_', ' ')} (%)")


def group_counts(ds, column: str = "patient", ax=None, title: str = "Cells per subject"):
    """Images per ``column`` value (per C-NMC subject), coloured by class, largest first."""
    t = ds.table.groupby(column).agg(cells=("id", "size"), label=("label", "first")).sort_values(
        ["label", "cells"], ascending=[False, False])
    fig, ax = _axis(ax, (max(5, 0.45 * len(t) + 2), 3.5))
    colours = {1: "tab:red", 0: "tab:blue"}
    ax.bar(t.index.astype(str), t["cells"], color=[colours[int(v)] for v in t["label"]])
    for label, colour in colours.items():
        ax.bar([], [], color=colour, label=LABEL_NAMES[label])
    ax.set(xlabel=column, ylabel="cells", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def cells_by_subject(ds, per_subject: int = 4, column: str = "patient", ncols: int = 8, size: float = 1.3):
    """The first ``per_subject`` cells of every subject, patients first, each cut to its centre two
    thirds (the cell, less the black border of a C-NMC image) and titled with its subject and class."""
    shown = ds.table.groupby(column, sort=False).head(per_subject)
    shown = shown.assign(order=shown["label"].map({1: 0, 0: 1})).sort_values(["order", column])
    crops = [im[im.shape[0] // 6: -(im.shape[0] // 6) or None, im.shape[1] // 6: -(im.shape[1] // 6) or None]
             for im in (ds.image(ds.table.index.get_loc(i)) for i in shown.index)]
    return show_images(crops, titles=[f"{p} ({'ALL' if v else 'normal'})" for p, v in zip(shown[column], shown["label"])],
                       ncols=ncols, size=size,
                       suptitle=f"{per_subject} cells per subject (centre two thirds of each image)")


def per_group_bars(tables: dict, ax=None, title: str = "Accuracy per subject", column: str = "accuracy"):
    """Side-by-side bars of :func:`alllib.learn.protocols.per_group_accuracy` tables (one per protocol),
    one group of bars per subject, subjects of each class together; the class shows in the label."""
    names = list(tables)
    base = tables[names[0]]
    order = base.sort_values(["label", column], ascending=[False, True]).index
    fig, ax = _axis(ax, (max(6, 0.6 * len(order) + 2), 4))
    x = np.arange(len(order))
    w = 0.8 / len(names)
    for i, name in enumerate(names):
        vals = 100 * tables[name].reindex(order)[column].to_numpy(float)
        ax.bar(x + (i - (len(names) - 1) / 2) * w, vals, w, label=name)
    labels = [f"{g}\n({'ALL' if base.loc[g, 'label'] == 1 else 'normal'})" for g in order]
    ax.set_xticks(x, labels, fontsize=8)
    ax.axhline(50, color="grey", lw=0.8, ls=":")
    ax.set(ylabel=f"{column.replace('_', ' ')} (%)", ylim=(0, 102), title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def probe_bars(probe: pd.DataFrame, ax=None, title: str = "Which subject is this cell from?"):
    """A :func:`alllib.learn.protocols.subject_probe` table: accuracy of naming the subject against
    the two chance levels, per task."""
    cols = ["accuracy", "balanced accuracy", "chance (largest subject)", "chance (1 / subjects)"]
    fig, ax = _axis(ax, (7, 3.5))
    x = np.arange(len(probe))
    w = 0.8 / len(cols)
    for i, c in enumerate(cols):
        ax.bar(x + (i - (len(cols) - 1) / 2) * w, 100 * probe[c].to_numpy(float), w, label=c,
               color=None if i < 2 else ("0.6" if i == 2 else "0.8"))
    ax.set_xticks(x, [f"{t}\n({int(n)} subjects)" for t, n in zip(probe.index, probe["subjects"])], fontsize=9)
    ax.set(ylabel="%", ylim=(0, 102), title=title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def attribution_grid(study, picks: dict[str, list[int]], occlusions: dict[int, np.ndarray] | None = None,
                     size: float = 2.0, suptitle: str | None = None):
    """Cells chosen by the run (``picks``: a heading -> row positions of ``study.table``), one
    column each: the network's view with the nucleus mask's outline, its Grad-CAM, and (where
    given) its occlusion map, both over the image."""
    import cv2

    cells = [(head, i) for head, idx in picks.items() for i in idx]
    rows = 3 if occlusions else 2
    fig, axes = plt.subplots(rows, max(1, len(cells)), figsize=(size * max(1, len(cells)), size * rows + 0.6),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for col, (head, i) in enumerate(cells):
        r = study.table.iloc[i]
        img = study.pixels[i]
        outline = img.copy()
        contours, _ = cv2.findContours(study.masks[i].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(outline, contours, -1, (0, 255, 0), 1)
        axes[0, col].imshow(outline)
        axes[0, col].set_title(f"{head}\n{r['id']}: {LABEL_NAMES[int(r['label'])]}\nSVM: {LABEL_NAMES[int(r['pred'])]} "
                               f"({r['score']:+.2f})", fontsize=8)
        axes[1, col].imshow(img)
        axes[1, col].imshow(study.cam(i), cmap="jet", alpha=0.45)
        axes[1, col].set_title(f"Grad-CAM: {100 * r['cam_inside']:.0f} % in nucleus", fontsize=8)
        if occlusions and i in occlusions:
            occ = occlusions[i]
            axes[2, col].imshow(img)
            axes[2, col].imshow(occ, cmap="bwr", alpha=0.5, vmin=-np.abs(occ).max(), vmax=np.abs(occ).max())
            axes[2, col].set_title("occlusion (red: supports)", fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def agreement_plot(agreement: pd.DataFrame, suptitle: str | None = None):
    """Left: the median rank correlation of every pair of map kinds
    (:func:`alllib.attribution.agreement_matrix`); right: each pair's correlations image by image,
    so that a median is read with its spread."""
    from alllib.attribution import agreement_matrix

    matrix = agreement_matrix(agreement)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 1.3]})
    sns.heatmap(matrix, vmin=-1, vmax=1, cmap="vlag", annot=True, fmt=".2f", square=True, cbar=False, ax=left)
    left.set_title("median Spearman rho between maps", fontsize=10)
    pairs = agreement.assign(pair=agreement["first"] + " / " + agreement["second"]).dropna(subset=["rho"])
    order = pairs.groupby("pair")["rho"].median().sort_values(ascending=False).index  # flat maps rank nothing
    sns.boxplot(data=pairs, y="pair", x="rho", order=order, color="0.85", fliersize=0, ax=right)
    sns.stripplot(data=pairs, y="pair", x="rho", order=order, size=2.5, alpha=0.6, ax=right)
    right.axvline(0, color="0.5", lw=0.8)
    right.set(xlim=(-1, 1), xlabel="Spearman rho, image by image", ylabel="")
    right.set_title(f"{agreement['id'].nunique()} images", fontsize=10)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def interval_plot(table: pd.DataFrame, metric: str = "balanced accuracy", ax=None, title: str = "",
                  unit: str = "groups"):
    """Each row's ``metric`` (a fraction) with its 95 % interval (columns ``<metric> 95% low`` and
    ``<metric> 95% high``, as :func:`alllib.learn.candidates.candidates_table` gives them), sorted,
    in percent."""
    fig, ax = _axis(ax, (7, 0.45 * len(table) + 1))
    order = table[metric].sort_values().index
    value = 100 * table.loc[order, metric]
    low, high = 100 * table.loc[order, f"{metric} 95% low"], 100 * table.loc[order, f"{metric} 95% high"]
    ax.errorbar(value, range(len(order)), xerr=[value - low, high - value], fmt="o", capsize=3)
    ax.set(yticks=range(len(order)), yticklabels=order, title=title,
           xlabel=f"{metric} (%), 95 % interval by a bootstrap over {unit}")
    fig.tight_layout()
    return fig


def ranking_plot(tables: dict[str, pd.DataFrame], *, within: str = "within", across: str = "across",
                 suptitle: str | None = None):
    """One scatter per ranking (name -> a :func:`alllib.learn.cohorts.ranking_table` or
    :func:`~alllib.learn.cohorts.grid_transfer`): each entry's score by cross-validation within
    one cohort (x) against its score on another cohort's people (y), the diagonal, the first
    choice within circled, and the Spearman correlation in the title."""
    import matplotlib.pyplot as plt
    from scipy.stats import spearmanr

    fig, axes = plt.subplots(1, len(tables), figsize=(5.2 * len(tables), 4.4), squeeze=False)
    for ax, (name, t) in zip(axes[0], tables.items()):
        ax.scatter(100 * t["within"], 100 * t["across"], s=28, alpha=0.8)
        if len(t) <= 12:  # few enough to name each one
            for name, r in t.iterrows():
                ax.annotate(str(name), (100 * r["within"], 100 * r["across"]), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        best = t["within"].idxmax()
        ax.scatter([100 * t.loc[best, "within"]], [100 * t.loc[best, "across"]], s=160, facecolors="none",
                   edgecolors="crimson", linewidths=1.5, label=f"first within: {best}")
        lo = 100 * min(t["within"].min(), t["across"].min()) - 2
        hi = 100 * max(t["within"].max(), t["across"].max()) + 2
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
        rho = spearmanr(t["within"], t["across"]).statistic if len(t) >= 3 else float("nan")
        ax.set(xlabel=f"balanced accuracy, {within} (%)", ylabel=f"balanced accuracy, {across} (%)",
               title=f"{name} ({len(t)}): Spearman rho {rho:+.2f}")
        ax.legend(fontsize=7, loc="lower right")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def slide_screen(image: np.ndarray, found, cells: pd.DataFrame, marked: np.ndarray, title: str = ""):
    """One slide screened, in two panels: the nuclei found (each cell's region in its own shade, its
    centre a dot, the experts' marked blasts as rings) and the cells circled by their call (orange
    a blast, blue not: :func:`alllib.learn.screening.overlay`); the arguments are those
    :meth:`alllib.learn.screening.ScreeningStudy.view` gives."""
    from alllib.learn.screening import overlay

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    shades = np.where(found.regions > 0, 0.35 + 0.65 * ((found.regions * 0.61803) % 1), 0)
    axes[0].imshow(shades, cmap="magma", interpolation="nearest")
    axes[0].scatter(found.cells["x"], found.cells["y"], s=10, c="white", label="cell found")
    if len(marked):
        axes[0].scatter(marked[:, 0], marked[:, 1], s=160, facecolors="none", edgecolors="#00c0ff", linewidths=1.5,
                        label="marked blast (.xyc)")
    axes[0].legend(loc="lower right", fontsize=8)
    axes[0].set_title(f"{len(found.cells)} cells found (nucleus diameter {found.diameter:.0f} px)")
    axes[1].imshow(overlay(image, cells, found.diameter))  # orange a blast, blue not
    axes[1].set_title(f"called blasts (orange): {int(cells['label'].sum())} of {len(cells)}")
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def slide_calls(slides: pd.DataFrame, rates: list[float] | None = None, ax=None, title: str = "Slide calls"):
    """Each slide's share of cells called blasts, with its 95 % Wilson interval, coloured by the call
    and marked by the slide's true label; ``rates`` (each fold rule's false-positive bound) as lines."""
    fig, ax = _axis(ax, (7, 0.45 * len(slides) + 1.5))
    colours = {"ALL": "#e67800", "normal": "#005ae6", "uncertain": "#888888"}
    t = slides.reset_index(drop=True)
    for i, r in t[t["cells"] > 0].iterrows():  # a slide with no cell has no share to show
        below, above = max(0.0, r["blast_share"] - r["share_low"]), max(0.0, r["share_high"] - r["blast_share"])
        ax.errorbar(r["blast_share"], i, xerr=[[below], [above]], fmt="o", color=colours[r["call"]], capsize=3)
    ax.set_yticks(range(len(t)), [f"{s} ({'ALL' if y else 'healthy'}, {a})" for s, y, a in
                                  zip(t["slide"], t["label"], t["acquisition"])])
    for rate in rates or []:
        ax.axvline(rate, color="grey", ls=":", lw=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the slide's cells called blasts (dotted: the rule's false-positive bound)")
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f"called {k}") for k, c in colours.items()]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    ax.set_title(title, pad=24)
    fig.tight_layout()
    return fig

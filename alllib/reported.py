"""The paper's reported figures, kept once as data, and tables that set ours beside them.

``reported.csv`` (in this package) holds every figure of Tables III to VIII of Farag et al.
(2025) and the ROC AUCs quoted in its text, in percent, one row per figure:
``table, dataset, backbone, classifier, condition, metric, value``. ``condition`` is ``train``
or ``test`` (Tables III-VI), ``seg`` / ``noseg`` (Table VII), ``aug`` / ``noaug`` (Table VIII).

>>> reported("III", "all_idb2").query("classifier == 'svm' and condition == 'test'")["value"].item()
100.0
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

from .metrics import METRICS

__all__ = ["reported", "PAPER_SVM_BEST", "results_frame", "side_by_side", "paper_shape", "CITATION"]

CITATION = ("H. Farag, N. A. Semary, K. M. Amin, S. Fadl, \"An Efficient Classification Technique of Acute "
            "Lymphoblastic Leukemia Cells\", Engineering Letters, 2025")
#: The SVM hyper-parameters the paper's grid search chose (Table II).
PAPER_SVM_BEST = {"C": 10, "gamma": 0.01, "kernel": "rbf"}
_KEYS = ["dataset", "backbone", "classifier", "condition", "metric"]


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    with resources.files("alllib").joinpath("reported.csv").open() as f:
        return pd.read_csv(f)


def reported(table: str | None = None, dataset: str | None = None, **filters) -> pd.DataFrame:
    """The paper's figures (percent), filtered by table (``"III"`` ... ``"VIII"``, ``"ROC"``),
    dataset (``"all_idb2"``, ``"cnmc"``) and any other column (``backbone="densenet201"``...)."""
    t = _table()
    for col, val in {"table": table, "dataset": dataset, **filters}.items():
        if val is None:
            continue
        if col not in t.columns:
            raise ValueError(f"unknown column {col!r}; columns are {list(t.columns)}")
        t = t[t[col] == val]
    return t.reset_index(drop=True).copy()


def results_frame(results: dict, *, dataset: str, backbone: str, condition: str = "test",
                  compare_as: str | None = None) -> pd.DataFrame:
    """Long table of our results (percent) in the shape of :func:`reported`.

    ``results`` maps classifier -> :class:`alllib.protocols.ProtocolResult`. Adds ``protocol``,
    ``low`` and ``high`` (the interval) and ``computed_with`` (the backbone really used)
    columns. ``compare_as`` files the results under another backbone's row of the paper (e.g.
    EfficientNet-Lite0 standing in for DenseNet-201 where DenseNet's weights are missing); the
    ``computed_with`` column keeps that visible. With ``condition="train"`` the paper protocol's
    training metrics are used (Table III).
    """
    rows = []
    for name, res in results.items():
        if condition == "train":
            e = res.evaluations[0]
            if e.train_metrics is None:
                raise ValueError(f"{name}: no training metrics in this result (the honest protocol keeps none)")
            values = {m: (e.train_metrics[m], float("nan"), float("nan")) for m in METRICS}
        else:
            s = res.summary()
            values = {m: (s.loc[m, "value"], s.loc[m, "low"], s.loc[m, "high"]) for m in METRICS}
        for metric, (v, lo, hi) in values.items():
            rows.append({"dataset": dataset, "backbone": compare_as or backbone, "classifier": name,
                         "condition": condition, "metric": metric, "protocol": res.protocol, "value": 100 * v,
                         "low": 100 * lo, "high": 100 * hi, "computed_with": backbone})
    return pd.DataFrame(rows)


def side_by_side(table: str, ours: pd.DataFrame, *, metrics=None) -> pd.DataFrame:
    """Our results beside the paper's Table ``table``: one row per reported figure, columns
    ``reported``, ``paper protocol`` and ``honest`` (with the honest interval), in percent.

    ``ours`` is a concatenation of :func:`results_frame` outputs. Figures we did not reproduce
    stay NaN (a missing backbone's weights, a missing dataset): nothing is filled in.
    """
    rep = reported(table)
    if metrics is not None:
        rep = rep[rep["metric"].isin(metrics)]
    out = rep.rename(columns={"value": "reported"}).drop(columns="table")
    names = {"value": None, "low": "honest 95% low", "high": "honest 95% high"}
    for protocol, label in (("paper", "paper protocol"), ("honest", "honest")):
        cols = _KEYS + ["value"] + (["low", "high"] if protocol == "honest" else [])
        part = ours.loc[ours["protocol"] == protocol, cols] if len(ours) else pd.DataFrame(columns=cols)
        part = part.rename(columns={**names, "value": label})
        out = out.merge(part, on=_KEYS, how="left")
    if len(ours) and "computed_with" in ours.columns:
        used = ours[_KEYS + ["computed_with"]].drop_duplicates(_KEYS)
        out = out.merge(used, on=_KEYS, how="left")
    return out.set_index(_KEYS)


def paper_shape(table: str, ours: pd.DataFrame, dataset: str, *, columns: str = "metric") -> pd.DataFrame:
    """Table ``table`` for ``dataset`` laid out as the paper prints it: one row per classifier and
    figure (``reported``, our ``paper protocol``, our ``honest`` mean, each with the network that
    produced it, e.g. ``paper protocol (EfficientNet-Lite0)``), one column per metric
    (``columns="metric"``, Tables V and VI) or per condition (``columns="condition"``: train /
    test in Table III, aug / noaug in Table VIII). Values in percent; figures this run did not
    compute are missing, never filled in."""
    from .features import BACKBONES

    def label(key) -> str:
        return BACKBONES[key].label if key in BACKBONES else str(key)

    t = side_by_side(table, ours).reset_index()
    t = t[t["dataset"] == dataset]
    figures = [c for c in ("reported", "paper protocol", "honest") if c in t.columns and t[c].notna().any()]
    # every row names the network that produced it: ours stand beside the paper's, not in its name
    paper_net = ", ".join(sorted({label(b) for b in t["backbone"]}))
    ours_net = ", ".join(sorted({label(b) for b in t.get("computed_with", t["backbone"]).dropna()})) or paper_net
    names = {"reported": f"reported ({paper_net})", "paper protocol": f"paper protocol ({ours_net})",
             "honest": f"honest ({ours_net})"}
    t = t.rename(columns=names)
    figures = [names[f] for f in figures]
    long = t.melt(id_vars=["classifier", "condition", "metric"], value_vars=figures, var_name="figure")
    out = long.pivot_table(index=["classifier", "figure"], columns=columns, values="value", sort=False)
    order = [m for m in METRICS if m in out.columns] if columns == "metric" else list(out.columns)
    rows = [(c, f) for c in dict.fromkeys(t["classifier"]) for f in figures if (c, f) in out.index]
    return out.loc[rows, order].rename_axis(columns=None)

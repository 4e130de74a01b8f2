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

from alllib.learn.classifiers import CLASSIFIERS
from alllib.learn.metrics import METRICS

__all__ = ["reported", "PAPER_SVM_BEST", "results_frame", "paper_shape", "network_label",
           "backbone_table", "TABLE_CONDITIONS", "CITATION"]

CITATION = ("H. Farag, N. A. Semary, K. M. Amin, S. Fadl, \"An Efficient Classification Technique of Acute "
            "Lymphoblastic Leukemia Cells\", Engineering Letters, 2025")
#: The SVM hyper-parameters the paper's grid search chose (Table II).
PAPER_SVM_BEST = {"C": 10, "gamma": 0.01, "kernel": "rbf"}


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    with resources.files("alllib.book").joinpath("reported.csv").open() as f:
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


def results_frame(results: dict, *, dataset: str, backbone: str, condition: str = "test") -> pd.DataFrame:
    """Long table of our results (percent) in the shape of :func:`reported`.

    ``results`` maps classifier -> :class:`alllib.learn.protocols.ProtocolResult`; ``backbone`` is the
    network that really produced the features (the tables name it on every row of ours). Adds
    ``protocol``, ``low`` and ``high`` (the interval) columns. With ``condition="train"`` the
    paper protocol's training metrics are used (Table III).
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
            rows.append({"dataset": dataset, "backbone": backbone, "classifier": name, "condition": condition,
                         "metric": metric, "protocol": res.protocol, "value": 100 * v, "low": 100 * lo,
                         "high": 100 * hi})
    return pd.DataFrame(rows)


#: The conditions of each table, where the paper reports none for a dataset (a synthetic run).
TABLE_CONDITIONS = {"III": ("train", "test"), "IV": ("test",), "V": ("test",), "VI": ("test",), "VII": ("seg", "noseg"),
                    "VIII": ("aug", "noaug")}
_FIGURES = {"paper": "paper protocol", "honest": "honest"}


def network_label(key) -> str:
    """A backbone's name as the paper prints it (``densenet201`` -> ``DenseNet-201``)."""
    from alllib.features import BACKBONES

    return BACKBONES[key].label if key in BACKBONES else str(key)


def paper_shape(table: str, ours: pd.DataFrame, dataset: str, *, columns: str = "metric",
                paper_backbone: str = "densenet201") -> pd.DataFrame:
    """Table ``table`` for ``dataset`` laid out as the paper prints it: one row per classifier and
    figure (``reported``, our ``paper protocol``, our ``honest`` mean), each naming the network
    that produced it (``reported (DenseNet-201)``, ``paper protocol (EfficientNet-Lite0)``), one
    column per metric (``columns="metric"``, Tables V and VI) or per condition
    (``columns="condition"``: train / test in Table III, seg / noseg in VII, aug / noaug in VIII).

    Where the paper reports several networks (Table VII), its ``paper_backbone`` rows stand
    beside ours. Values in percent; figures this run did not compute are missing, never filled
    in; where the paper reports nothing for ``dataset`` (synthetic data), our rows alone."""
    rep = reported(table, dataset)
    if rep["backbone"].nunique() > 1:
        rep = rep[rep["backbone"] == paper_backbone]
    conditions = set(rep["condition"]) or set(TABLE_CONDITIONS[table])
    metrics = set(rep["metric"]) or ({"accuracy"} if columns == "condition" else set(METRICS))
    rep = rep.assign(figure=[f"reported ({network_label(b)})" for b in rep["backbone"]])
    mine = ours[(ours["dataset"] == dataset) & ours["condition"].isin(conditions) & ours["metric"].isin(metrics)] \
        if len(ours) else pd.DataFrame(columns=["classifier", "condition", "metric", "value", "protocol", "backbone"])
    mine = mine.assign(figure=[f"{_FIGURES[p]} ({network_label(b)})" for p, b in zip(mine["protocol"], mine["backbone"])])
    long = pd.concat([rep, mine], ignore_index=True)[["classifier", "figure", "condition", "metric", "value"]]
    if long.empty:
        return pd.DataFrame()
    out = long.pivot_table(index=["classifier", "figure"], columns=columns, values="value", sort=False)
    figure_order = {name: i for i, name in enumerate(["reported", *_FIGURES.values()])}
    names = list(dict.fromkeys([*CLASSIFIERS, *long["classifier"]]))  # the book's order: SVM, RF, XGBoost
    rows = sorted(out.index, key=lambda cf: (names.index(cf[0]), figure_order[cf[1].split(" (")[0]], cf[1]))
    if columns == "metric":
        order = [m for m in METRICS if m in out.columns]
    else:
        order = [c for c in TABLE_CONDITIONS[table] if c in out.columns]
    return out.loc[rows, order].rename_axis(columns=None)


def backbone_table(ours: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Table IV for ``dataset``: one row per network and classifier that this run computed, with
    the paper's reported accuracy where the paper has that network (empty where it has not, or
    for synthetic data), our ``paper protocol`` accuracy, and our ``honest`` mean with its
    interval. In percent."""
    acc = ours[(ours["dataset"] == dataset) & (ours["metric"] == "accuracy")] if len(ours) else ours
    if acc.empty:
        return pd.DataFrame()
    rep = reported("IV", dataset).set_index(["backbone", "classifier"])["value"]
    rows = []
    for (backbone, classifier), g in acc.groupby(["backbone", "classifier"], sort=False):
        row = {"network": network_label(backbone), "classifier": classifier,
               "reported": rep.get((backbone, classifier), float("nan"))}
        for protocol, name in _FIGURES.items():
            r = g[g["protocol"] == protocol]
            row[name] = r["value"].mean() if len(r) else float("nan")
            if protocol == "honest" and len(r):
                row["honest 95% low"], row["honest 95% high"] = r["low"].mean(), r["high"].mean()
        rows.append(row)
    return pd.DataFrame(rows).set_index(["network", "classifier"]).dropna(axis=1, how="all")

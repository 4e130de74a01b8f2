"""The engine's results: one fitted model scored on one test set (:class:`Evaluation`), every
evaluation of one classifier under one protocol (:class:`ProtocolResult`, the one result type of
the library), and their stored form (JSON, and a fold's evaluation kept as a checkpoint). The
engine that makes them is :mod:`alllib.learn.evaluation`.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from alllib.learn.metrics import METRICS, binary_metrics, mean_interval, wilson_interval
from alllib.memo import read_memo, write_memo
from alllib.paths import shown_path

__all__ = ["Evaluation", "ProtocolResult", "score_evaluation", "results_to_json", "results_from_json",
           "load_evaluation", "store_evaluation"]


@dataclass
class Evaluation:
    """One fitted model scored on one test set: its predictions, decision values and metrics."""

    classifier: str
    y_true: np.ndarray
    y_pred: np.ndarray
    scores: np.ndarray
    test_ids: np.ndarray
    metrics: dict
    leak: dict = field(default_factory=dict)
    train_metrics: dict | None = None
    best_params: dict = field(default_factory=dict)
    grid: pd.DataFrame | None = None
    fold: int | None = None
    model: object | None = field(default=None, repr=False)
    seconds: float = 0.0  # fitting, tuning and scoring time
    repeat: int = 0
    groups: np.ndarray | None = field(default=None, repr=False)
    n_train: int = 0
    history: pd.DataFrame | None = None  # a trained network's epochs (:mod:`alllib.learn.finetune`)


def score_evaluation(name: str, y_true, scores, ids, *, threshold: float = 0.0, **fields) -> Evaluation:
    """An :class:`Evaluation` from decision values (positive: ALL at ``threshold``)."""
    y_true, scores = np.asarray(y_true, int), np.asarray(scores, float)
    pred = (scores >= threshold).astype(int)
    return Evaluation(name, y_true, pred, scores, np.asarray(ids), binary_metrics(y_true, pred, scores), **fields)


@dataclass
class ProtocolResult:
    """Every evaluation of one classifier (or candidate) under one protocol: one, or one per fold
    of every repeat. The one result type of the library."""

    protocol: str
    classifier: str
    evaluations: list[Evaluation]
    settings: dict

    @property
    def name(self) -> str:
        return self.classifier

    def fold_metrics(self) -> pd.DataFrame:
        """One row per evaluation, one column per metric."""
        return pd.DataFrame([{m: e.metrics[m] for m in METRICS} for e in self.evaluations])

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """Per metric: the value (mean over folds) and its interval.

        One test set: Wilson interval for accuracy, sensitivity and specificity, none for the
        others. Several folds: Student-t interval of the per-fold values.
        """
        rows = []
        if len(self.evaluations) == 1:
            e = self.evaluations[0]
            m = e.metrics
            counts = {"accuracy": (m["tp"] + m["tn"], len(e.y_true)), "sensitivity": (m["tp"], m["tp"] + m["fn"]),
                      "specificity": (m["tn"], m["tn"] + m["fp"])}
            for name in METRICS:
                lo = hi = np.nan
                if name in counts and counts[name][1]:
                    lo, hi = wilson_interval(*counts[name], confidence)
                rows.append({"metric": name, "value": m[name], "low": lo, "high": hi})
        else:
            folds = self.fold_metrics()
            for name in METRICS:
                mean, lo, hi = mean_interval(folds[name], confidence)
                rows.append({"metric": name, "value": mean, "low": max(0.0, lo), "high": min(1.0, hi)})
        return pd.DataFrame(rows).set_index("metric")

    @property
    def leaks(self) -> int:
        """Test samples sharing a source image with the training side, summed over folds."""
        return sum(e.leak.get("shared_source", 0) for e in self.evaluations)

    @property
    def group_leaks(self) -> int:
        return sum(e.leak.get("shared_group", 0) for e in self.evaluations)

    @property
    def repeats(self) -> list[int]:
        return sorted({e.repeat for e in self.evaluations})

    def pooled(self, repeat: int | None = None) -> pd.DataFrame:
        """Test predictions of every fold (of one ``repeat``: each original once), sorted by id:
        columns ``id, group, y_true, y_pred, score``."""
        evs = [e for e in self.evaluations if repeat is None or e.repeat == repeat]
        frame = pd.DataFrame({
            "id": np.concatenate([e.test_ids for e in evs]),
            "group": np.concatenate([e.groups if e.groups is not None else np.full(len(e.y_true), None)
                                     for e in evs]),
            "y_true": np.concatenate([e.y_true for e in evs]), "y_pred": np.concatenate([e.y_pred for e in evs]),
            "score": np.concatenate([e.scores for e in evs])})
        return frame.sort_values("id", kind="stable").reset_index(drop=True)


_ARRAYS = ("y_true", "y_pred", "scores", "test_ids", "groups")
_TABLES = ("grid", "history")


def _evaluation_json(e: Evaluation) -> dict:
    out = {k: v for k, v in vars(e).items() if k not in ("model", *_TABLES, *_ARRAYS)}
    out.update({k: None if getattr(e, k) is None else np.asarray(getattr(e, k)).tolist() for k in _ARRAYS})
    out.update({k: None if getattr(e, k) is None else getattr(e, k).to_json(orient="split", default_handler=str)
                for k in _TABLES})
    return out


def _json_evaluation(d: dict) -> Evaluation:
    d = dict(d)
    for k in _ARRAYS:
        d[k] = None if d[k] is None else np.asarray(d[k], dtype=object if k in ("test_ids", "groups") else None)
    for k in _TABLES:
        d[k] = None if d.get(k) is None else pd.read_json(io.StringIO(d[k]), orient="split", dtype=False)
    return Evaluation(**d)


def results_to_json(results: dict[str, ProtocolResult]) -> dict:
    """``results`` as plain JSON data (lists, numbers, strings): a format that runs no code when
    read, unlike a pickle. Fitted models are not kept. :func:`results_from_json` reads it back."""
    return {name: {"protocol": r.protocol, "classifier": r.classifier, "settings": r.settings,
                   "evaluations": [_evaluation_json(e) for e in r.evaluations]} for name, r in results.items()}


def results_from_json(data: dict) -> dict[str, ProtocolResult]:
    """The results written by :func:`results_to_json`."""
    return {name: ProtocolResult(r["protocol"], r["classifier"], [_json_evaluation(e) for e in r["evaluations"]],
                                 r["settings"]) for name, r in data.items()}


def load_evaluation(path: Path | None) -> Evaluation | None:
    """The evaluation kept at ``path`` (a memo, :mod:`alllib.memo`), or ``None``: no path, nothing
    kept yet, or unreadable (computed again, and said)."""
    data = read_memo(path)
    try:
        return None if data is None else _json_evaluation(data)
    except (KeyError, TypeError, ValueError) as err:
        print(f"alllib: ignoring the checkpoint {shown_path(path)} ({type(err).__name__}); fitting again")
        return None


def store_evaluation(path: Path | None, e: Evaluation) -> None:
    """Keep ``e`` at ``path`` (nothing where ``path`` is ``None``); :func:`load_evaluation` reads it back."""
    write_memo(path, _evaluation_json(e))

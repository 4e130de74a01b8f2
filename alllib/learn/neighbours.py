"""Neighbourhood correction of a batch's decisions (Pan et al. 2019, the C-NMC challenge's winner).

Cells of one person look alike (stain, camera, the person's own cell shapes), and a test batch
holds many cells of each person. :func:`neighbourhood_correction` replaces each test cell's
decision value by a mix of its own and the similarity-weighted mean of its ``k`` most similar
cells **of the same batch** (cosine similarity of the features), so that a cell's call leans
toward that of the cells most like it. It is meant for many cells of one person: given the
batch's ``groups`` (each cell's person), the neighbours are sought within the cell's own person
only, so that a healthy donor's cells are never pulled toward a patient's in a batch of several
people. It uses the batch, never labels, so it is fair at test time; ``predict`` applies it within
each person whose name it knows (``--neighbours K``), and the book measures it by subject.

Y. Pan, M. Liu, Y. Xia, D. Shen: Neighborhood-correction algorithm for classification of normal
and malignant cells, in *ISBI 2019 C-NMC Challenge*, Springer (2019), 73-82.

>>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
>>> neighbourhood_correction(X, np.array([2.0, -1.0, -2.0, 1.0]), k=1, weight=0.5).round(2).tolist()
[0.5, 0.5, -0.5, -0.5]
>>> neighbourhood_correction(X, np.array([2.0, -1.0, -2.0, 1.0]), k=1, weight=0.5, groups=[0, 1, 0, 1]).tolist()
[2.0, 0.0, -2.0, 0.0]
"""
from __future__ import annotations

import numpy as np

from alllib.constraints import check_positive_int

__all__ = ["neighbourhood_correction"]


def neighbourhood_correction(X: np.ndarray, scores: np.ndarray, *, k: int = 10, weight: float = 0.5,
                             groups=None) -> np.ndarray:
    """Each decision value mixed with those of its ``k`` nearest cells in the batch (with
    ``groups``: among the cells of its own group; a group of one cell is left as it is).

    Parameters
    ----------
    X : array, shape (n, d)
        The batch's features.
    scores : array, shape (n,)
        Their decision values (positive: ALL).
    k : int
        Neighbours per cell (fewer where the batch is smaller).
    weight : float
        The neighbours' share of the corrected value, in [0, 1]; 0 leaves the scores as they are.
    groups : array, shape (n,), optional
        Each cell's person: the neighbours are sought within it.

    Returns
    -------
    array, shape (n,)
        ``(1 - weight) * score + weight * sum(sim_j * score_j) / sum(sim_j)`` over the ``k`` most
        similar other cells ``j`` (cosine similarity, negative ones counted as 0).
    """
    check_positive_int(k, "k")
    if not 0 <= weight <= 1:
        raise ValueError(f"weight must be in [0, 1], not {weight!r}")
    X, scores = np.asarray(X, float), np.asarray(scores, float)
    if len(X) != len(scores):
        raise ValueError(f"{len(X)} feature rows for {len(scores)} scores")
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(scores):
            raise ValueError(f"{len(groups)} groups for {len(scores)} scores")
        out = scores.copy()
        for g in np.unique(groups):
            mine = np.flatnonzero(groups == g)
            out[mine] = neighbourhood_correction(X[mine], scores[mine], k=k, weight=weight)
        return out
    if len(X) < 2 or weight == 0:
        return scores.copy()
    unit = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    k = min(k, len(X) - 1)
    out = np.empty_like(scores)
    for start in range(0, len(X), 1024):  # bounded memory: 1,024 rows of similarities at a time
        sim = unit[start:start + 1024] @ unit.T
        rows = np.arange(sim.shape[0])
        sim[rows, start + rows] = -np.inf  # a cell is not its own neighbour
        near = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        w = np.clip(np.take_along_axis(sim, near, axis=1), 0, None)
        mean = (w * scores[near]).sum(1) / np.maximum(w.sum(1), 1e-12)
        mean = np.where(w.sum(1) > 0, mean, scores[start:start + 1024])
        out[start:start + 1024] = (1 - weight) * scores[start:start + 1024] + weight * mean
    return out

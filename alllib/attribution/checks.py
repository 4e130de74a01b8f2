"""The sanity checks a map must pass before it is read (Adebayo et al. 2018; Petsiuk et al. 2018).

:func:`cell_map_checks` measures one cell's maps: how like their maps under randomised models and
under their own variant they are (:func:`map_similarity`), and how fast deleting or inserting the
pixels they mark moves the score (:func:`deletion_insertion`) against :func:`random_smooth_map`,
with every fill of :data:`FILLS`. :func:`sanity_table` judges the cells together by paired tests: a
map that ignores the model (a centred blob) fails randomisation, an inverted map fails deletion
and insertion.

>>> sorted(FILLS)
['blurred', 'mean colour']
"""
from __future__ import annotations

import numpy as np

from alllib.attribution.maps import blurred_fill, upsample

__all__ = ["random_smooth_map", "mean_fill", "FILLS", "cell_map_checks", "sanity_table", "deletion_insertion",
           "map_similarity"]


def random_smooth_map(size: int, rng: np.random.Generator, cells: int = 7) -> np.ndarray:
    """A random map as smooth as a Grad-CAM of ``cells`` x ``cells`` positions, upsampled to
    ``size`` x ``size``: the baseline a map must beat in :func:`deletion_insertion`."""
    return upsample(rng.random((cells, cells)), size)


def mean_fill(network_input: np.ndarray) -> np.ndarray:
    """A second fill for :func:`deletion_insertion`, unlike :func:`blurred_fill`: every pixel the
    image's mean colour. Occlusion and RISE are made with the blurred fill, so a map scored with
    that fill alone is scored on its own terms; scored with this one as well, it must hold when
    what replaces the pixels changes."""
    x = np.asarray(network_input, np.float32)
    return np.broadcast_to(x.reshape(-1, x.shape[-1]).mean(axis=0), x.shape).copy()


#: The fills every map is scored with in :func:`cell_map_checks` (both must agree).
FILLS = {"blurred": blurred_fill, "mean colour": mean_fill}


def cell_map_checks(maps: dict, variants: dict, heads, network_input: np.ndarray, *, sign: float,
                    random_map: np.ndarray, steps: int = 16) -> list[dict]:
    """The sanity checks of one cell's maps (Adebayo et al. 2018; Petsiuk et al. 2018), one dict
    per map kind:

    * ``weights rho`` and ``labels rho``: the Spearman correlation of the map under the model
      (``maps[kind]["model"]``) with the same kind of map under the model with its learnt weights
      shuffled (``"weights"``) and under a model fitted on shuffled labels (``"labels"``);
    * ``consistency rho``: the map against ``variants[kind]``, the same model explained another
      way that should agree (RISE: its two halves of masks, ``maps[kind]["first half"]`` against
      the variant); NaN where there is no variant. A map that depends on the model agrees with
      its own variant more than with the randomised models' maps;
    * ``deletion`` / ``insertion`` and the same areas of ``random_map``, with each fill of
      :data:`FILLS` (columns suffixed `` (blurred)``, `` (mean colour)``), on the score the map
      explains: ``heads(batch)`` gives ``(n, k)`` scores, the decision in column 0 and the
      evidence in column 1 (maps whose kind ends in "evidence"), signed by ``sign``;
    * ``empty``: no positive attribution.
    """
    x = network_input
    random_curves = {name: deletion_insertion(lambda b: heads(b)[:, :2], x, random_map, fill=make(x), steps=steps,
                                              sign=sign) for name, make in FILLS.items()}  # both heads at once
    out = []
    for kind, by_model in maps.items():
        head = 1 if kind.endswith("evidence") else 0
        m = by_model["model"]
        row = {"map": kind, "weights rho": map_similarity(m, by_model["weights"]),
               "labels rho": map_similarity(m, by_model["labels"]),
               "consistency rho": (map_similarity(by_model.get("first half", m), variants[kind])
                                   if kind in variants else np.nan),
               "empty": bool(np.maximum(m, 0).sum() == 0)}
        for name, make in FILLS.items():
            deletion, insertion = deletion_insertion(lambda b, h=head: heads(b)[:, h], x, m, fill=make(x),
                                                     steps=steps, sign=sign)
            row.update({f"deletion ({name})": deletion, f"random deletion ({name})": float(random_curves[name][0][head]),
                        f"insertion ({name})": insertion,
                        f"random insertion ({name})": float(random_curves[name][1][head])})
        out.append(row)
    return out


def sanity_table(checks, *, alpha: float = 0.05):
    """Pass or fail per map kind, from rows of :func:`cell_map_checks` (one per cell and kind), by
    paired one-sided Wilcoxon signed-rank tests over the cells at ``alpha`` (the cell sample's
    uncertainty):

    * **randomisation**: the map agrees with its own variant more than with the map under the
      shuffled weights, and more than with the map under the shuffled labels (``consistency rho``
      against ``|weights rho|`` and ``|labels rho|``, cell by cell). A map that ignores the model,
      such as a centred blob, is as like its randomised maps as its variant and fails; without a
      variant the check is "not measured" and the map is not read;
    * **deletion** / **insertion**: the map beats the random smooth map (a lower deletion area, a
      higher insertion area) with **every** fill of :data:`FILLS`. An inverted map fails.

    ``reads`` is True only where all three pass. ``empty`` counts the maps with no positive
    attribution. Returns a ``pandas.DataFrame`` indexed by map kind."""
    import pandas as pd
    from scipy.stats import wilcoxon

    def paired_p(gain) -> float:
        gain = pd.Series(gain).dropna()
        if len(gain) < 2 or (gain == 0).all():
            return float("nan")
        return float(wilcoxon(gain, alternative="greater").pvalue)

    def passes(*ps) -> str:
        return "pass" if all(p < alpha for p in ps) else "fail"

    def median(column) -> float:
        return float(column.median()) if column.notna().any() else np.nan

    rows = []
    for kind, part in checks.groupby("map", sort=False):
        row = {"map": kind, "cells": len(part), "empty": int(part["empty"].sum()),
               "weights randomised |rho|": median(part["weights rho"].abs()),
               "labels randomised |rho|": median(part["labels rho"].abs()),
               "consistency rho": median(part["consistency rho"])}
        consistency = part["consistency rho"]
        p_w, p_l = paired_p(consistency - part["weights rho"].abs()), paired_p(consistency - part["labels rho"].abs())
        row.update({"randomisation p (weights)": p_w, "randomisation p (labels)": p_l,
                    "randomisation": "not measured" if consistency.isna().all() else passes(p_w, p_l)})
        for curve, gain in (("deletion", lambda f: part[f"random deletion ({f})"] - part[f"deletion ({f})"]),
                            ("insertion", lambda f: part[f"insertion ({f})"] - part[f"random insertion ({f})"])):
            ps = []
            for fill in FILLS:
                g = gain(fill)
                ps.append(paired_p(g))
                row.update({f"beats random in {curve} ({fill})": f"{int((g > 0).sum())}/{len(part)}",
                            f"{curve} p ({fill})": ps[-1]})
            row[curve] = passes(*ps)
        row["reads"] = all(row[c] == "pass" for c in ("randomisation", "deletion", "insertion"))
        rows.append(row)
    return pd.DataFrame(rows).set_index("map")


def deletion_insertion(score, network_input: np.ndarray, saliency: np.ndarray, *, fill: np.ndarray,
                       steps: int = 16, sign: float = 1.0) -> tuple[float, float]:
    """Petsiuk et al. 2018 (RISE, BMVC): the areas under the deletion and insertion curves of a
    map. Deletion replaces the pixels by ``fill`` from the most salient down, in ``steps`` equal
    parts; insertion starts from ``fill`` and puts the image's pixels back in the same order. The
    curve is ``sign * score`` after each part (``score``: a batch of network inputs -> one value
    each, or ``k`` values each: then both areas are arrays of ``k``, from the same images); the area
    is its mean over the ``steps + 1`` points. A good map makes the deletion area low (the score
    falls fast) and the insertion area high."""
    h, w = network_input.shape[:2]
    order = np.argsort(-np.asarray(saliency, float).ravel(), kind="stable")
    cuts = np.linspace(0, h * w, steps + 1).round().astype(int)
    deleted, inserted = [], []
    for c in cuts:
        top = np.zeros(h * w, bool)
        top[order[:c]] = True
        top = top.reshape(h, w)[..., None]
        deleted.append(np.where(top, fill, network_input))
        inserted.append(np.where(top, network_input, fill))
    values = sign * np.asarray(score(np.stack(deleted + inserted)), float)
    deletion, insertion = values[:steps + 1].mean(axis=0), values[steps + 1:].mean(axis=0)
    return (float(deletion), float(insertion)) if values.ndim == 1 else (deletion, insertion)


def map_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps' pixels (NaN where either is flat: it ranks nothing)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    return float("nan") if a.std() == 0 or b.std() == 0 else float(spearmanr(a, b).statistic)

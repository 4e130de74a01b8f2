"""ALL-IDB2: 260 crops of single cells, ``ImNNN_L.tif`` with ``L`` = 1 blast, 0 not a blast;
their duplicate groups and their source slides."""
from __future__ import annotations

import hashlib
import inspect
import os
import re
import warnings
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pandas as pd

from alllib.data.dataset import Dataset, read_row
from alllib.data.images import DatasetError, ImageReadError, UnreadableImageWarning, decode_image, image_files
from alllib.data.slides import canonical_slide, slide_map
from alllib.memo import kept, memo_path
from alllib.paths import data_dir, read_regular, shown_path

__all__ = ["find_all_idb2", "load_all_idb2", "duplicate_groups"]

# --------------------------------------------------------------------------------- ALL-IDB2
_IDB2_NAME = re.compile(r"^Im(\d+)_([01])$", re.IGNORECASE)


def find_all_idb2(root: str | os.PathLike | None = None) -> Path | None:
    """The folder holding ALL-IDB2's ``ImNNN_L.tif`` files under ``root``, or ``None``.

    Looks at ``root/ALL_IDB2/img``, ``root/ALL_IDB2`` and ``root`` itself, in that order.
    """
    base = data_dir(root)
    for cand in (base / "ALL_IDB2" / "img", base / "ALL_IDB2", base):
        if cand.is_dir() and any(_IDB2_NAME.match(p.stem) for p in image_files(cand)):
            return cand
    return None


def load_all_idb2(root: str | os.PathLike | None = None, *, near_duplicates: bool = True,
                  grouping: str = "slide", skip_unreadable: bool = False) -> Dataset:
    """Load ALL-IDB2: a folder of ``ImNNN_L.tif`` crops, ``L`` = 1 blast, 0 not a blast.

    The table has ``id, path, label, group, height, width, md5``. Byte-identical files share a
    ``group``; with ``near_duplicates`` (default) so do crops of the same cell found by
    :func:`duplicate_groups`; that grouping is kept in ``dup_group``. Each crop's ALL-IDB1
    ``slide``, position (``x``, ``y``) and ``acquisition`` (the slide's size) come from
    :func:`alllib.data.slides.slide_map`; with ``grouping="slide"`` (default) a ``group`` also joins
    the crops of one slide (and of byte-identical slides), so that no slide crosses a split;
    ``grouping="duplicates"`` keeps the duplicate groups alone, for comparison. Raises
    :class:`DatasetError` for a missing or empty folder, an
    image whose name carries no label, or a class with no images; an unreadable image raises
    :class:`ImageReadError`, or with ``skip_unreadable`` is left out with an
    :class:`UnreadableImageWarning` naming it.
    """
    folder = find_all_idb2(root)
    if folder is None:
        base = data_dir(root)
        if base.is_dir() and (base / "ALL_IDB2" / "img").is_dir() and not image_files(base / "ALL_IDB2" / "img"):
            raise DatasetError(f"{base / 'ALL_IDB2' / 'img'}: the folder holds no images")
        raise DatasetError(
            f"ALL-IDB2 not found under {base.resolve()} (looked for ALL_IDB2/img/ImNNN_L.tif); "
            "see data/README.md for how to obtain it"
        )
    files = image_files(folder)
    rows = []
    for p in files:
        m = _IDB2_NAME.match(p.stem)
        if m is None:
            raise DatasetError(f"{p}: file name carries no label (expected ImNNN_1.tif or ImNNN_0.tif)")
        rows.append({"id": p.stem, "path": str(p), "label": int(m.group(2))})
    table = pd.DataFrame(rows)
    raws = [read_regular(p) for p in table["path"]]  # each file read once: hashed, then decoded
    images = []
    for raw, p in zip(raws, table["path"]):
        try:
            images.append(decode_image(np.frombuffer(raw, np.uint8), Path(p)))
        except ImageReadError as err:
            if not skip_unreadable:
                raise
            warnings.warn(f"left out: {err}", UnreadableImageWarning, stacklevel=2)
            images.append(None)
    keep = [im is not None for im in images]
    table, raws = table[keep].reset_index(drop=True), [r for r, k in zip(raws, keep) if k]
    images = [im for im in images if im is not None]
    for label, name in ((1, "ALL blast (_1)"), (0, "not a blast (_0)")):
        if not (table["label"] == label).any():
            raise DatasetError(f"{folder}: no {name} images; ALL-IDB2 needs both classes")
    table["md5"] = [hashlib.md5(raw).hexdigest() for raw in raws]
    table["height"] = [im.shape[0] for im in images]
    table["width"] = [im.shape[1] for im in images]
    if grouping not in ("slide", "duplicates"):
        raise ValueError(f"grouping must be 'slide' or 'duplicates', not {grouping!r}")
    pairs = [(i, j) for i, j in _identical_pairs(table["md5"].tolist())]
    if near_duplicates:  # every pair compared once per set of images, then kept in the cache (JSON)
        memo = memo_path(True, "duplicates", table["md5"].tolist(), inspect.getsource(duplicate_groups))
        pairs += [tuple(p) for p in kept(memo, lambda: duplicate_groups(images, return_pairs=True))]
    table["dup_group"] = _groups_from_pairs(table["id"].tolist(), pairs)

    where, how = slide_map(table, images, folder.parent.parent / "ALL_IDB1" / "im")
    table = pd.concat([table, where], axis=1)
    if grouping == "slide":
        first: dict[str, int] = {}
        for i, slide in enumerate(table["slide"]):
            if slide is not None:
                pairs.append((first.setdefault(canonical_slide(slide), i), i))
    table["group"] = _groups_from_pairs(table["id"].tolist(), pairs)
    where = shown_path(folder, data_dir(root))
    return Dataset("all_idb2", table, read_row, source=f"{where} ({how}; grouped by {grouping})")


def _identical_pairs(keys: list[str]) -> list[tuple[int, int]]:
    first: dict[str, int] = {}
    pairs = []
    for i, k in enumerate(keys):
        if k in first:
            pairs.append((first[k], i))
        else:
            first[k] = i
    return pairs


def _groups_from_pairs(ids: list[str], pairs: list[tuple[int, int]]) -> list[str]:
    """Connected components of the 'same cell' graph, each named by its first id."""
    parent = list(range(len(ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return [ids[find(i)] for i in range(len(ids))]


def _highpass_thumb(img: np.ndarray, scale: int) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    g = cv2.resize(g, (max(1, g.shape[1] // scale), max(1, g.shape[0] // scale)), interpolation=cv2.INTER_AREA)
    return g - cv2.GaussianBlur(g, (0, 0), 16.0 / scale)


def _match_score(a: np.ndarray, b: np.ndarray, frac: float) -> float:
    h, w = a.shape
    th, tw = int(h * frac), int(w * frac)
    if b.shape[0] < th or b.shape[1] < tw or th < 4 or tw < 4:
        return 0.0
    y0, x0 = (h - th) // 2, (w - tw) // 2
    tpl = a[y0 : y0 + th, x0 : x0 + tw]
    if tpl.std() < 1e-6:
        return 0.0
    return float(np.nan_to_num(cv2.matchTemplate(b, tpl, cv2.TM_CCOEFF_NORMED)).max())


def duplicate_groups(
    images: Sequence[np.ndarray],
    *,
    threshold: float = 0.9,
    return_pairs: bool = False,
) -> np.ndarray | list[tuple[int, int]]:
    """Find crops of the same cell: a perceptual, shift-tolerant comparison of every pair.

    The centre 60 % of one image (grayscale, high-pass filtered so that illumination does not
    count) is slid over the other; two crops whose best normalised correlation exceeds
    ``threshold`` show the same cell with the same neighbours. A quarter-resolution pass picks
    candidates (score > 0.8), a half-resolution pass decides. On the real ALL-IDB2 true
    duplicates score above 0.93 and the closest distinct cells below 0.86.

    Returns a group number per image, or with ``return_pairs`` the matching index pairs.
    """
    coarse = [_highpass_thumb(im, 4) for im in images]
    pairs = []
    fine: dict[int, np.ndarray] = {}
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            if _match_score(coarse[i], coarse[j], 0.6) <= 0.8:
                continue
            for k in (i, j):
                if k not in fine:
                    fine[k] = _highpass_thumb(images[k], 2)
            score = max(_match_score(fine[i], fine[j], 0.6), _match_score(fine[j], fine[i], 0.6))
            if score > threshold:
                pairs.append((i, j))
    if return_pairs:
        return pairs
    names = [str(i) for i in range(len(images))]
    comp = _groups_from_pairs(names, pairs)
    return np.unique(comp, return_inverse=True)[1]



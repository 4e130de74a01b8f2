"""Where each ALL-IDB2 crop comes from: its ALL-IDB1 slide, its position there, its acquisition.

ALL-IDB2's 260 crops were cut from the 108 slides of ALL-IDB1. Crops of one slide share its
staining, focus and lighting, and most blast crops come from the slides of a second camera
set-up (1712x1368 pixels instead of 2592x1944): a leak-free split keeps a slide on one side, and
a fair question asks whether the label can be told from the acquisition alone.

The map comes, in order, from

* the ALL-IDB1 slides beside the dataset (``<data>/ALL_IDB1/im/*.jpg``), matched here by
  :func:`match_crops` (coarse-to-fine normalised cross-correlation), for the crops they hold;
* the table shipped with this package (``all_idb2_slides.csv``: names, file hashes and
  coordinates, made the same way from all 108 slides), for the real crops (same MD5) it lists.

>>> table = shipped_slide_map()
>>> len(table), table.loc["Im001_1", "slide"], acquisition(1712, 1368)
(260, 'Im001_1', '1712x1368')
"""
from __future__ import annotations

import hashlib
import io
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from alllib.data.images import decode_image
from alllib.paths import cache_dir, read_regular, shown_path, write_atomic

__all__ = ["shipped_slide_map", "source_slides", "match_crop", "match_crops", "slide_map", "acquisition", "canonical_slide",
           "SLIDE_SUFFIXES"]

SLIDE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
#: A match at full resolution below this correlation is no match.
MIN_CORRELATION = 0.99


def acquisition(width: int, height: int) -> str:
    """A slide's acquisition set-up, named by its size in pixels (``"2592x1944"``)."""
    return f"{int(width)}x{int(height)}"


@lru_cache(maxsize=1)
def shipped_slide_map() -> pd.DataFrame:
    """The package's 260-row table (see the module's docstring), indexed by crop id."""
    with resources.files("alllib.data").joinpath("all_idb2_slides.csv").open() as f:
        t = pd.read_csv(f, comment="#", keep_default_na=False, dtype={"identical_slides": str})
    return t.set_index("crop")


def source_slides(table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per ALL-IDB1 slide that crops of ``table`` (a slide map such as
    :func:`shipped_slide_map`, its default) come from: ``id``, ``label`` (from the slide's name:
    ``_1`` an ALL patient's), ``acquisition``, ``crops`` and ``group`` (byte-identical slides joined),
    as :func:`~alllib.learn.screening.acquisition_baseline` reads them.

    >>> t = source_slides()
    >>> len(t), int(t.loc[t.acquisition == "1712x1368", "label"].min())
    (102, 1)
    """
    t = shipped_slide_map() if table is None else table
    rows = t.groupby("slide").agg(width=("slide_width", "first"), height=("slide_height", "first"),
                                  crops=("slide", "size"), twins=("identical_slides", "first")).reset_index()
    return pd.DataFrame({"id": rows["slide"], "label": rows["slide"].str.endswith("_1").astype(int),
                         "acquisition": [acquisition(w, h) for w, h in zip(rows["width"], rows["height"])],
                         "crops": rows["crops"],
                         "group": [tw.split(";")[0] if tw else s for s, tw in zip(rows["slide"], rows["twins"])]})


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img


def _prepare(slides: dict[str, np.ndarray], scale: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each slide in gray, at full size and at ``1/scale``."""
    out = {}
    for name, slide in slides.items():
        gray = _gray(slide)
        out[name] = (gray, cv2.resize(gray, None, fx=1 / scale, fy=1 / scale, interpolation=cv2.INTER_AREA))
    return out


def match_crop(crop: np.ndarray, slides: dict[str, np.ndarray], *, scale: int = 4, margin: int = 8) -> dict:
    """The slide of ``slides`` (name -> RGB image) that ``crop`` was cut from, and where:
    ``{"slide", "x", "y", "correlation"}``. Each slide is searched at ``1/scale`` size; the best
    one is checked at full resolution within ``margin`` coarse pixels of its coarse peak, so a
    crop found nowhere gets a low correlation rather than a wrong place."""
    return _match(crop, _prepare(slides, scale), scale, margin)


def _match(crop: np.ndarray, prepared: dict, scale: int, margin: int) -> dict:
    c = _gray(crop)
    small_crop = cv2.resize(c, None, fx=1 / scale, fy=1 / scale, interpolation=cv2.INTER_AREA)
    best, coarse = {"slide": None, "x": -1, "y": -1, "correlation": -1.0}, -1.0
    for name, (gray, small) in prepared.items():
        if gray.shape[0] < c.shape[0] or gray.shape[1] < c.shape[1]:
            continue
        _, peak, _, (px, py) = cv2.minMaxLoc(cv2.matchTemplate(small, small_crop, cv2.TM_CCOEFF_NORMED))
        if peak > coarse:
            coarse, best = float(peak), {"slide": name, "x": px * scale, "y": py * scale, "correlation": -1.0}
    if best["slide"] is None:
        return best
    gray = prepared[best["slide"]][0]
    x0, y0 = max(0, best["x"] - margin * scale), max(0, best["y"] - margin * scale)
    x1 = min(gray.shape[1], best["x"] + c.shape[1] + margin * scale)
    y1 = min(gray.shape[0], best["y"] + c.shape[0] + margin * scale)
    _, peak, _, (px, py) = cv2.minMaxLoc(cv2.matchTemplate(gray[y0:y1, x0:x1], c, cv2.TM_CCOEFF_NORMED))
    return {"slide": best["slide"], "x": x0 + px, "y": y0 + py, "correlation": float(peak)}


def match_crops(crops: Sequence[np.ndarray], ids: Sequence[str], slide_paths: Sequence[Path], *,
                cache: Path | None = None, progress: bool = False) -> pd.DataFrame:
    """:func:`match_crop` for every crop against the slide files ``slide_paths``: one row per
    crop (``crop, slide, x, y, correlation, slide_width, slide_height``). With ``cache`` (a
    folder) the table is stored under a key made of the crops' and slides' content and read
    back on the next call with the same inputs."""
    raws = {Path(p): np.frombuffer(read_regular(p), np.uint8) for p in slide_paths}  # each read once: hashed, decoded
    key = hashlib.sha256(json.dumps([[hashlib.md5(np.ascontiguousarray(c)).hexdigest() for c in crops], list(ids),
                                     [hashlib.md5(raw).hexdigest() for raw in raws.values()]])
                         .encode()).hexdigest()[:20]
    stored = cache / f"slides-{key}.csv" if cache is not None else None
    try:  # a regular file of the cache only, never through a link
        return pd.read_csv(io.BytesIO(read_regular(stored, follow=False)), keep_default_na=False, na_values=[""])
    except (TypeError, OSError, ValueError):  # no cache, nothing kept yet, or not a table: matched again
        pass
    prepared = _prepare({p.stem: decode_image(raw, p) for p, raw in raws.items()}, scale=4)
    rows = []
    for crop, cid in tqdm(list(zip(crops, ids)), desc="matching crops to slides", disable=not progress):
        m = _match(crop, prepared, 4, 8)
        shape = prepared[m["slide"]][0].shape if m["slide"] else (np.nan, np.nan)
        rows.append({"crop": cid, **m, "slide_width": shape[1], "slide_height": shape[0]})
    table = pd.DataFrame(rows)
    if stored is not None:
        try:
            stored.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(stored, table.to_csv(index=False).encode())
        except OSError:
            pass  # a read-only cache only costs the matching again
    return table


def slide_map(table: pd.DataFrame, images: Sequence[np.ndarray], slides_folder: Path | None) -> tuple[pd.DataFrame, str]:
    """Slide, position and acquisition of each row of an ALL-IDB2 ``table`` (columns ``id`` and
    ``md5``), and a sentence saying where the map came from. Rows found nowhere keep no slide."""
    cols = {"slide": [None] * len(table), "x": [np.nan] * len(table), "y": [np.nan] * len(table),
            "acquisition": [None] * len(table)}
    matched = used = 0
    paths = sorted(p for p in slides_folder.iterdir() if p.suffix.lower() in SLIDE_SUFFIXES) \
        if slides_folder is not None and slides_folder.is_dir() else []
    if paths:
        found = match_crops(images, table["id"].tolist(), paths, cache=cache_dir())
        for k, m in enumerate(found.itertuples()):
            if m.correlation >= MIN_CORRELATION:
                cols["slide"][k], cols["x"][k], cols["y"][k] = m.slide, m.x, m.y
                cols["acquisition"][k] = acquisition(m.slide_width, m.slide_height)
                matched += 1
    shipped = shipped_slide_map()
    for k, (cid, md5) in enumerate(zip(table["id"], table["md5"])):
        if cols["slide"][k] is None and cid in shipped.index and shipped.at[cid, "crop_md5"] == md5:
            s = shipped.loc[cid]
            cols["slide"][k], cols["x"][k], cols["y"][k] = s["slide"], s["x"], s["y"]
            cols["acquisition"][k] = acquisition(s["slide_width"], s["slide_height"])
            used += 1
    out = pd.DataFrame(cols, index=table.index)
    parts = []
    if matched:
        where = shown_path(slides_folder, slides_folder.parent.parent)
        parts.append(f"{matched} matched here against the {len(paths)} ALL-IDB1 slides in {where}")
    if used:
        parts.append(f"{used} from the table shipped with alllib (all_idb2_slides.csv)")
    missing = len(table) - matched - used
    if missing:
        parts.append(f"{missing} without a known slide (grouped by their duplicates only)")
    return out, "slide map: " + "; ".join(parts)


def canonical_slide(name: str) -> str:
    """One name for byte-identical ALL-IDB1 slides (``Im108_0`` and ``Im093_0`` are one slide)."""
    for names in shipped_slide_map()["identical_slides"]:
        names = [n for n in names.split(";") if n]
        if name in names:
            return min(names)
    return name

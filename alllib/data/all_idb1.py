"""ALL-IDB1: whole blood-smear photographs, each with the centroids of its blasts.

ALL-IDB1 holds 108 slides named ``ImNNN_L.jpg`` (``L`` = 1: the smear of an ALL patient, 0: of a
healthy person) and, for each, an ``ImNNN_L.xyc`` file whose lines ``x y`` are the pixel centroids
of the blasts the dataset's experts marked (empty for a healthy smear). ALL-IDB2's crops were cut
from these slides. :func:`load_all_idb1` reads the slides a data folder holds as a
:class:`~alllib.data.Dataset` whose rows are slides: ``label`` is the slide's (the person's),
``group`` joins byte-identical slides (ALL-IDB1 holds one such pair, ``Im093_0`` = ``Im108_0``),
``acquisition`` is the camera set-up named by the size (:func:`~alllib.data.slides.acquisition`),
and :func:`marked_blasts` reads a slide's ``.xyc`` points.

>>> _XYC_LINE.match("1482\\t383") is not None, slide_label("Im019_1")
(True, 1)
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from alllib.data.dataset import Dataset
from alllib.data.images import DatasetError, declared_size, file_md5, image_files, read_image
from alllib.data.slides import acquisition
from alllib.paths import data_dir, read_regular, shown_path

__all__ = ["find_all_idb1", "load_all_idb1", "marked_blasts", "slide_label"]

_NAME = re.compile(r"^Im\d{3}_([01])$")
_XYC_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)\s*$")


def slide_label(name: str) -> int:
    """The label an ALL-IDB1 slide's name gives (``ImNNN_1``: 1, ALL; ``ImNNN_0``: 0, healthy)."""
    m = _NAME.match(Path(name).stem)
    if m is None:
        raise DatasetError(f"{name}: not an ALL-IDB1 slide name (ImNNN_1 for an ALL patient, ImNNN_0 for a healthy "
                           "person)")
    return int(m.group(1))


def find_all_idb1(root: str | os.PathLike | None = None) -> Path | None:
    """The folder holding ALL-IDB1's ``ImNNN_L.jpg`` slides under ``root`` (``root/ALL_IDB1/im``,
    ``root/ALL_IDB1``), or ``None``."""
    base = data_dir(root)
    for cand in (base / "ALL_IDB1" / "im", base / "ALL_IDB1"):
        if cand.is_dir() and any(_NAME.match(p.stem) for p in image_files(cand)):
            return cand
    return None


def marked_blasts(path: str | os.PathLike) -> np.ndarray:
    """The ``(x, y)`` blast centroids of an ``.xyc`` file, shape ``(n, 2)`` (``(0, 2)`` for an empty
    file); a line that is not two numbers is an error naming the file and the line."""
    path = Path(path)
    text = read_regular(path, limit=1 << 20).decode("utf-8", "replace")
    points = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _XYC_LINE.match(line)
        if m is None:
            raise DatasetError(f"{path}: line {number} is not 'x y' ({line[:60]!r})")
        points.append((float(m.group(1)), float(m.group(2))))
    return np.array(points, float).reshape(-1, 2)


def load_all_idb1(root: str | os.PathLike | None = None) -> Dataset:
    """The ALL-IDB1 slides of the data folder, one row per slide (see the module's docstring):
    ``id, path, label, group, width, height, acquisition, md5, xyc`` (the ``.xyc`` file beside
    ``im/`` in ``xyc/``, where there is one; empty otherwise) and ``marked`` (how many blasts it
    marks). Sizes are read from the files' headers; the pixels are read on demand."""
    folder = find_all_idb1(root)
    if folder is None:
        raise DatasetError(f"ALL-IDB1 not found under {shown_path(data_dir(root))} (looked for ALL_IDB1/im/ImNNN_L.jpg); "
                           "see data/README.md for how to obtain it")
    rows = []
    for path in image_files(folder):
        if not _NAME.match(path.stem):
            continue
        size = declared_size(read_regular(path, limit=64 << 20)) or (0, 0)
        xyc = folder.parent / "xyc" / f"{path.stem}.xyc"
        rows.append({"id": path.stem, "path": str(path), "label": slide_label(path.stem), "width": size[0],
                     "height": size[1], "acquisition": acquisition(*size), "md5": file_md5(path),
                     "xyc": str(xyc) if xyc.is_file() else "",
                     "marked": len(marked_blasts(xyc)) if xyc.is_file() else 0})
    table = pd.DataFrame(rows)
    table["group"] = table.groupby("md5")["id"].transform("first")  # byte-identical slides are one
    return Dataset("all_idb1", table, reader=lambda row: read_image(row["path"]), source=shown_path(folder))

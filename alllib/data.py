"""Reading images and loading the book's datasets.

Every loader returns a :class:`Dataset`: a table with one row per image (at least ``id``,
``label`` and ``group``) and a way to read each image as an RGB ``uint8`` array. Images are read
on demand, so a dataset of any size costs only its table in memory.

Labels follow the paper: ``1`` is an ALL blast, ``0`` is not a blast (ALL-IDB2 ``_0``, C-NMC
``hem``). ``group`` is what a leak-free split must keep together: a set of duplicate crops of
one cell for ALL-IDB2, a patient for C-NMC-2019.

Example
-------
>>> from alllib.data import load_dataset
>>> ds = load_dataset("synthetic", n=8, size=64, verbose=False)
>>> len(ds), ds.image(0).shape
(8, (64, 64, 3))
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np
import pandas as pd

from .settings import positive_int

__all__ = [
    "DatasetError",
    "ImageReadError",
    "UnreadableImageWarning",
    "Dataset",
    "read_image",
    "data_dir",
    "project_root",
    "shown_path",
    "find_all_idb2",
    "load_all_idb2",
    "load_cnmc",
    "cnmc_contents",
    "cnmc_subject",
    "load_dataset",
    "duplicate_groups",
    "file_md5",
    "max_pixels",
    "declared_size",
    "DATASETS",
]

IMAGE_SUFFIXES = {".tif", ".tiff", ".bmp", ".png", ".jpg", ".jpeg"}
DATASETS = ("all_idb2", "cnmc", "synthetic")


class UnreadableImageWarning(UserWarning):
    """An image file left out of a dataset because it cannot be decoded."""


class ImageReadError(ValueError):
    """An image file that cannot be decoded into an RGB picture."""


class DatasetError(ValueError):
    """A dataset folder that is missing, empty or laid out unlike the loader expects."""


#: The most pixels (width x height) an image may declare and still be decoded: generous for
#: microscope slides (ALL-IDB1's are 2592 x 1944, 5 megapixels) and far below what would
#: exhaust memory (3 bytes a pixel, and a few float copies in the pipeline).
MAX_PIXELS = 50_000_000


def max_pixels() -> int:
    """The decoding limit in pixels: ``$ALLLIB_MAX_PIXELS`` where set, else :data:`MAX_PIXELS`."""
    return positive_int("ALLLIB_MAX_PIXELS", MAX_PIXELS, "pixels")


def declared_size(raw: bytes | np.ndarray) -> tuple[int, int] | None:
    """``(width, height)`` that an image file's header declares, read without decoding the
    pixels (Pillow's lazy open); ``None`` where Pillow does not know the format. A header beyond
    Pillow's own decompression-bomb limit gives ``(pixels, 1)``: its pixel count is all it says.

    >>> import cv2, numpy as np
    >>> declared_size(cv2.imencode(".png", np.zeros((3, 5), np.uint8))[1])
    (5, 3)
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(bytes(raw))) as im:  # the header only
                return int(im.size[0]), int(im.size[1])
    except Image.DecompressionBombError as err:
        m = re.search(r"\((\d+) pixels\)", str(err))
        return (int(m.group(1)), 1) if m else (2**31, 1)
    except Exception:  # not a format Pillow knows, or a damaged header: OpenCV decides
        return None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an RGB ``uint8`` array of shape ``(H, W, 3)``.

    Grayscale images are repeated into three channels, an alpha channel is dropped and 16-bit
    images are scaled to 8 bits (``round(v / 257)``, so 65535 becomes 255). Anything that cannot
    be decoded raises :class:`ImageReadError` naming the file; the file is never touched.

    >>> import tempfile, cv2, numpy as np, os
    >>> p = os.path.join(tempfile.mkdtemp(), "gray.png")
    >>> _ = cv2.imwrite(p, np.full((4, 5), 7, np.uint8))
    >>> read_image(p).shape
    (4, 5, 3)
    """
    path = Path(path)
    if path.is_dir():
        raise ImageReadError(f"{path}: a directory, not an image file")
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    size, limit = path.stat().st_size, max_pixels()
    if size > 8 * limit + (1 << 20):  # more bytes than the largest image allowed can take, even 16-bit RGBA
        raise ImageReadError(f"{path}: {size / 1e6:,.0f} MB, larger than any image of at most {limit / 1e6:,.0f} "
                             "megapixels; it is not read (ALLLIB_MAX_PIXELS raises the limit)")
    return _decode(np.fromfile(path, dtype=np.uint8), path)


def _decode(raw: np.ndarray, path: Path) -> np.ndarray:
    """:func:`read_image` on bytes already read from ``path``."""
    if raw.size == 0:
        raise ImageReadError(f"{path}: the file is empty")
    limit = max_pixels()
    size = declared_size(raw)
    if size is not None and size[0] * size[1] > limit:
        shape = f"{size[0]} x {size[1]} pixels" if size[1] > 1 else f"{size[0]:,} pixels"
        raise ImageReadError(f"{path}: declares {shape} ({size[0] * size[1] / 1e6:,.0f} megapixels), above the limit of {limit / 1e6:,.0f} megapixels; it is not decoded "
                             "(ALLLIB_MAX_PIXELS raises the limit)")
    img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f"{path}: not a readable image (corrupt, truncated or an unknown format)")
    if img.shape[0] * img.shape[1] > limit:
        raise ImageReadError(f"{path}: {img.shape[1]} x {img.shape[0]} pixels, above the limit of "
                             f"{limit / 1e6:,.0f} megapixels (ALLLIB_MAX_PIXELS raises the limit)")
    if img.dtype == np.uint16:
        img = np.round(img.astype(np.float32) / 257.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageReadError(f"{path}: unsupported pixel type {img.dtype}; expected 8- or 16-bit integers")
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ImageReadError(f"{path}: unsupported image layout {img.shape}")
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    # OpenCV decodes colour as BGR(A); drop alpha and reverse to RGB.
    return np.ascontiguousarray(img[:, :, 2::-1])


@dataclass
class Dataset:
    """A table of images and a reader that turns one table row into an RGB ``uint8`` array.

    ``table`` has one row per image and at least the columns ``id``, ``label`` and ``group``.
    ``name`` says which dataset it is (``all_idb2``, ``cnmc``, ``synthetic``) and ``source``
    where it came from, so that every result can say what produced it.
    """

    name: str
    table: pd.DataFrame
    reader: Callable[[pd.Series], np.ndarray] = field(repr=False)
    source: str = ""
    mask_reader: Callable[[pd.Series], np.ndarray] | None = field(default=None, repr=False)
    keyer: Callable[[pd.Series], str] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def labels(self) -> np.ndarray:
        return self.table["label"].to_numpy(dtype=int)

    @property
    def groups(self) -> np.ndarray:
        return self.table["group"].to_numpy()

    @property
    def ids(self) -> np.ndarray:
        return self.table["id"].to_numpy()

    def image(self, i: int) -> np.ndarray:
        """The ``i``-th image (by position in ``table``) as RGB ``uint8``."""
        return self.reader(self.table.iloc[i])

    def mask(self, i: int) -> np.ndarray:
        """The ground-truth nucleus mask of the ``i``-th image (synthetic data only)."""
        if self.mask_reader is None:
            raise DatasetError(f"the {self.name} dataset has no ground-truth masks")
        return self.mask_reader(self.table.iloc[i])

    def image_key(self, i: int) -> str:
        """A string that changes whenever the pixels of the ``i``-th image could change
        (the file's md5 by default); the feature cache is keyed by it."""
        return self.key_of(self.table.iloc[i])

    def key_of(self, row: pd.Series) -> str:
        """:meth:`image_key` of a table row."""
        return (self.keyer or _file_key)(row)

    def iter_images(self) -> Iterator[np.ndarray]:
        for _, row in self.table.iterrows():
            yield self.reader(row)

    def images(self, indices: Sequence[int] | None = None) -> list[np.ndarray]:
        """Read several images into a list (images of a dataset may differ in size)."""
        idx = range(len(self)) if indices is None else indices
        return [self.image(int(i)) for i in idx]

    def subset(self, indices: Sequence[int] | np.ndarray) -> "Dataset":
        """The rows at ``indices`` (positions), as a new dataset sharing the same reader."""
        table = self.table.iloc[np.asarray(indices, dtype=int)].reset_index(drop=True)
        return Dataset(self.name, table, self.reader, self.source, self.mask_reader, self.keyer)

    def regroup(self, column: str) -> "Dataset":
        """The same images with ``group`` taken from ``column`` (e.g. ALL-IDB2's ``dup_group``:
        duplicate crops only, without joining the crops of one slide)."""
        if column not in self.table.columns:
            raise ValueError(f"{self.name} has no column {column!r}; its columns are {list(self.table.columns)}")
        table = self.table.assign(group=self.table[column].astype(str))
        return Dataset(self.name, table, self.reader, f"{self.source}, regrouped by {column}", self.mask_reader,
                       self.keyer)

    def sample_per_group(self, n: int | None, seed: int = 0, column: str = "group") -> "Dataset":
        """At most ``n`` images of each ``column`` value (each C-NMC subject), drawn with ``seed``;
        ``None`` keeps everything. The rows keep their order.

        >>> ds = load_dataset("synthetic", n=8, size=32, verbose=False)
        >>> len(ds.sample_per_group(None)), len(ds.sample_per_group(2, column="label"))
        (8, 4)
        """
        if n is None:
            return self
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer or None, not {n!r}")
        rng = np.random.default_rng(seed)
        keep = [rng.choice(idx, min(n, len(idx)), replace=False)
                for idx in self.table.groupby(column, sort=True).indices.values()]
        return self.subset(np.sort(np.concatenate(keep)))

    def summary(self) -> pd.DataFrame:
        """Counts of images and groups per class."""
        t = self.table
        out = t.groupby("label").agg(images=("id", "size"), groups=("group", "nunique"))
        out.index = out.index.map({1: "ALL blast (1)", 0: "not a blast (0)"})
        return out


def project_root() -> Path | None:
    """The book's project folder: the nearest folder holding ``_toc.yml``, from the current
    folder upwards, else the one above an editable install of ``alllib``; ``None`` outside one."""
    for p in [Path.cwd(), *Path.cwd().parents]:
        if (p / "_toc.yml").is_file():
            return p
    above = Path(__file__).resolve().parent.parent
    return above if (above / "_toc.yml").is_file() else None


def shown_path(path: str | os.PathLike) -> str:
    """A path as a page shows it: relative to the project where it lies inside it (``_build/results``),
    with ``~`` for the home folder otherwise; never a build machine's absolute prefix.

    >>> shown_path(Path.home() / "lab" / "data") == str(Path("~") / "lab" / "data")
    True
    """
    p = Path(path).resolve()
    root = project_root()
    if root is not None and p.is_relative_to(root.resolve()):
        return str(p.relative_to(root.resolve())) or "."
    if p.is_relative_to(Path.home()):
        return str(Path("~") / p.relative_to(Path.home()))
    return str(p)


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data folder: ``path`` if given, else ``$ALLLIB_DATA``, else the project's ``data/``
    (whatever the current folder: a chapter runs in ``notebooks/``), else ``./data``."""
    if path is not None:
        return Path(path)
    env = os.environ.get("ALLLIB_DATA")
    if env:
        return Path(env)
    root = project_root()
    return root / "data" if root is not None else Path("data")


def _read_row(row: pd.Series) -> np.ndarray:
    return read_image(row["path"])


_MD5_MEMO: dict[tuple[str, int, int], str] = {}


def file_md5(path: str | os.PathLike) -> str:
    """md5 of a file's bytes, remembered per (path, size, modification time) in this process."""
    st = os.stat(path)
    memo = (str(path), st.st_size, st.st_mtime_ns)
    if memo not in _MD5_MEMO:
        _MD5_MEMO[memo] = hashlib.md5(Path(path).read_bytes()).hexdigest()
    return _MD5_MEMO[memo]


def _file_key(row: pd.Series) -> str:
    md5 = row.get("md5")
    return "md5:" + (md5 if isinstance(md5, str) else file_md5(row["path"]))


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


# --------------------------------------------------------------------------------- ALL-IDB2
_IDB2_NAME = re.compile(r"^Im(\d+)_([01])$", re.IGNORECASE)


def find_all_idb2(root: str | os.PathLike | None = None) -> Path | None:
    """The folder holding ALL-IDB2's ``ImNNN_L.tif`` files under ``root``, or ``None``.

    Looks at ``root/ALL_IDB2/img``, ``root/ALL_IDB2`` and ``root`` itself, in that order.
    """
    base = data_dir(root)
    for cand in (base / "ALL_IDB2" / "img", base / "ALL_IDB2", base):
        if cand.is_dir() and any(_IDB2_NAME.match(p.stem) for p in _image_files(cand)):
            return cand
    return None


def load_all_idb2(root: str | os.PathLike | None = None, *, near_duplicates: bool = True,
                  grouping: str = "slide", skip_unreadable: bool = False) -> Dataset:
    """Load ALL-IDB2: a folder of ``ImNNN_L.tif`` crops, ``L`` = 1 blast, 0 not a blast.

    The table has ``id, path, label, group, height, width, md5``. Byte-identical files share a
    ``group``; with ``near_duplicates`` (default) so do crops of the same cell found by
    :func:`duplicate_groups`; that grouping is kept in ``dup_group``. Each crop's ALL-IDB1
    ``slide``, position (``x``, ``y``) and ``acquisition`` (the slide's size) come from
    :func:`alllib.slides.slide_map`; with ``grouping="slide"`` (default) a ``group`` also joins
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
        if base.is_dir() and (base / "ALL_IDB2" / "img").is_dir() and not _image_files(base / "ALL_IDB2" / "img"):
            raise DatasetError(f"{base / 'ALL_IDB2' / 'img'}: the folder holds no images")
        raise DatasetError(
            f"ALL-IDB2 not found under {base.resolve()} (looked for ALL_IDB2/img/ImNNN_L.tif); "
            "see data/README.md for how to obtain it"
        )
    files = _image_files(folder)
    rows = []
    for p in files:
        m = _IDB2_NAME.match(p.stem)
        if m is None:
            raise DatasetError(f"{p}: file name carries no label (expected ImNNN_1.tif or ImNNN_0.tif)")
        rows.append({"id": p.stem, "path": str(p), "label": int(m.group(2))})
    table = pd.DataFrame(rows)
    raws = [Path(p).read_bytes() for p in table["path"]]  # each file read once: hashed, then decoded
    images = []
    for raw, p in zip(raws, table["path"]):
        try:
            images.append(_decode(np.frombuffer(raw, np.uint8), Path(p)))
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
    if near_duplicates:
        pairs += duplicate_groups(images, return_pairs=True)
    table["dup_group"] = _groups_from_pairs(table["id"].tolist(), pairs)
    from .slides import canonical_slide, slide_map

    where, how = slide_map(table, images, folder.parent.parent / "ALL_IDB1" / "im")
    table = pd.concat([table, where], axis=1)
    if grouping == "slide":
        first: dict[str, int] = {}
        for i, slide in enumerate(table["slide"]):
            if slide is not None:
                pairs.append((first.setdefault(canonical_slide(slide), i), i))
    table["group"] = _groups_from_pairs(table["id"].tolist(), pairs)
    return Dataset("all_idb2", table, _read_row, source=f"{folder} ({how}; grouped by {grouping})")


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


# --------------------------------------------------------------------------------- C-NMC-2019
_CNMC_NAME = re.compile(r"^UID_([A-Za-z]?\d+)_(\d+)_(\d+)_(all|hem)$", re.IGNORECASE)
_CNMC_ROOTS = ("C-NMC_2019", "C-NMC_Leukemia", "cnmc", "CNMC")


def cnmc_subject(path: str | os.PathLike) -> str | None:
    """The subject of a C-NMC cell from its file name (``UID_<subject>_<image>_<cell>_<all|hem>``),
    upper-cased as the loader does; ``None`` for any other name.

    >>> cnmc_subject("cells/UID_h3_12_1_hem.bmp"), cnmc_subject("cell.png")
    ('H3', None)
    """
    m = _CNMC_NAME.match(Path(path).stem)
    return m.group(1).upper() if m else None


def _find_cnmc(base: Path) -> Path | None:
    for cand in [base / name for name in _CNMC_ROOTS] + [base]:
        if (cand / "training_data").is_dir():
            return cand
    return None


def load_cnmc(root: str | os.PathLike | None = None, *, part: str = "train") -> Dataset:
    """Load C-NMC-2019 from ``<root>/C-NMC_2019/`` (or ``C-NMC_Leukemia/``, ``cnmc/``).

    ``part="train"``: ``training_data/fold_{0,1,2}/{all,hem}/UID_<patient>_<image>_<cell>_<all|hem>.bmp``
    (or ``.png``, a lossless copy with the same name) -> table ``id, path, label, patient, fold,
    group`` with label ``all`` = 1, ``hem`` = 0 and ``group = patient``. Any subset of the three
    folds may be present; ``source`` says which folds and how many subjects were found. Patient
    ids are upper-cased (the real data spells one ``h3``); a normal (``hem``) subject's id starts
    with ``H``. A file whose name disagrees with its folder, or one cell stored twice (``.bmp``
    beside ``.png``), is an error.

    ``part="prelim_test"``: the labelled preliminary test set, ``validation_data/`` with its
    labels CSV; a :class:`DatasetError` says so where it is absent.
    """
    base = data_dir(root)
    top = _find_cnmc(base)
    if top is None:
        raise DatasetError(
            f"C-NMC-2019 not found under {base.resolve()} (looked for C-NMC_2019/training_data/fold_N/all/*.bmp "
            "or *.png); "
            "see data/README.md for how to obtain it"
        )
    if part == "train":
        return _load_cnmc_train(top)
    if part == "prelim_test":
        return _load_cnmc_prelim(top)
    raise ValueError(f"part must be 'train' or 'prelim_test', not {part!r}")


def _parse_cnmc_name(p: Path) -> tuple[str, str, str]:
    m = _CNMC_NAME.match(p.stem)
    if m is None:
        raise DatasetError(f"{p}: file name carries no label (expected UID_<patient>_<image>_<cell>_<all|hem>.bmp)")
    patient, kind = m.group(1).upper(), m.group(4).lower()
    if (kind == "hem") != patient.startswith("H"):
        raise DatasetError(f"{p}: patient id {m.group(1)!r} does not fit class {kind!r} (normal subjects' ids start with H)")
    return patient, kind, f"UID_{patient}_{m.group(2)}_{m.group(3)}_{kind}"


def _load_cnmc_train(top: Path) -> Dataset:
    folds = sorted(p for p in (top / "training_data").iterdir() if p.is_dir() and p.name.startswith("fold_"))
    if not folds:
        raise DatasetError(f"{top / 'training_data'}: no fold_0, fold_1, fold_2 folders")
    rows = []
    for fold in folds:
        for cls in ("all", "hem"):
            folder = fold / cls
            if not folder.is_dir():
                continue
            for p in _image_files(folder):
                patient, kind, uid = _parse_cnmc_name(p)
                if kind != cls:
                    raise DatasetError(f"{p}: the name says {kind!r} but the file is in the {cls!r} folder")
                rows.append({"id": uid, "path": str(p), "label": int(kind == "all"), "patient": patient,
                             "fold": int(fold.name.split("_")[-1])})
    if not rows:
        raise DatasetError(f"{top / 'training_data'}: the fold folders hold no images")
    table = pd.DataFrame(rows)
    twice = table[table["id"].duplicated(keep=False)].sort_values("id")
    if len(twice):
        a, b = twice["path"].iloc[:2]
        raise DatasetError(f"{a} and {b}: the same cell stored twice ({len(twice)} files concern repeated cells); "
                           "keep one copy of each")
    for label, name in ((1, "all"), (0, "hem")):
        if not (table["label"] == label).any():
            raise DatasetError(f"{top / 'training_data'}: no {name!r} images; C-NMC needs both classes")
    table["group"] = table["patient"]
    return Dataset("cnmc", table, _read_row, source=f"{top / 'training_data'} ({cnmc_contents(table)})")


def cnmc_contents(table: pd.DataFrame) -> str:
    """Which folds and how many subjects a C-NMC table holds, in words.

    >>> t = pd.DataFrame({"fold": [1, 1, 1], "patient": ["3", "H1", "3"], "label": [1, 0, 1]})
    >>> cnmc_contents(t)
    'fold_1 of fold_0-2; 2 subjects: 1 ALL, 1 normal'
    """
    folds = ", ".join(f"fold_{f}" for f in sorted(table["fold"].unique()))
    per = table.groupby("label")["patient"].nunique()
    return (f"{folds} of fold_0-2; {table['patient'].nunique()} subjects: {per.get(1, 0)} ALL, "
            f"{per.get(0, 0)} normal")


def _load_cnmc_prelim(top: Path) -> Dataset:
    val = top / "validation_data"
    csvs = sorted(val.glob("*.csv")) if val.is_dir() else []
    if not csvs:
        raise DatasetError(f"{val}: no preliminary test set here (validation_data/ with its labels CSV)")
    labels = pd.read_csv(csvs[0])
    needed = {"Patient_ID", "new_names", "labels"}
    if not needed <= set(labels.columns):
        raise DatasetError(f"{csvs[0]}: expected the columns {sorted(needed)}, found {list(labels.columns)}")
    folders = [p for p in val.iterdir() if p.is_dir()]
    img_dir = folders[0] if len(folders) == 1 else val
    rows = []
    for _, r in labels.iterrows():
        patient, kind, uid = _parse_cnmc_name(Path(str(r["Patient_ID"])))
        path = img_dir / str(r["new_names"])
        if not path.is_file():
            raise DatasetError(f"{path}: listed in {csvs[0].name} but missing")
        if int(r["labels"]) != int(kind == "all"):
            raise DatasetError(f"{csvs[0]}: row {r['new_names']} has label {r['labels']} but its id says {kind!r}")
        rows.append({"id": uid, "path": str(path), "label": int(r["labels"]), "patient": patient})
    table = pd.DataFrame(rows)
    table["group"] = table["patient"]
    return Dataset("cnmc_prelim_test", table, _read_row, source=str(val))


# --------------------------------------------------------------------------------- entry point
def load_dataset(
    name: str = "auto",
    data: str | os.PathLike | None = None,
    *,
    verbose: bool = True,
    n_synthetic: int | None = None,
    **kwargs,
) -> Dataset:
    """Load a dataset by name: ``"all_idb2"``, ``"cnmc"``, ``"synthetic"`` or ``"auto"``.

    ``data`` is the data folder (else ``$ALLLIB_DATA``, else ``./data``). ``"auto"`` takes
    ALL-IDB2 where it is found and the synthetic smears otherwise, and says which. Extra keyword
    arguments go to the loader (e.g. ``n``, ``seed``, ``size`` for the synthetic data);
    ``n_synthetic`` is the synthetic dataset's size whenever the synthetic data is used, asked
    for or fallen back to.
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, not {type(name).__name__}")
    key = name.lower().replace("-", "_")
    if key == "auto":
        if find_all_idb2(data) is not None:
            key = "all_idb2"
        else:
            key = "synthetic"
            if verbose:
                print(f"alllib: no ALL-IDB2 under {data_dir(data).resolve()}; using the synthetic smears instead")
    if key == "all_idb2":
        ds = load_all_idb2(data, **kwargs)
    elif key == "cnmc":
        ds = load_cnmc(data, **kwargs)
    elif key == "synthetic":
        from .synthetic import make_synthetic

        ds = make_synthetic(**({"n": n_synthetic} if n_synthetic is not None else {}), **kwargs)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or 'auto'")
    if verbose:
        print(f"alllib: dataset {ds.name}: {len(ds)} images, {ds.table['group'].nunique()} groups, from {ds.source}")
    return ds

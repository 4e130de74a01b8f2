"""The :class:`Dataset`: a table with one row per image and a way to read each image.

Every loader returns one: a table with at least ``id``, ``label`` and ``group`` and a reader that
turns one row into an RGB ``uint8`` array. Images are read on demand, so a dataset of any size
costs only its table in memory.

Labels follow the paper: ``1`` is an ALL blast, ``0`` is not a blast (ALL-IDB2 ``_0``, C-NMC
``hem``). ``group`` is what a leak-free split must keep together: a set of duplicate crops of
one cell, or the crops of one slide, for ALL-IDB2; a patient for C-NMC-2019.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from alllib.constraints import check_positive_int
from alllib.data.images import DatasetError, file_md5, read_image

__all__ = ["Dataset", "Rows", "read_row"]


class Rows:
    """What a ``table`` with the columns ``id``, ``label`` and ``group`` gives, one row per sample:
    a :class:`Dataset`'s images, the evaluation engine's ``Samples`` of an array."""

    table: pd.DataFrame

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


def read_row(row: pd.Series) -> np.ndarray:
    """The image of a table row with a ``path`` column (the loaders' reader)."""
    return read_image(row["path"])


def _file_key(row: pd.Series) -> str:
    md5 = row.get("md5")
    return "md5:" + (md5 if isinstance(md5, str) else file_md5(row["path"]))


@dataclass
class Dataset(Rows):
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

        >>> from alllib.data import load_dataset
        >>> ds = load_dataset("synthetic", n=8, size=32, verbose=False)
        >>> len(ds.sample_per_group(None)), len(ds.sample_per_group(2, column="label"))
        (8, 4)
        """
        if n is None:
            return self
        check_positive_int(n, "n (or None)")
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

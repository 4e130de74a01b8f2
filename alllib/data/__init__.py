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

import os

from alllib.data.all_idb2 import duplicate_groups, find_all_idb2, load_all_idb2
from alllib.data.cnmc import cnmc_contents, cnmc_subject, load_cnmc
from alllib.data.dataset import Dataset, Rows
from alllib.data.images import (
    IMAGE_SUFFIXES,
    DatasetError,
    ImageReadError,
    UnreadableImageWarning,
    declared_size,
    decode_image,
    file_md5,
    max_pixels,
    read_image,
)
from alllib.data.synthetic import make_synthetic
from alllib.paths import data_dir

__all__ = ["DATASETS", "Dataset", "Rows", "DatasetError", "ImageReadError", "UnreadableImageWarning", "IMAGE_SUFFIXES",
           "read_image", "decode_image", "declared_size", "max_pixels", "file_md5", "find_all_idb2", "load_all_idb2",
           "duplicate_groups", "load_cnmc", "cnmc_contents", "cnmc_subject", "make_synthetic", "load_dataset"]

DATASETS = ("all_idb2", "cnmc", "synthetic")


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

    Parameters
    ----------
    name : str
        ``"all_idb2"``, ``"cnmc"``, ``"synthetic"`` or ``"auto"`` (case and ``-``/``_`` do not matter).
    data : str or path, optional
        The data folder (:func:`alllib.paths.data_dir`).
    verbose : bool
        Print which dataset was loaded, from where.
    n_synthetic : int, optional
        The synthetic dataset's size, whenever it is used.
    **kwargs
        Passed to the loader.

    Returns
    -------
    Dataset
        The table of images (``id``, ``label``, ``group``, ...) and their reader.
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
        ds = make_synthetic(**({"n": n_synthetic} if n_synthetic is not None else {}), **kwargs)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or 'auto'")
    if verbose:
        print(f"alllib: dataset {ds.name}: {len(ds)} images, {ds.table['group'].nunique()} groups, from {ds.source}")
    return ds

"""Shared fixtures: small image trees built on the fly, and the real data where present."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from alllib.data import find_all_idb2, load_all_idb2
from alllib.data.synthetic import make_synthetic
from alllib.learn.evaluation import Evaluation, ProtocolResult
from alllib.learn.metrics import binary_metrics


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok, path
    return path


def write_cnmc_tree(data: Path, synthetic, *, subjects: int = 6, cells: int = 4, suffix: str = ".bmp") -> Path:
    """A C-NMC-2019-like tree under ``data`` made of synthetic crops: ``subjects`` subjects (the
    first half ALL patients ``1, 2, ...``, the second half normal donors ``H4, H5, ...``), ``cells``
    cells each, spread over fold_0-2. Returns ``data``."""
    top = data / "C-NMC_2019" / "training_data"
    blasts = [i for i in range(len(synthetic)) if synthetic.labels[i] == 1]
    normals = [i for i in range(len(synthetic)) if synthetic.labels[i] == 0]
    for p in range(subjects):
        cls, pid, pool = ("all", str(p + 1), blasts) if p < subjects // 2 else ("hem", f"H{p + 1}", normals)
        for j in range(cells):
            write_rgb(top / f"fold_{p % 3}" / cls / f"UID_{pid}_{j}_1_{cls}{suffix}",
                      synthetic.image(pool[(p + j) % len(pool)]))
    return data


def colour_features(ds):
    """Cheap stand-in for deep features: per-channel LAB means and spreads."""
    out = []
    for i in range(len(ds)):
        lab = cv2.cvtColor(ds.image(i), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(float)
        dark = lab[:, 1] > 145
        out.append([*lab.mean(0), *lab.std(0), dark.mean()])
    return np.array(out)


def protocol_result(protocol, accs, classifier="svm"):
    """A made-up :class:`ProtocolResult`: one evaluation of 20 images per accuracy in ``accs``."""
    evals = []
    rng = np.random.default_rng(0)
    for a in accs:
        y = np.array([0, 1] * 10)
        pred = y.copy()
        wrong = int(round((1 - a) * len(y)))
        pred[:wrong] = 1 - pred[:wrong]
        m = binary_metrics(y, pred, rng.random(20))
        evals.append(Evaluation(classifier, y, pred, rng.random(20), np.arange(20), m,
                                {"shared_source": 0, "shared_group": 0}, train_metrics=m))
    return {classifier: ProtocolResult(protocol, classifier, evals, {})}


@pytest.fixture(scope="session")
def synthetic():
    """Twelve small synthetic crops (six per class) with their nucleus masks."""
    return make_synthetic(n=12, seed=3, size=96)


@pytest.fixture
def idb2_tree(tmp_path, synthetic):
    """A tiny ALL-IDB2-like folder: six labelled TIFFs, one byte-identical copy among them."""
    folder = tmp_path / "ALL_IDB2" / "img"
    for i in range(5):
        write_rgb(folder / f"Im{i + 1:03d}_{synthetic.labels[i]}.tif", synthetic.image(i))
    (folder / "Im006_0.tif").write_bytes((folder / "Im002_0.tif").read_bytes())
    return tmp_path


@pytest.fixture(scope="session")
def real_idb2():
    """The real ALL-IDB2 from $ALLLIB_DATA; the test is skipped with a reason where it is absent."""
    root = os.environ.get("ALLLIB_DATA")
    if not root:
        pytest.skip("real ALL-IDB2 not available: set ALLLIB_DATA to the folder holding ALL_IDB2/img")
    if find_all_idb2(root) is None:
        pytest.skip(f"real ALL-IDB2 not available: no ALL_IDB2/img/ImNNN_L.tif under ALLLIB_DATA={root}")
    return load_all_idb2(root)


def _real(what: str, folder: str, load):
    """``load(root)`` on $ALLLIB_DATA, or the test skipped with the reason (unset, or the dataset
    not found there)."""
    from alllib.data import DatasetError

    root = os.environ.get("ALLLIB_DATA")
    if not root:
        pytest.skip(f"real {what} not available: set ALLLIB_DATA to the folder holding {folder}")
    try:
        return load(root)
    except DatasetError as err:
        pytest.skip(f"real {what} not available under ALLLIB_DATA={root}: {err}")


@pytest.fixture(scope="session")
def real_cnmc():
    """The real C-NMC-2019 from $ALLLIB_DATA; the test is skipped with a reason where it is absent."""
    from alllib.data import load_cnmc

    return _real("C-NMC-2019", "C-NMC_2019/training_data", load_cnmc)


@pytest.fixture(scope="session")
def real_slides():
    """The real ALL-IDB1 slides from $ALLLIB_DATA; the test is skipped with a reason where they are absent."""
    from alllib.data.all_idb1 import load_all_idb1

    return _real("ALL-IDB1", "ALL_IDB1/im", load_all_idb1)

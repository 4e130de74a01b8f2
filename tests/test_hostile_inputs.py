"""Hostile inputs: huge declared images, crafted model files, inverted calibration, bad settings.

Each case failed before its fix (a traceback, a crash that lost the batch, gigabytes of memory,
silently inverted labels); each must now give one clear error, naming the file or setting.
"""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from alllib.cli import main
from alllib.data import ImageReadError, declared_size, read_image
from alllib.features import FeatureExtractor
from alllib.learn.modelfile import (
    FORMAT_VERSION,
    MAGIC,
    ModelFileError,
    calibration_problem,
    load_model,
    save_model,
    visible_cell_problem,
)

from .conftest import write_rgb


def huge_png(width: int, height: int) -> bytes:
    """A small PNG whose header declares ``width`` x ``height`` RGB pixels (its data is short)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" + b"\x80" * (3 * width)
    data = zlib.compress(row * 64, 9)  # 64 rows of real data, far fewer than declared
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def test_an_image_declaring_huge_dimensions_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(huge_png(30000, 30000))
    w, h = declared_size(bomb.read_bytes())  # beyond Pillow's own bomb limit only the pixel count is known
    assert w * h == 900_000_000
    with pytest.raises(ImageReadError, match=r"bomb.png: declares .*\(900 megapixels\), above the limit of 50"):
        read_image(bomb)
    small = tmp_path / "large.png"
    small.write_bytes(huge_png(9000, 7000))
    assert declared_size(small.read_bytes()) == (9000, 7000)
    with pytest.raises(ImageReadError, match=r"large.png: declares 9000 x 7000 pixels \(63 megapixels\)"):
        read_image(small)


def test_the_limit_is_a_setting(tmp_path, monkeypatch):
    img = write_rgb(tmp_path / "ok.png", np.full((40, 50, 3), 90, np.uint8))
    monkeypatch.setenv("ALLLIB_MAX_PIXELS", "1000")
    with pytest.raises(ImageReadError, match="ok.png: declares 50 x 40 pixels"):
        read_image(img)
    monkeypatch.setenv("ALLLIB_MAX_PIXELS", "many")
    with pytest.raises(ValueError, match="ALLLIB_MAX_PIXELS must be a positive integer"):
        read_image(img)


@pytest.mark.parametrize("width,height", [(30000, 30000), (60000, 2000), (2000, 60000), (20000, 20000)])
def test_decoding_a_declared_huge_image_stays_in_bounded_memory(tmp_path, width, height):
    """In a subprocess whose address space is capped at 3 GB, reading such a file is a clear
    error, not a MemoryError or a crash (OpenCV alone would allocate the declared size)."""
    path = tmp_path / "huge.png"
    path.write_bytes(huge_png(width, height))
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
            "from alllib.data import ImageReadError, read_image\n"
            "try:\n    read_image(sys.argv[1])\nexcept ImageReadError as err:\n    print('refused:', err)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("refused:") and "above the limit" in done.stdout


def test_a_uniform_colour_is_no_visible_cell_and_costs_little_memory():
    assert "uniform" in visible_cell_problem(np.full((64, 64, 3), (200, 0, 0), np.uint8))
    assert "uniform" in visible_cell_problem(np.zeros((64, 64, 3), np.uint8))
    assert "grayscale" in visible_cell_problem(np.dstack([np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)] * 3))
    stained = np.zeros((64, 64, 3), np.uint8)
    stained[16:48, 16:48] = (120, 60, 160)
    assert visible_cell_problem(stained) is None


# ------------------------------------------------------------------------------ model files
def _svm_pipeline(**extractor):
    from alllib.learn.classifiers import fit_classifier

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 1280)), np.repeat([0, 1], 30)
    X[y == 1] += 0.5
    clf, _ = fit_classifier("svm", X, y, search="none", probability=True)
    return Pipeline([("features", FeatureExtractor("efficientnet_lite0", **extractor).fit()), ("classifier", clf)])


def _rewrite(path, change):
    """Load the pipeline of a model file without checks, change it, and save it with a valid checksum."""
    import skops.io as sio

    from alllib.learn.modelfile import TRUSTED_TYPES

    data = path.read_bytes()
    header = json.loads(data.split(b"\n")[1])
    pipe = sio.loads(data.split(b"\n", 2)[2], trusted=TRUSTED_TYPES)
    change(pipe)
    return save_model(path.with_name("crafted.alllib"), pipe, header["metadata"])


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return save_model(tmp_path_factory.mktemp("m") / "model.alllib", _svm_pipeline(), {"classifier": "svm"})


@pytest.mark.parametrize("change,message", [
    (lambda p: setattr(p[0], "size", 60000), "parameter size=60000 is not allowed"),
    (lambda p: setattr(p[0], "batch_size", 0), "parameter batch_size=0 is not allowed"),
    (lambda p: setattr(p[0], "backbone_", "alexnet"), "backbone_='alexnet' is not a known backbone"),
    (lambda p: setattr(p[0], "segmentation", {"method": "kmeans", "evil": 1}), "parameter segmentation="),
    (lambda p: setattr(p[0], "weights", "/etc/passwd"), "weights point at /etc/passwd, a file the model does not"),
    (lambda p: setattr(p[0], "backbone_", "vgg19"), "classifier reads 1280 features but vgg19 gives 512"),
], ids=["size", "batch-size", "backbone", "segmentation", "weights-file", "feature-count"])
def test_a_crafted_model_with_a_valid_checksum_is_checked_like_a_trained_one(model_path, change, message):
    crafted = _rewrite(model_path, change)
    with pytest.raises(ModelFileError, match=f"crafted.alllib: refused, .*{message}"):
        load_model(crafted)


def _with_header(path, payload: bytes, metadata, version=str(FORMAT_VERSION).encode()):
    from alllib.learn.modelfile import _digest

    header = {"sha256": _digest(metadata, payload), "metadata": metadata}
    path.write_bytes(MAGIC + version + b"\n" + json.dumps(header).encode() + b"\n" + payload)
    return path


def test_a_zip_bomb_in_the_payload_is_refused_before_unpacking(tmp_path):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("schema.json", "w", force_zip64=True) as f:
            block = b" " * (1 << 20)
            for _ in range(200):  # 200 MB of spaces: a few hundred kB packed
                f.write(block)
    bomb = _with_header(tmp_path / "bomb.alllib", buf.getvalue(), {"classifier": "svm"})
    with pytest.raises(ModelFileError, match=r"bomb.alllib: refused, its part 'schema.json' declares 209,715,200 bytes"):
        load_model(bomb)


def test_deeply_nested_metadata_and_unknown_versions_are_refused(model_path, tmp_path):
    payload = model_path.read_bytes().split(b"\n", 2)[2]
    line = b'{"sha256": "x", "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    deep = tmp_path / "deep.alllib"
    deep.write_bytes(MAGIC + f"{FORMAT_VERSION}\n".encode() + line + b"\n" + payload)
    with pytest.raises(ModelFileError, match="deep.alllib: a damaged alllib model file .unreadable header"):
        load_model(deep)
    meta = {"classifier": "svm"}
    for d in range(40):
        meta = {"next": meta}
    with pytest.raises(ModelFileError, match="nested more than 32 levels"):
        load_model(_with_header(tmp_path / "nested.alllib", payload, meta))
    for version in (b"0", b"-1"):
        with pytest.raises(ModelFileError, match=f"format version {version.decode()} does not exist"):
            load_model(_with_header(tmp_path / "v.alllib", payload, {"classifier": "svm"}, version))


def test_fuzzed_checksummed_payloads_fail_with_one_clear_error(model_path, tmp_path):
    """Mutations of the payload, saved with a freshly computed (valid) checksum: a ModelFileError
    or the very model, never another exception."""
    from alllib.learn.modelfile import _digest

    data = model_path.read_bytes()
    _, line, payload = data.split(b"\n", 2)
    metadata = json.loads(line)["metadata"]
    rng = np.random.default_rng(7)
    bad = tmp_path / "fuzzed.alllib"
    for _ in range(40):
        b = bytearray(payload)
        for pos in rng.integers(0, len(b), size=rng.integers(1, 8)):
            b[pos] = int(rng.integers(0, 256))
        header = {"sha256": _digest(metadata, bytes(b)), "metadata": metadata}
        bad.write_bytes(MAGIC + f"{FORMAT_VERSION}\n".encode() + json.dumps(header).encode() + b"\n" + bytes(b))
        try:
            load_model(bad)
        except ModelFileError as err:
            assert "fuzzed.alllib" in str(err)


def test_an_inverted_calibration_is_detected():
    """Alternating labels along a line: each held-out point sits between cells of the other class,
    so Platt's sigmoid, fitted on held-out decisions, comes out inverted and every label of the
    calibrated model would contradict the SVM. ``train`` refuses to save such a model."""
    from alllib.learn.classifiers import fit_classifier

    X = np.arange(16, dtype=float)[:, None] * np.ones((1, 4))
    y = np.arange(16) % 2
    clf, _ = fit_classifier("svm", X, y, groups=np.arange(16), search="none", probability=True)
    assert "inverted" in calibration_problem(clf)
    X[y == 1] += 100  # separable: the sigmoid rises with the decision
    clf, _ = fit_classifier("svm", X, y, groups=np.arange(16), search="none", probability=True)
    assert calibration_problem(clf) is None


# ------------------------------------------------------------------------------ settings and usage
@pytest.mark.parametrize("argv,message", [
    (["train", "--dataset", "nosuch"], "invalid choice: 'nosuch'"),
    (["train", "--seed", "99999999999999999999999"], "above the maximum 4294967295"),
    (["book", "-p", "seed", "!!python/object/apply:os.system ['true']", "--no-html"], "-p seed .*not a plain value"),
    (["book", "-p", "seed", "99999999999999999999999", "--no-html"], "must be from 0 to 2\\*\\*32 - 1"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, message, capsys):
    import re

    try:
        rc = main(argv)
    except SystemExit as stop:  # argparse's own usage errors
        rc = stop.code
    err = capsys.readouterr().err
    assert rc == 2 and re.search(message, err), err
    assert "Traceback" not in err


@pytest.mark.parametrize("value", ["abc", "0", "-3"])
def test_a_bad_alllib_jobs_stops_before_any_work(value, monkeypatch, capsys):
    monkeypatch.setenv("ALLLIB_JOBS", value)
    assert main(["datasets"]) == 2
    assert f"ALLLIB_JOBS must be a positive integer (worker processes), not '{value}'" in capsys.readouterr().err


def test_lab_into_a_file_is_a_usage_error(tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("not a folder")
    assert main(["lab", "--out", str(target)]) == 2
    assert f"--out {target}: cannot write the lab editions there" in capsys.readouterr().err
    assert target.read_text() == "not a folder"


def test_datasets_does_not_count_a_corrupt_cnmc_image(tmp_path, synthetic, capsys):
    from .conftest import write_cnmc_tree

    data = write_cnmc_tree(tmp_path / "data", synthetic, suffix=".png")
    corrupt = next((data / "C-NMC_2019" / "training_data" / "fold_0" / "all").glob("*.png"))
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    assert main(["datasets", "--data", str(data), "--synthetic-n", "4"]) == 0
    out = capsys.readouterr().out
    assert "cnmc: 23 images" in out and "1 unreadable file(s)" in out and f"{corrupt}: not a readable image" in out

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
from alllib.features.extract import ImageTransform
from alllib.learn.familiarity import visible_cell_problem
from alllib.learn.modelfile import FORMAT_VERSION, MAGIC, ModelFileError, load_model, save_model
from alllib.learn.training import calibration_problem

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


def _svc(pipe):
    """The SVM inside a saved pipeline's calibrated classifier."""
    return pipe[1].calibrated_classifiers_[0].estimator[-1]


def _rewrite(path, change):
    """Load the pipeline of a model file without checks, change it, and save it with a valid checksum."""
    import skops.io as sio

    from alllib.learn.modelfile import TRUSTED_TYPES

    data = path.read_bytes()
    header = json.loads(data.split(b"\n")[1])
    pipe = sio.loads(data.split(b"\n", 2)[2], trusted=TRUSTED_TYPES)
    change(pipe)
    return save_model(path.with_name("crafted.alllib"), pipe, header["metadata"])


def _unchecked_transform(size: int) -> ImageTransform:
    """An image transform as a crafted file holds it: unpickling calls no constructor, so no check."""
    t = object.__new__(ImageTransform)
    for name, value in {"segmentation": None, "size": size, "interpolation": "area", "normalisation": "backbone"}.items():
        object.__setattr__(t, name, value)
    return t


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return save_model(tmp_path_factory.mktemp("m") / "model.alllib", _svm_pipeline(), {"classifier": "svm"})


@pytest.mark.parametrize("change,message", [
    (lambda p: setattr(p[0], "size", 60000), "FeatureExtractor: size must be an integer from 32 to 1024, not 60000"),
    (lambda p: setattr(p[0], "batch_size", 0), "FeatureExtractor: batch_size must be an integer from 1 to 1024, not 0"),
    (lambda p: setattr(p[0], "backbone_", "alexnet"), "backbone_='alexnet' is not a known backbone"),
    (lambda p: setattr(p[0], "segmentation", {"method": "kmeans", "evil": 1}),
     "FeatureExtractor: segmentation must be None or a dict of segment\\(\\) arguments"),
    (lambda p: setattr(p[0], "weights", "/etc/passwd"), "weights point at /etc/passwd, a file the model does not"),
    (lambda p: (setattr(p[0], "backbone_", "vgg19"), setattr(p[0], "backbone", "vgg19")),
     "classifier reads 1280 features but vgg19 gives 512"),
    (lambda p: setattr(p[0], "backbone_", "vgg19"), "backbone_='vgg19' is not the backbone asked for"),
    (lambda p: setattr(p[0], "transform_", _unchecked_transform(12000)), "transform_=.*does not follow from its"),
    (lambda p: setattr(p[0], "transform_", {"size": 60000}), "transform_=.*does not follow from its"),
    (lambda p: setattr(p[0], "extra_", 1), "unexpected attribute"),
    (lambda p: setattr(_svc(p), "support_vectors_", _svc(p).support_vectors_[:, :7]),
     "support_vectors_ is ndarray float64 .* not an array of shape"),
    (lambda p: setattr(_svc(p), "_n_support", np.array([10**6, 10**6], np.int32)), "support counts"),
    (lambda p: setattr(_svc(p), "_dual_coef_", np.full((1, 2), np.nan)), "_dual_coef_ is ndarray"),
    (lambda p: setattr(_svc(p), "_gamma", float("nan")), "gamma nan is not a positive number"),
    (lambda p: setattr(_svc(p), "kernel", "sigmoid"), "kernel 'sigmoid'"),
    (lambda p: setattr(p[1].calibrated_classifiers_[0].calibrators[0], "a_", float("inf")), "calibration's a_"),
    (lambda p: setattr(p[1].calibrated_classifiers_[0].estimator[0], "scale_", np.zeros(1280)), "scale_ holds values"),
], ids=["size", "batch-size", "backbone", "segmentation", "weights-file", "feature-count", "fitted-backbone",
        "transform-size", "transform-type", "extra-attribute", "support-vectors", "support-counts",
        "dual-coefficients", "gamma", "kernel", "calibration", "scaler"])
def test_a_crafted_model_with_a_valid_checksum_is_checked_like_a_trained_one(model_path, change, message):
    crafted = _rewrite(model_path, change)
    with pytest.raises(ModelFileError, match=f"crafted.alllib: refused, .*{message}"):
        load_model(crafted)


def test_a_crafted_model_holding_a_network_of_another_type_is_refused(model_path, monkeypatch):
    """A file whose extractor carries a stored ``_model`` (of any type: alllib never stores one)."""
    monkeypatch.setattr(FeatureExtractor, "__getstate__", lambda self: dict(self.__dict__))
    crafted = _rewrite(model_path, lambda p: setattr(p[0], "_model", [1, 2, 3]))
    with pytest.raises(ModelFileError, match="crafted.alllib: refused, FeatureExtractor: holds a network"):
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
    (["train", "--seed", "99999999999999999999999"], "argument --seed: must be a seed, an integer from 0 to 2"),
    (["book", "-p", "seed", "!!python/object/apply:os.system ['true']", "--no-html"], "-p seed .*not a plain value"),
    (["book", "-p", "seed", "99999999999999999999999", "--no-html"], "'seed' must be a seed, an integer from 0 to 2"),
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


# ------------------------------------------------------------------------------ round two
def _legacy_torch_file(path, tensors: dict, storages: dict, *, declared: dict | None = None):
    """A legacy ``torch.save`` file written by hand: ``tensors`` name -> (storage key, offset, shape,
    stride), ``storages`` key -> float32 data, ``declared`` key -> the element count the header
    claims (default: the data's)."""
    import io
    import pickle

    declared = declared or {}

    class _Storage:
        def __init__(self, key):
            self.key = key

    class _Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                return ("storage", "FloatStorage", obj.key, "cpu", declared.get(obj.key, len(storages.get(obj.key, []))))
            return None

    class _Rebuild:
        def __init__(self, key, offset, shape, stride):
            self.args = (_Storage(key), offset, tuple(shape), tuple(stride), False, {})

        def __reduce__(self):
            import collections  # noqa: F401  (the reader accepts OrderedDict and _rebuild_tensor_v2 only)

            return (_rebuild_tensor_v2, self.args)

    import sys
    import types

    fake = {"torch": types.ModuleType("torch"), "torch._utils": types.ModuleType("torch._utils")}
    fake["torch._utils"]._rebuild_tensor_v2 = _rebuild_tensor_v2  # pickle writes the name; torch is never imported
    buf = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True, "protocol_version": 1001}):
        pickle.dump(header, buf, protocol=2)
    saved = {k: sys.modules.get(k) for k in fake}
    sys.modules.update(fake)
    try:
        _Pickler(buf, protocol=2).dump({name: _Rebuild(*t) for name, t in tensors.items()})
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    pickle.dump(list(storages), buf, protocol=2)
    for data in storages.values():
        data = np.asarray(data, "<f4")
        buf.write(struct.pack("<q", len(data)) + data.tobytes())
    path.write_bytes(buf.getvalue())
    return path


def _rebuild_tensor_v2(*args):  # stands in for torch._utils._rebuild_tensor_v2 when pickling
    raise AssertionError("never called")


_rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"


def test_a_weights_file_whose_tensor_reads_outside_its_storage_is_refused(tmp_path):
    from alllib.features.efficientnet_lite import WeightsFileError, read_torch_state_dict

    good = _legacy_torch_file(tmp_path / "good.pth", {"w": ("0", 1, (2, 3), (3, 1))}, {"0": np.arange(8)})
    np.testing.assert_array_equal(read_torch_state_dict(good)["w"], np.arange(1, 7).reshape(2, 3))
    for name, tensor, declared, message in (
            ("far", ("0", 0, (4, 4), (1 << 40, 1)), None, "reaches beyond its storage"),
            ("offset", ("0", 10**9, (2,), (1,)), None, "reaches beyond its storage"),
            ("broadcast", ("0", 0, (10**6, 10**6), (0, 0)), None, "impossible layout"),
            ("repeated", ("0", 0, (8, 8), (0, 0)), None, "reaches beyond its storage"),
            ("negative", ("0", 0, (2, 2), (-1, 1)), None, "impossible layout"),
            ("float", ("0", 0.5, (2,), (1,)), None, "impossible layout"),
            ("missing", ("7", 0, (2,), (1,)), None, "not in the file"),
            ("huge count", ("0", 0, (2,), (1,)), {"0": 10**15}, "declares 8 elements, but its tensors say")):
        bad = _legacy_torch_file(tmp_path / f"{name}.pth", {"w": tensor}, {"0": np.arange(8)}, declared=declared)
        with pytest.raises(WeightsFileError, match=rf"{name}.pth: .*{message}"):
            read_torch_state_dict(bad)


def test_a_model_vouching_for_a_crafted_weights_file_is_refused_in_one_line_not_a_crash(tmp_path):
    """The model file names a weights file beside it and vouches for it by its SHA-256; the weights
    file makes a tensor read outside its storage. predict must refuse in one line (exit 2), not
    die with a signal: run in a child process, so a crash cannot take the test runner with it."""
    from alllib.features import file_sha256

    stem = ("0", 0, (32, 3, 3, 3), (1 << 40, 1, 1, 1))
    weights = _legacy_torch_file(tmp_path / "weights.pth", {"_conv_stem.weight": stem}, {"0": np.zeros(864)})
    model = save_model(tmp_path / "vouching.alllib", _svm_pipeline(weights=str(weights)),
                       {"classifier": "svm", "weights_sha256": file_sha256(weights)})
    image = tmp_path / "cell.png"
    import cv2

    cv2.imwrite(str(image), np.full((64, 64, 3), 128, np.uint8))
    run = subprocess.run([sys.executable, "-m", "alllib", "predict", str(model), str(image)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    assert "Traceback" not in run.stderr and "weights.pth" in run.stderr
    assert "reaches beyond its storage" in run.stderr
    other = tmp_path / "notes.txt"  # the vouched file is not a weights file at all
    other.write_text("not weights")
    model = save_model(tmp_path / "text.alllib", _svm_pipeline(weights=str(other)),
                       {"classifier": "svm", "weights_sha256": file_sha256(other)})
    run = subprocess.run([sys.executable, "-m", "alllib", "predict", str(model), str(image)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "notes.txt" in run.stderr, run.stderr[-2000:]


@pytest.mark.parametrize("seed", range(200))
def test_weights_files_with_random_layouts_are_read_inside_their_buffers_or_refused(tmp_path, seed):
    """Random shapes, strides and offsets (some absurd): each tensor is either an array of exactly
    its shape, whose every element is an element of its storage, or a WeightsFileError."""
    from alllib.features.efficientnet_lite import WeightsFileError, read_torch_state_dict

    rng = np.random.default_rng(seed)
    storage = rng.normal(size=int(rng.integers(1, 64))).astype(np.float32)
    ndim = int(rng.integers(0, 4))
    pick = lambda big: int(rng.choice([rng.integers(0, 6), rng.integers(0, 1 << 62)]) if big else rng.integers(0, 6))  # noqa: E731
    shape = tuple(pick(rng.random() < 0.2) for _ in range(ndim))
    stride = tuple(pick(rng.random() < 0.2) for _ in range(ndim))
    offset = pick(rng.random() < 0.2)
    path = _legacy_torch_file(tmp_path / "w.pth", {"w": ("0", offset, shape, stride)}, {"0": storage})
    try:
        out = read_torch_state_dict(path)["w"]
    except WeightsFileError:
        return
    assert out.shape == shape and np.isin(out, storage).all()


def _huge_header(fmt: str, side: int) -> bytes:
    """A file of ``fmt`` whose header declares ``side`` x ``side`` pixels, with (almost) no data."""
    if fmt == "hdr":
        return f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {side} +X {side}\n".encode() + b"\x02\x02" * 64
    if fmt == "pfm":
        return f"PF\n{side} {side}\n-1.0\n".encode() + b"\0" * 64
    if fmt == "pam":
        return f"P7\nWIDTH {side}\nHEIGHT {side}\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n".encode() + b"\0" * 64
    if fmt == "ppm":
        return f"P6\n{side} {side}\n255\n".encode() + b"\0" * 64
    if fmt == "bmp":
        return (b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, side, side, 1, 24, 0,
                                                                             0, 2835, 2835, 0, 0) + b"\0" * 64)
    if fmt == "png":
        ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
        chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    if fmt == "tiff":
        entries = [(256, 4, 1, side), (257, 4, 1, side), (258, 3, 1, 8), (262, 3, 1, 2), (273, 4, 1, 8),
                   (277, 3, 1, 3), (279, 4, 1, side * side * 3)]
        ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
        return b"II*\x00" + struct.pack("<I", 8) + ifd
    raise ValueError(fmt)


@pytest.mark.parametrize("fmt", ["hdr", "pfm", "pam", "ppm", "bmp", "png", "tiff"])
@pytest.mark.parametrize("suffix", [".png", ".bmp"])
def test_images_declaring_huge_sizes_in_any_format_are_refused_before_decoding(tmp_path, fmt, suffix):
    """30000 x 30000 pixels declared by the header of every format OpenCV decodes, whatever the
    file name says: refused with a message naming the file, in bounded memory (the limit is
    50 megapixels; decoding would take 2.7 GB)."""
    import resource

    path = tmp_path / f"huge-{fmt}{suffix}"
    path.write_bytes(_huge_header(fmt, 30000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageReadError, match=f"huge-{fmt}"):
        read_image(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB: nothing was decoded


def test_fifos_devices_and_links_in_the_cache_neither_block_nor_redirect(tmp_path, monkeypatch):
    """A FIFO named like the store's settings file or a memo, and a link named like a memo pointing
    elsewhere: the run goes on (in a child process with a time limit, as a hang would never end),
    and the link's target is left untouched."""
    import os

    cache = tmp_path / "cache"
    code = f"""
import os, numpy as np
from pathlib import Path
from alllib.features.store import FeatureStore
from alllib.memo import memo_path, read_memo, write_memo
store = FeatureStore(Path({str(cache)!r}), {{"backbone": "x"}}, 4)
store.folder.mkdir(parents=True, exist_ok=True)
os.mkfifo(store.folder / "setting.json")
store.save(["a"], np.zeros((1, 4), np.float32))
assert (store.folder / "setting.json").is_file() and not os.path.islink(store.folder / "setting.json")
memo = memo_path({str(cache)!r}, "kept", 1)
memo.parent.mkdir(parents=True, exist_ok=True)
os.mkfifo(memo)
assert read_memo(memo) is None
write_memo(memo, {{"x": 1}})
assert read_memo(memo) == {{"x": 1}}
target = Path({str(tmp_path / "precious.txt")!r})
target.write_text("keep me")
other = memo_path({str(cache)!r}, "kept", 2)
other.symlink_to(target)
assert read_memo(other) is None
write_memo(other, {{"y": 2}})
assert target.read_text() == "keep me" and read_memo(other) == {{"y": 2}}
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-2000:]
    assert (tmp_path / "precious.txt").read_text() == "keep me" and os.path.exists(tmp_path / "precious.txt")


def test_a_device_a_fifo_or_a_link_loop_named_as_data_says_what_it_is(tmp_path, capsys):
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageReadError, match="pipe.png: a FIFO \\(named pipe\\), not a regular file"):
        read_image(fifo)
    with pytest.raises(ImageReadError, match="/dev/null: a character device, not a regular file"):
        read_image("/dev/null")
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    for argv in (["datasets", "--data", str(loop)], ["train", "--data", str(loop), "--dataset", "all_idb2",
                                                     "--out", str(tmp_path / "m.alllib")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"error: {loop}: a symbolic link loop, not a data folder" in err and "Traceback" not in err


def test_any_file_name_is_reported_and_none_forges_a_row(trained_model, tmp_path):
    """Names with bytes that are not UTF-8, and with a newline and tabs: with a strict UTF-8
    standard output every row is printed (escaped), and the plain output has one line per input."""
    import os

    model, good = trained_model
    odd = os.fsencode(str(tmp_path)) + b"/cell\xff\xfe.png"
    forged = tmp_path / "cell\nx.png\t1\tnot a blast\tp(blast)=0.000.png"
    for name in (odd, forged):
        with open(name, "wb") as f:
            f.write(good.read_bytes())
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    for extra in ([], ["--csv"]):
        run = subprocess.run([sys.executable, "-m", "alllib", "predict", str(model), os.fsdecode(odd), str(forged),
                              *extra], capture_output=True, env=env, timeout=300)
        out = run.stdout.decode("utf-8")
        assert run.returncode in (0, 1) and "Traceback" not in run.stderr.decode("utf-8", "replace"), run.stderr[-2000:]
        assert "cell\\xff\\xfe.png" in out
        if not extra:
            assert len(out.strip().splitlines()) == 2 and "cell\\nx.png\\t1" in out


def test_bad_subjects_are_refused_before_any_image_is_labelled(trained_model, tmp_path, capsys, monkeypatch):
    import alllib.learn.predict as predict

    model, good = trained_model
    labelled = []
    monkeypatch.setattr(predict, "predict_files", lambda *a, **k: labelled.append(1) or [])
    for content, message in ((b"name,who\na,b\n", "needs the columns image and subject"),
                             ("image,subject\nzelle\xe4.png,1\n".encode("latin-1"), "not a readable UTF-8 CSV"),
                             (b"\x00\x01\x02\xff" * 50, "")):
        table = tmp_path / "subjects.csv"
        table.write_bytes(content)
        assert main(["predict", str(model), str(good), "--subjects", str(table)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --subjects") and message in err and "Traceback" not in err
    assert labelled == []


def test_a_usage_error_is_one_line():
    run = subprocess.run([sys.executable, "-m", "alllib", "train", "--search", "everything"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'everything'" in run.stderr and "--help" in run.stderr


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    """A model file (random weights, so no download) and one image it can label."""
    import cv2

    folder = tmp_path_factory.mktemp("predict")
    model = save_model(folder / "model.alllib", _svm_pipeline(weights="random"), {"classifier": "svm"})
    image = folder / "good.png"
    img = np.zeros((64, 64, 3), np.uint8)
    img[16:48, 16:48] = (120, 60, 160)
    cv2.imwrite(str(image), img)
    return model, image


_FITTED = [("svm", "support_vectors_"), ("svm", "dual_coef_"), ("svm", "_dual_coef_"), ("svm", "intercept_"),
           ("svm", "_intercept_"), ("svm", "_n_support"), ("svm", "support_"), ("svm", "_gamma"), ("svm", "degree"),
           ("svm", "_probA"), ("scale", "mean_"), ("scale", "scale_"), ("calibration", "a_"), ("calibration", "b_"),
           ("features", "transform_"), ("features", "backbone_"), ("features", "weights_label_")]


def _junk(rng, like):
    """Something in place of a fitted attribute: another shape, type, values that are not finite, or
    a plausible array of the right shape (which must then predict without harm)."""
    choice = int(rng.integers(7))
    if choice == 0:
        return None
    if choice == 1:
        return "junk"
    if choice == 2:
        return float(rng.choice([np.nan, np.inf, -1e308, 0.0, 1e308]))
    if choice == 3:
        return np.full(int(rng.integers(0, 5)), np.nan)
    if choice == 4 and isinstance(like, np.ndarray):
        return np.zeros(tuple(int(d) + int(rng.integers(1, 3)) for d in like.shape), like.dtype)
    if choice == 5 and isinstance(like, np.ndarray):
        return np.full(like.shape, rng.choice([np.iinfo(np.int32).max, -1]), like.dtype)
    if isinstance(like, np.ndarray):
        return rng.normal(size=like.shape).astype(like.dtype)
    return int(rng.integers(-5, 10**6))


@pytest.mark.parametrize("seed", range(60))
def test_models_with_random_fitted_state_are_refused_or_predict_safely(model_path, seed):
    """A checksummed model whose fitted state is replaced at random: load_model refuses it with a
    ModelFileError, or (a plausible array of the right shape) it loads and predicts finite
    probabilities; never another exception, never a crash."""
    rng = np.random.default_rng(seed)
    where, name = _FITTED[seed % len(_FITTED)]

    def change(p):
        calibrated = p[1].calibrated_classifiers_[0]
        target = {"svm": calibrated.estimator[-1], "scale": calibrated.estimator[0],
                  "calibration": calibrated.calibrators[0], "features": p[0]}[where]
        setattr(target, name, _junk(rng, getattr(target, name, None)))

    crafted = _rewrite(model_path, change)
    try:
        pipe, _ = load_model(crafted)
    except ModelFileError as err:
        assert "crafted.alllib: refused" in str(err) or "crafted.alllib" in str(err)
        return
    from alllib.learn.predict import classify_features

    labels, proba = classify_features(pipe, rng.normal(size=(4, 1280)))
    assert set(labels.tolist()) <= {0, 1} and np.isfinite(proba).all()

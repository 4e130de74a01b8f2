"""Deep features: the offline EfficientNet-Lite0 port, the Keras backbones, cache and errors."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("keras", reason="tensorflow/keras not installed")

from alllib import features as F  # noqa: E402
from alllib.data.synthetic import make_synthetic  # noqa: E402
from alllib.features import backbones as B  # noqa: E402
from alllib.features import extract as E  # noqa: E402
from alllib.features import store as S  # noqa: E402
from alllib.features.efficientnet_lite import VARIANTS, WeightsFileError, build_efficientnet_lite, read_torch_state_dict
from alllib.paths import efficientnet_lite_weights  # noqa: E402

pytestmark = pytest.mark.slow


def _imagenet_input(img, side=224):
    """ImageNet's evaluation crop: the short side resized to side / 0.875, the centre side x side."""
    import cv2

    h, w = img.shape[:2]
    s = round(side / 0.875) / min(h, w)
    img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    y, x = (h - side) // 2, (w - side) // 2
    return ((img[y:y + side, x:x + side].astype(np.float32) - 127) / 128)[None]


@pytest.fixture(scope="module")
def lite_classifier():
    return build_efficientnet_lite("efficientnet_lite0", weights="imagenet", include_top=True)


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_larger_ports_classify_at_their_native_size(name):
    """Lite1 and Lite2, built from their own stage tables and packages, find the espresso and the
    cat at 240 and 260 pixels; the same networks with random weights do not."""
    from skimage import data

    side = VARIANTS[name][1]
    model = build_efficientnet_lite(name, weights="imagenet", include_top=True)
    assert model.input_shape == (None, side, side, 3) and model.output_shape == (None, 1000)
    coffee = model.predict(_imagenet_input(data.coffee(), side), verbose=0)[0]
    cat = model.predict(_imagenet_input(data.chelsea(), side), verbose=0)[0]
    assert int(np.argmax(coffee)) == 967 and int(np.argmax(cat)) in range(281, 286)
    rand = build_efficientnet_lite(name, weights=None, include_top=True)
    assert int(np.argmax(rand.predict(_imagenet_input(data.coffee(), side), verbose=0)[0])) != 967


def test_a_variants_weights_do_not_fit_another():
    """Lite1's deeper stages do not fit Lite0, nor Lite2's wider ones Lite1: refused, naming the file."""
    with pytest.raises(WeightsFileError, match="lite1-.*does not hold efficientnet_lite0 weights"):
        build_efficientnet_lite("efficientnet_lite0", weights=efficientnet_lite_weights(1))
    with pytest.raises(WeightsFileError, match="does not hold efficientnet_lite1 weights"):
        build_efficientnet_lite("efficientnet_lite1", weights=efficientnet_lite_weights(2))


def test_port_classifies_espresso(lite_classifier):
    from skimage import data

    logits = lite_classifier.predict(_imagenet_input(data.coffee()), verbose=0)[0]
    assert int(np.argmax(logits)) == 967  # espresso


def test_port_sees_a_cat(lite_classifier):
    from skimage import data

    logits = lite_classifier.predict(_imagenet_input(data.chelsea()), verbose=0)[0]
    assert int(np.argmax(logits)) in range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_port_matches_pytorch_reference(lite_classifier):
    """Logits and pooled features agree with PyTorch's own forward pass of the same weights.

    The reference values were computed once with torch and the weights' reference implementation
    (see ``tests/fixtures/lite0_reference.py``); a wrong padding, transposition, epsilon or input
    scaling moves them far beyond this tolerance.
    """
    from tests.fixtures.lite0_reference import REFERENCE_FILE, reference_input

    ref = np.load(REFERENCE_FILE)
    x = reference_input()
    np.testing.assert_allclose(lite_classifier.predict(x, verbose=0), ref["logits"], atol=1e-4, rtol=0)
    features = build_efficientnet_lite("efficientnet_lite0", weights="imagenet").predict(x, verbose=0)
    np.testing.assert_allclose(features, ref["features"], atol=1e-4, rtol=0)


def test_random_weights_do_not_classify(lite_classifier):
    """The check above can fail: the same network with random weights does not find espresso."""
    from skimage import data

    rand = build_efficientnet_lite("efficientnet_lite0", weights=None, include_top=True)
    assert int(np.argmax(rand.predict(_imagenet_input(data.coffee()), verbose=0)[0])) != 967


def test_state_dict_reader():
    state = read_torch_state_dict(efficientnet_lite_weights(0))
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert (state["_bn0.running_var"] >= 0).all() and state["_bn0.running_var"].max() > 1
    assert state["_conv_stem.weight"].flags["C_CONTIGUOUS"]


def test_reader_refuses_foreign_pickles(tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"little_endian": True}, f, protocol=2)
        f.write(b"cos\nsystem\n(S'echo hacked'\ntR.")
    with pytest.raises(WeightsFileError, match="refusing to load os.system"):
        read_torch_state_dict(evil)
    zipfile = tmp_path / "new.pth"
    zipfile.write_bytes(b"PK\x03\x04" + b"\x00" * 20)
    with pytest.raises(WeightsFileError, match="new.pth"):
        read_torch_state_dict(zipfile)


@pytest.mark.parametrize("name", list(F.BACKBONES))
def test_feature_shape_per_backbone(name):
    model, label = F.load_backbone(name, weights="random", input_size=64)
    x = np.zeros((2, 64, 64, 3), np.float32)
    assert model.predict_on_batch(x).shape == (2, F.BACKBONES[name].dim)
    assert "NOT ImageNet" in label


def test_densenet201_is_1920_wide():
    assert F.BACKBONES["densenet201"].dim == 1920 and F.BACKBONES["densenet201"].preprocessing == "torch"
    assert F.BACKBONES["vgg19"].preprocessing == "caffe" and F.BACKBONES["mobilenetv2"].preprocessing == "tf"


def test_missing_weights_offline_names_the_file(tmp_path, monkeypatch):
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(B, "_FAILED_DOWNLOADS", {})

    def offline(*a, **k):
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(F.WeightsUnavailableError) as err:
        F.load_backbone("densenet201", weights="imagenet")
    msg = str(err.value)
    assert "densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg and str(tmp_path / "models") in msg
    assert F.resolve_backbone("auto", verbose=False) == "efficientnet_lite0"
    with pytest.raises(F.WeightsUnavailableError, match="nothing.h5: weights file not found"):
        F.load_backbone("vgg19", weights=tmp_path / "nothing.h5")


def test_auto_prefers_densenet_when_cached(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / F.BACKBONES["densenet201"].weights_file).write_bytes(b"stand-in")
    assert F.resolve_backbone("auto") == "densenet201"
    assert "DenseNet-201" in capsys.readouterr().out


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone 'alexnet'"):
        F.resolve_backbone("alexnet")


# ------------------------------------------------------------------ extraction and cache
def _extract(ds, tmp_path, **kw):
    args = dict(backbone="efficientnet_lite0", weights="random", size=64, cache_path=tmp_path, progress=False)
    args.update(kw)
    return F.extract_features(ds, **args)


def test_extract_streams_caches_and_reuses(tmp_path):
    ds = make_synthetic(6, size=80, seed=1)
    first = _extract(ds, tmp_path, batch_size=4)
    assert first.X.shape == (6, 1280) and first.computed == 6 and first.cached == 0
    again = _extract(ds, tmp_path)
    assert again.computed == 0 and again.cached == 6 and np.array_equal(first.X, again.X)
    part = _extract(ds.subset([4, 5]), tmp_path)  # a subset hits the same cache
    assert part.computed == 0 and np.array_equal(part.X, first.X[4:])
    assert "NOT ImageNet" in first.weights


@pytest.mark.parametrize(
    "change",
    [
        {"segmentation": {"method": "kmeans", "k": 3}},
        {"normalisation": "paper"},
        {"size": 72},
        {"interpolation": "linear"},
        {"seed": 1},  # other random weights
        {"backbone": "mobilenetv2"},
    ],
)
def test_cache_key_changes_with_every_input(tmp_path, change):
    ds = make_synthetic(2, size=80, seed=1)
    _extract(ds, tmp_path)
    assert _extract(ds, tmp_path, **change).computed == 2


def test_cache_key_changes_with_image_content_and_format(tmp_path, monkeypatch):
    _extract(make_synthetic(2, size=80, seed=1), tmp_path)
    assert _extract(make_synthetic(2, size=80, seed=2), tmp_path).computed == 2
    monkeypatch.setattr(E, "FEATURE_FORMAT_VERSION", F.FEATURE_FORMAT_VERSION + 1)
    monkeypatch.setattr(S, "FEATURE_FORMAT_VERSION", F.FEATURE_FORMAT_VERSION + 1)
    assert _extract(make_synthetic(2, size=80, seed=1), tmp_path).computed == 2


def test_cache_bypass_and_clear(tmp_path):
    ds = make_synthetic(2, size=80, seed=1)
    _extract(ds, tmp_path)
    assert _extract(ds, tmp_path, cache=False).computed == 2
    assert F.clear_cache(tmp_path) >= 1
    assert _extract(ds, tmp_path).computed == 2


def _shards(tmp_path):
    return sorted(tmp_path.glob("features-v*/*/shard-*.npz"))


def _damage_zip(p):
    p.write_bytes(p.read_bytes()[:100])


def _bad_crc(p):
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


def _rewrite(p, **arrays):
    with np.load(p) as z:
        content = {k: z[k] for k in z.files}
    content.update(arrays)
    np.savez(p.with_suffix(""), **content)  # np.savez adds .npz


@pytest.mark.parametrize("damage", [
    _damage_zip, _bad_crc, lambda p: p.write_bytes(b""),
    lambda p: _rewrite(p, X=np.full((2, 1280), np.nan, np.float32)),  # a NaN-filled shard
    lambda p: _rewrite(p, X=np.zeros((2, 7), np.float32)),             # wrong shape
    lambda p: _rewrite(p, X=np.ones((2, 1280), np.float32)),           # valid-looking, wrong content
], ids=["truncated", "bad-crc", "empty", "nan", "shape", "checksum"])
def test_a_damaged_cache_shard_is_reported_discarded_and_recomputed(tmp_path, damage):
    ds = make_synthetic(2, size=80, seed=1)
    first = _extract(ds, tmp_path)
    (shard,) = _shards(tmp_path)
    damage(shard)
    with pytest.warns(F.FeatureCacheWarning, match=f"discarding {shard}"):
        again = _extract(ds, tmp_path)
    assert again.computed == 2 and np.allclose(again.X, first.X, atol=1e-5)
    assert _extract(ds, tmp_path).computed == 0  # healed: the recomputed shard is used next time


def test_a_damaged_shard_in_a_read_only_cache_is_ignored_in_memory(tmp_path, monkeypatch):
    """A cache that cannot be written (a lab's shared copy): the bad shard cannot be removed, so
    it is left out of the run in memory and the run goes on (it used to abort with Errno 30)."""
    from pathlib import Path

    ds = make_synthetic(2, size=80, seed=1)
    first = _extract(ds, tmp_path)
    (shard,) = _shards(tmp_path)
    _bad_crc(shard)

    def read_only(self, missing_ok=False):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(Path, "unlink", read_only)
    monkeypatch.setattr(S.FeatureStore, "writable", lambda self: False)
    with pytest.warns(F.FeatureCacheWarning, match="could not be removed .Read-only file system., so it is ignored"):
        again = _extract(ds, tmp_path)
    assert again.computed == 2 and np.allclose(again.X, first.X, atol=1e-5) and shard.exists()


def test_things_named_like_shards_are_skipped_not_opened(tmp_path):
    """A folder or a FIFO named like a shard (a FIFO used to hang the run) is left alone."""
    import os

    ds = make_synthetic(2, size=80, seed=1)
    _extract(ds, tmp_path)
    folder = _shards(tmp_path)[0].parent
    (folder / "shard-99998-1-a.npz").mkdir()
    os.mkfifo(folder / "shard-99999-1-b.npz")
    with pytest.warns(F.FeatureCacheWarning, match="not a regular file"):
        assert _extract(ds, tmp_path).computed == 0
    assert (folder / "shard-99998-1-a.npz").is_dir()


def test_temporary_shards_left_by_a_killed_run_are_swept(tmp_path):
    import os

    ds = make_synthetic(2, size=80, seed=1)
    _extract(ds, tmp_path)
    folder = _shards(tmp_path)[0].parent
    old, fresh = folder / ".tmp-killed.npz", folder / ".tmp-writing-now.npz"
    old.write_bytes(b"half a shard")
    fresh.write_bytes(b"another run's shard, being written")
    past = S._PROCESS_START - S.FeatureStore.STALE_SECONDS - 60
    os.utime(old, (past, past))
    assert _extract(ds, tmp_path).computed == 0
    assert not old.exists() and fresh.exists()


def test_a_read_only_cache_is_reported_before_the_work(tmp_path, monkeypatch):
    import tempfile

    ds = make_synthetic(2, size=80, seed=1)
    calls = []

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    monkeypatch.setattr(E, "_run_batches", lambda *a, **k: calls.append("work") or np.zeros((2, 1280), np.float32))
    with pytest.warns(F.FeatureCacheWarning, match="cannot write to .*Permission denied.*not stored") as caught:
        out = _extract(ds, tmp_path)
    assert out.computed == 2 and calls == ["work"]
    assert caught[0].message.args and not _shards(tmp_path)


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    ds = make_synthetic(2, size=80, seed=1)
    real = np.savez

    def full_disk(f, **arrays):
        real(f, **arrays)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(S.np, "savez", full_disk)
    with pytest.warns(F.FeatureCacheWarning, match="No space left on device"):
        assert _extract(ds, tmp_path).computed == 2
    monkeypatch.setattr(S.np, "savez", real)
    assert not list(tmp_path.rglob(".tmp-*")) and not _shards(tmp_path)
    assert _extract(ds, tmp_path).computed == 2


def test_deterministic_without_cache(tmp_path):
    ds = make_synthetic(3, size=80, seed=1)
    a = _extract(ds, tmp_path, cache=False)
    b = _extract(ds, tmp_path, cache=False)
    assert np.allclose(a.X, b.X)


def test_file_dataset_keys_follow_content(tmp_path, idb2_tree):
    from alllib.data import load_all_idb2

    ds = load_all_idb2(idb2_tree)
    assert ds.image_key(1) == ds.image_key(5)  # byte-identical files share features
    assert ds.image_key(0) != ds.image_key(1)


def test_feature_extractor_transformer_pickles_without_model():
    from sklearn.pipeline import make_pipeline

    ds = make_synthetic(2, size=80, seed=1)
    fx = F.FeatureExtractor("efficientnet_lite0", weights="random", size=64)
    out = make_pipeline(fx).fit_transform(ds.images())
    assert out.shape == (2, 1280)
    clone = pickle.loads(pickle.dumps(fx))
    assert clone._model is None and np.allclose(clone.transform(ds.images()), out, atol=1e-5)


def test_bad_parameters():
    ds = make_synthetic(2, size=80)
    with pytest.raises(ValueError, match="batch_size"):
        F.extract_features(ds, "efficientnet_lite0", batch_size=0)
    with pytest.raises(ValueError, match="normalisation"):
        F.extract_features(ds, "efficientnet_lite0", normalisation="imagenet")


def test_local_weights_path_is_accepted():
    x = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    by_name, label = F.load_backbone("efficientnet_lite0", weights="imagenet", input_size=64)
    by_path, label_path = F.load_backbone("efficientnet_lite0", weights=efficientnet_lite_weights(0), input_size=64)
    assert label == "ImageNet" and label_path == f"from {efficientnet_lite_weights(0).name}"
    assert np.allclose(by_name.predict_on_batch(x), by_path.predict_on_batch(x), atol=1e-5)


def test_weights_identity_is_the_files_content(tmp_path):
    """Two weights files with the same name and size but other bytes never share cached features."""
    a, b = tmp_path / "a" / "w.h5", tmp_path / "b" / "w.h5"
    for path, byte in ((a, b"\x01"), (b, b"\x02")):
        path.parent.mkdir()
        path.write_bytes(byte * 1000)
    assert B._weights_identity(a) != B._weights_identity(b)
    twin = tmp_path / "twin.h5"
    twin.write_bytes(a.read_bytes())
    assert B._weights_identity(twin) == B._weights_identity(a)
    a.write_bytes(b"\x03" * 1000)  # changed in place: hashed again
    assert B._weights_identity(a) != B._weights_identity(twin)


def test_bfloat16_is_an_option_cached_apart_and_close_to_float32(tmp_path):
    ds = make_synthetic(4, size=64)
    args = dict(backbone="efficientnet_lite0", size=64, cache_path=tmp_path, progress=False)
    a = F.extract_features(ds, **args)
    b = F.extract_features(ds, precision="bfloat16", **args)
    assert b.computed == len(ds)  # not served from the float32 cache
    assert "precision" not in a.info["setting"] and b.info["setting"]["precision"] == "bfloat16"
    cos = (a.X * b.X).sum(1) / (np.linalg.norm(a.X, axis=1) * np.linalg.norm(b.X, axis=1))
    assert cos.min() > 0.98 and not np.array_equal(a.X, b.X)
    assert F.import_keras().config.dtype_policy().name == "float32"  # the global policy is restored
    with pytest.raises(ValueError, match="precision"):
        F.extract_features(ds, precision="half", **args)


def test_the_compiled_forward_pass_matches_keras_and_traces_once():
    """``forward`` gives Keras' own outputs, for batches of any size, through one trace per model
    (Keras' predict_on_batch traces anew for each batch shape: a quarter of chapter 11's time)."""
    from alllib.features.keras import _FORWARD, forward

    ex = F.FeatureExtractor("efficientnet_lite0", weights="random", size=64).fit()
    model = ex._network()
    x = np.random.default_rng(0).normal(size=(9, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(forward(model, x), model.predict_on_batch(x), rtol=1e-4, atol=1e-5)
    for n in (1, 5, 9):
        assert forward(model, x[:n]).shape == (n, F.BACKBONES["efficientnet_lite0"].dim)
    assert len(_FORWARD[model].get_concrete_function().graph.inputs) >= 1
    assert _FORWARD[model].experimental_get_tracing_count() == 1

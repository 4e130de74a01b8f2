"""Keras, imported once and quietly, and the precision its models are built in.

>>> PRECISIONS
('float32', 'bfloat16')
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import weakref
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter hides the book's output

__all__ = ["import_keras", "forward", "PRECISIONS", "check_precision", "cpu_supports_bfloat16", "precision_policy"]


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


_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # a model's compiled forward pass, made once


def forward(model, x: np.ndarray) -> np.ndarray:
    """``model``'s outputs for the batch ``x`` (numpy in, numpy out), through one compiled
    ``tf.function`` per model whose batch size is left open: any number of images, one trace.
    Keras' ``predict_on_batch`` traces anew for batch shapes it has not seen, which cost the
    attribution chapter a quarter of its time (occlusion, deletion and insertion send batches of
    many sizes)."""
    import_keras()  # imports TensorFlow once, quietly
    tf = sys.modules["tensorflow"]
    fn = _FORWARD.get(model)
    if fn is None:
        spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], model.inputs[0].dtype)
        ref = weakref.ref(model)  # the function must not keep the model alive (its cache entry would never go)
        fn = _FORWARD[model] = tf.function(lambda batch: ref()(batch, training=False), input_signature=[spec])
    out = fn(tf.convert_to_tensor(np.asarray(x), dtype=model.inputs[0].dtype))
    return np.asarray(out if not isinstance(out, (list, tuple)) else out[0], dtype=np.float32)


PRECISIONS = ("float32", "bfloat16")


def cpu_supports_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (the AVX512_BF16 or AMX_BF16 instructions);
    elsewhere bfloat16 is emulated and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")


@contextlib.contextmanager
def precision_policy(precision: str = "float32"):
    """Build Keras models inside this block in ``precision``: ``"float32"``, or ``"bfloat16"``
    (Keras' ``mixed_bfloat16``: float32 weights, bfloat16 computation). The global policy is
    restored on leaving the block."""
    check_precision(precision)
    keras = import_keras()
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(policy)


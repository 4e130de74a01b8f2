"""Reading image files: any RGB, grayscale, RGBA or 16-bit file as an RGB ``uint8`` array, with
clear errors for what cannot be read and a bound on the pixels any file may declare.

>>> import tempfile, cv2, numpy as np, os
>>> p = os.path.join(tempfile.mkdtemp(), "gray.png")
>>> _ = cv2.imwrite(p, np.full((4, 5), 7, np.uint8))
>>> read_image(p).shape
(4, 5, 3)
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from pathlib import Path

import cv2
import numpy as np

from alllib.constraints import positive_int
from alllib.errors import AlllibError, DatasetError
from alllib.paths import NotRegularFileError, read_regular

__all__ = ["IMAGE_SUFFIXES", "UnreadableImageWarning", "ImageReadError", "DatasetError", "MAX_PIXELS", "max_pixels",
           "declared_size", "read_image", "decode_image", "file_md5", "image_files"]

IMAGE_SUFFIXES = {".tif", ".tiff", ".bmp", ".png", ".jpg", ".jpeg"}

class UnreadableImageWarning(UserWarning):
    """An image file left out of a dataset because it cannot be decoded."""


class ImageReadError(AlllibError, ValueError):
    """An image file that cannot be decoded into an RGB picture."""


#: The most pixels (width x height) an image may declare and still be decoded: generous for
#: microscope slides (ALL-IDB1's are 2592 x 1944, 5 megapixels) and far below what would
#: exhaust memory (3 bytes a pixel, and a few float copies in the pipeline).
MAX_PIXELS = 50_000_000


def max_pixels() -> int:
    """The decoding limit in pixels: ``$ALLLIB_MAX_PIXELS`` where set, else :data:`MAX_PIXELS`."""
    return positive_int("ALLLIB_MAX_PIXELS", MAX_PIXELS, "pixels")


def declared_size(raw: bytes | np.ndarray) -> tuple[int, int] | None:
    """``(width, height)`` that an image file's header declares, read without decoding the
    pixels (Pillow's lazy open); ``None`` where Pillow does not know the format, and
    :func:`decode_image` then refuses the file (formats OpenCV alone reads, such as Radiance HDR
    or PAM, would be decoded whole before their size could be checked). A header beyond
    Pillow's own decompression-bomb limit gives ``(pixels, 1)``: its pixel count is all it says.

    >>> import cv2, numpy as np
    >>> declared_size(cv2.imencode(".png", np.zeros((3, 5), np.uint8))[1])
    (5, 3)
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(bytes(raw))) as im:  # the header only
                return int(im.size[0]), int(im.size[1])
    except Image.DecompressionBombError as err:
        m = re.search(r"\((\d+) pixels\)", str(err))
        return (int(m.group(1)), 1) if m else (2**31, 1)
    except Exception:  # not a format Pillow knows, or a damaged header: OpenCV decides
        return None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an RGB ``uint8`` array of shape ``(H, W, 3)``.

    Grayscale images are repeated into three channels, an alpha channel is dropped and 16-bit
    images are scaled to 8 bits (``round(v / 257)``, so 65535 becomes 255). Anything that cannot
    be decoded raises :class:`ImageReadError` naming the file; the file is never touched.

    >>> import tempfile, cv2, numpy as np, os
    >>> p = os.path.join(tempfile.mkdtemp(), "gray.png")
    >>> _ = cv2.imwrite(p, np.full((4, 5), 7, np.uint8))
    >>> read_image(p).shape
    (4, 5, 3)
    """
    path = Path(path)
    limit = max_pixels()
    try:  # more bytes than the largest image allowed can take, even 16-bit RGBA, are not read
        raw = read_regular(path, limit=8 * limit + (1 << 20))
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except NotRegularFileError as err:
        if path.is_dir():
            raise ImageReadError(f"{path}: a directory, not an image file") from None
        more = " (ALLLIB_MAX_PIXELS raises the limit of pixels, and of bytes with it)" if "bytes" in str(err) else ""
        raise ImageReadError(f"{err}; it is not read as an image{more}") from None
    except OSError as err:
        raise ImageReadError(f"{path}: cannot be read ({err.strerror or err})") from None
    return decode_image(np.frombuffer(raw, dtype=np.uint8), path)


def decode_image(raw: np.ndarray, path: Path) -> np.ndarray:
    """:func:`read_image` on bytes already read from ``path``."""
    if raw.size == 0:
        raise ImageReadError(f"{path}: the file is empty")
    limit = max_pixels()
    size = declared_size(raw)
    if size is None:  # no header to bound the pixels by before decoding: not decoded at all
        raise ImageReadError(f"{path}: not a readable image (not a format alllib reads: PNG, JPEG, TIFF, BMP, WebP, "
                             "PPM; or a damaged header); it is not decoded")
    if size[0] * size[1] > limit:
        shape = f"{size[0]} x {size[1]} pixels" if size[1] > 1 else f"{size[0]:,} pixels"
        raise ImageReadError(f"{path}: declares {shape} ({size[0] * size[1] / 1e6:,.0f} megapixels), above the limit "
                             f"of {limit / 1e6:,.0f} megapixels; it is not decoded "
                             "(ALLLIB_MAX_PIXELS raises the limit)")
    img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f"{path}: not a readable image (corrupt, truncated or an unknown format)")
    if img.shape[0] * img.shape[1] > limit:
        raise ImageReadError(f"{path}: {img.shape[1]} x {img.shape[0]} pixels, above the limit of "
                             f"{limit / 1e6:,.0f} megapixels (ALLLIB_MAX_PIXELS raises the limit)")
    if img.dtype == np.uint16:
        img = np.round(img.astype(np.float32) / 257.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageReadError(f"{path}: unsupported pixel type {img.dtype}; expected 8- or 16-bit integers")
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ImageReadError(f"{path}: unsupported image layout {img.shape}")
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    # OpenCV decodes colour as BGR(A); drop alpha and reverse to RGB.
    return np.ascontiguousarray(img[:, :, 2::-1])


_MD5_MEMO: dict[tuple[str, int, int], str] = {}


def file_md5(path: str | os.PathLike) -> str:
    """md5 of a file's bytes, remembered per (path, size, modification time) in this process."""
    st = os.stat(path)
    memo = (str(path), st.st_size, st.st_mtime_ns)
    if memo not in _MD5_MEMO:
        _MD5_MEMO[memo] = hashlib.md5(read_regular(path)).hexdigest()
    return _MD5_MEMO[memo]


def image_files(folder: Path) -> list[Path]:
    """The image files directly inside ``folder`` (by suffix), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

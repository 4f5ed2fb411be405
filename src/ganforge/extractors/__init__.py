"""Feature extractors for the metrics (Inception-v3 for FID/KID/IS, small domain classifiers)."""

from . import audio, classifier, inception, vgg, video  # noqa: F401  (register "fsdd", "digits", "mnist", "cifar10", "inception", "vgg19", "moving-digits")
from .base import (
    EXTRACTORS,
    FeatureExtractor,
    Features,
    check_modality,
    check_weights,
    create,
    extract_features,
    input_modality,
    own_data_sets,
)
from .classifier import stacked_mnist_labels

__all__ = [
    "EXTRACTORS", "FeatureExtractor", "Features", "check_modality", "check_weights", "create", "extract_features",
    "input_modality", "own_data_sets",
    "stacked_mnist_labels",
]

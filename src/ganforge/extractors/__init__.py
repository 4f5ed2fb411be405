"""Feature extractors for the metrics (Inception-v3 for FID/KID/IS, small domain classifiers)."""

from . import classifier, inception, vgg  # noqa: F401  (register "digits", "mnist", "cifar10", "inception", "vgg19")
from .base import EXTRACTORS, FeatureExtractor, Features, check_weights, create, extract_features, own_data_sets
from .classifier import stacked_mnist_labels

__all__ = [
    "EXTRACTORS", "FeatureExtractor", "Features", "check_weights", "create", "extract_features", "own_data_sets",
    "stacked_mnist_labels",
]

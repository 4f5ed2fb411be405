"""Feature extractors for the metrics (Inception-v3 for FID/KID/IS, small domain classifiers)."""

from . import inception  # noqa: F401  (registers "inception")
from .base import EXTRACTORS, FeatureExtractor, Features, create, extract_features

__all__ = ["EXTRACTORS", "FeatureExtractor", "Features", "create", "extract_features"]

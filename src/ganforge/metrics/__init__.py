"""Evaluation metrics: pure functions of samples or features, computed in float64.

Each is checked in ``tests/test_metrics_math.py`` against its reference implementation
(pytorch-fid, torch-fidelity, the authors' ``prdc``) on the same features.
"""

from .accuracy import label_accuracy
from .fid import feature_statistics, fid_from_features, frechet_distance
from .inception_score import inception_score
from .kid import kernel_inception_distance
from .modes import class_mode_stats, mode_stats
from .prdc import density_coverage, prdc, precision_recall

__all__ = [
    "class_mode_stats",
    "density_coverage",
    "feature_statistics",
    "fid_from_features",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "label_accuracy",
    "mode_stats",
    "prdc",
    "precision_recall",
]

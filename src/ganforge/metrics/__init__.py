"""Evaluation metrics: pure functions of samples or features."""

from .modes import mode_stats

__all__ = ["mode_stats"]

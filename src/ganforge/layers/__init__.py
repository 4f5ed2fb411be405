"""Building blocks shared by model families."""

from .conditioning import LabelProjection, label_maps

__all__ = ["LabelProjection", "label_maps"]

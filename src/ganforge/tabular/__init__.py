"""Tables: column kinds and the mode-specific normalisation of CTGAN (issue 21, in progress)."""

from .transform import KINDS, TableTransformer, infer_kinds

__all__ = ["KINDS", "TableTransformer", "infer_kinds"]

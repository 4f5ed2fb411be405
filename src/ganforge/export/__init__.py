"""Export generators to ONNX or TorchScript, verified on export, and sample from the files.

Formats are registered in :data:`EXPORTERS` (``onnx``, ``torchscript``). An exported file
maps ``z [N, latent_dim]`` (``labels [N]`` int64 for conditional generators, ``psi []``
for StyleGAN) to samples ``[N, ...]`` (images in [-1, 1]) with a dynamic batch axis, and
carries its metadata (latent size, classes, output shape, generator id, run). See
``docs/export.md``.

Example::

    from ganforge import load
    from ganforge.export import export_generator, load_exported

    result = export_generator(load("runs/dcgan-digits"), "digits.onnx")
    images = load_exported("digits.onnx").sample(16, seed=0)   # = load(...).sample(16, seed=0)
"""

from __future__ import annotations

from . import onnx, torchscript  # noqa: F401  (register the formats)
from .files import (
    TOLERANCE,
    ExportedGenerator,
    export_generator,
    is_exported_path,
    load_exported,
    verify,
)
from .program import EXPORTERS, ExportError, ExportModule, ExportResult, frozen_copy, trace

__all__ = [
    "EXPORTERS",
    "TOLERANCE",
    "ExportError",
    "ExportModule",
    "ExportResult",
    "ExportedGenerator",
    "export_generator",
    "frozen_copy",
    "is_exported_path",
    "load_exported",
    "trace",
    "verify",
]

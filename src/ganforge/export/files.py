"""Export a generator (verified against PyTorch) and load an exported file as a generator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..core import atomic_write_bytes
from ..errors import UserError
from ..models.base import Generator
from .onnx import DEFAULT_OPSET, MIN_OPSET
from .program import (
    EXPORTERS,
    Exporter,
    ExportError,
    ExportResult,
    Runner,
    all_suffixes,
    build_metadata,
    exporter_for_path,
    rebuilt_copy,
    trace,
)

#: Largest accepted difference between the exported file and the PyTorch generator.
TOLERANCE = 1e-4
#: ``(n, seed, truncation)`` of the checks run on every export: a batch of 16 (not the
#: traced batch of 2) and a batch of 1 with truncation (psi for StyleGAN, clipping otherwise).
VERIFY_CASES: tuple[tuple[int, int, float | None], ...] = ((16, 0, None), (1, 1, 0.7))


class ExportedGenerator(Generator):
    """An exported file behind the :class:`Generator` interface (CPU, inference only).

    ``sample(n, seed, labels, truncation)`` draws the same latents as the PyTorch generator
    (``truncated_normal`` with the same seed), so both give the same samples up to float
    rounding. ``meta`` is the original generator's (``weights_id``, ``run``, ``class_names``,
    ...) plus ``export`` (format and path).
    """

    def __init__(self, path: Path, runner: Runner, metadata: dict[str, Any]) -> None:
        super().__init__()
        self.path = Path(path)
        self.metadata = metadata
        self._run = runner
        self.latent_dim = int(metadata["latent_dim"])
        self.num_classes = int(metadata["num_classes"])
        self.output_shape = tuple(int(s) for s in metadata["output_shape"])
        self.inputs = tuple(metadata["inputs"])
        self.meta = {
            **(metadata.get("meta") or {}),
            "weights_id": metadata.get("weights_id", ""),
            "run": metadata.get("run", ""),
            "class_names": metadata.get("class_names"),
            "export": {"format": metadata.get("format", ""), "path": str(self.path)},
        }
        #: StyleGAN files: the psi fed to the file by ``forward`` (None: the file truncates ``z`` instead).
        self.truncation_psi: float | None = 1.0 if "psi" in self.inputs else None

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        inputs = {"z": z.detach().float().cpu().contiguous()}
        if "labels" in self.inputs:
            labels = self.check_labels(labels, len(z))
            inputs["labels"] = labels.detach().long().cpu().contiguous()
        if "psi" in self.inputs:
            inputs["psi"] = torch.tensor(float(self.truncation_psi))
        return self._run(inputs)

    def sample(
        self,
        n: int,
        seed: int = 0,
        labels: torch.Tensor | list[int] | int | None = None,
        truncation: float | None = None,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """As :meth:`Generator.sample`; for StyleGAN files ``truncation`` is psi in ``w`` space."""
        if "psi" not in self.inputs:
            return super().sample(n, seed, labels, truncation, batch_size)
        if truncation is not None and truncation < 0:
            raise UserError(f"truncation psi must be >= 0 (1 = none), got {truncation}")
        previous = self.truncation_psi
        self.truncation_psi = 1.0 if truncation is None else float(truncation)
        try:
            return super().sample(n, seed, labels, None, batch_size)
        finally:
            self.truncation_psi = previous

    def extra_repr(self) -> str:
        return f"'{self.path}', format={self.metadata.get('format')}, inputs={list(self.inputs)}"


def is_exported_path(path: str | Path) -> bool:
    """Whether ``path`` names an exported file (by its suffix) rather than a run folder."""
    return exporter_for_path(path) is not None and not Path(path).is_dir()


def load_exported(path: str | Path) -> ExportedGenerator:
    """Open an exported file (``.onnx``, or ``.pt`` / ``.torchscript``) as a generator.

    TorchScript files run code when loaded: open only files you trust or produced yourself.
    """
    path = Path(path)
    exporter = exporter_for_path(path)
    if exporter is None:
        raise UserError(f"'{path.name}' is not an exported generator (expected a file ending in {', '.join(all_suffixes())})")
    if not path.is_file():
        raise UserError(f"exported generator '{path}' does not exist")
    runner, metadata = exporter.load(path)
    return ExportedGenerator(path, runner, metadata)


def resolve_format(format: str | None, out: Path) -> Exporter:
    """The exporter for ``format`` (or, if None, for ``out``'s suffix); the suffix must match it."""
    if format is None:
        exporter = exporter_for_path(out)
        if exporter is None:
            raise UserError(f"cannot tell the export format from '{out.name}': give --format "
                            f"({', '.join(EXPORTERS.names())}) or an --out ending in {', '.join(all_suffixes())}")
        return exporter
    exporter = EXPORTERS.get(format)
    if out.suffix.lower() not in exporter.suffixes:
        raise UserError(f"--out for {exporter.name} must end in {' or '.join(exporter.suffixes)}, got '{out.name}'")
    return exporter


def verify(generator: Generator, exported: Generator) -> float:
    """Largest absolute difference between the two generators' samples over :data:`VERIFY_CASES`."""
    worst = 0.0
    for n, seed, truncation in VERIFY_CASES:
        expected = generator.sample(n, seed=seed, truncation=truncation)
        actual = exported.sample(n, seed=seed, truncation=truncation)
        if actual.shape != expected.shape:
            raise ExportError(f"the exported file returns shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
        worst = max(worst, (actual.float() - expected).abs().max().item())
        if worst != worst:  # NaN
            return worst
    return worst


def export_generator(
    generator: Generator,
    out: str | Path,
    format: str | None = None,
    *,
    opset: int = DEFAULT_OPSET,
    tolerance: float = TOLERANCE,
) -> ExportResult:
    """Write ``generator`` to ``out`` as ONNX or TorchScript, verified, atomically.

    The file is written to a temporary name, loaded back (onnxruntime / ``torch.jit.load``)
    and sampled for fixed seeds; only if it matches ``generator.sample`` within
    ``tolerance`` is it renamed to ``out``. Otherwise nothing is left behind and
    :class:`ExportError` says by how much it differed.

    Args:
        format: ``onnx`` or ``torchscript``; None: from ``out``'s suffix.
        opset: ONNX opset (>= 17).
    """
    if not isinstance(generator, Generator) or isinstance(generator, ExportedGenerator):
        raise UserError(f"export takes a latent generator (z -> samples) from a run, not a {type(generator).__name__}")
    if opset < MIN_OPSET:
        raise UserError(f"--opset must be >= {MIN_OPSET}, got {opset}")
    out = Path(out)
    exporter = resolve_format(format, out)
    exporter.check_dependencies()
    metadata = build_metadata(generator, exporter.name)
    data = exporter.serialize(trace(generator), metadata, opset)
    # compare on the CPU (a GPU's TF32 convolutions alone can differ by more than the tolerance)
    reference = generator if generator.device.type == "cpu" else rebuilt_copy(generator)
    measured: list[float] = []

    def check(written: Path) -> None:  # the file is verified before it takes the name ``out``
        measured.append(verify(reference, load_exported(written)))
        if not measured[0] <= tolerance:  # NaN fails too
            raise ExportError(
                f"the {exporter.name} export differs from the PyTorch generator by {measured[0]:.3g} (tolerance "
                f"{tolerance:g}); '{out}' was not written"
            )

    atomic_write_bytes(out, data, check)
    return ExportResult(out, exporter.name, measured[0], metadata)

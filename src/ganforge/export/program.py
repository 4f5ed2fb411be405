"""What every export format shares: the exported function, its metadata, the format registry.

The exported function is :class:`ExportModule`: ``(z [N, latent_dim], labels [N] int64,
psi []) -> samples [N, ...]`` with a dynamic batch axis, where ``labels`` exists only for
conditional generators and ``psi`` (the truncation psi in ``w`` space) only for StyleGAN
generators. It is captured once with :func:`torch.export.export` (strict mode, which
traces ``len(z)`` symbolically), and each format serializes that program.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import torch
from torch import nn

from ..errors import GanforgeError, UserError
from ..layers.style import ModulatedConv2d
from ..models.base import Generator, weights_hash
from ..models.progan import Growing
from ..models.stylegan import StyleGANGenerator
from ..registry import Registry
from ..version import __version__

#: Key of the JSON metadata (ONNX ``metadata_props`` key, TorchScript extra file name stem).
METADATA_KEY = "ganforge"
#: Version of the metadata layout; readers refuse newer ones.
METADATA_VERSION = 1
#: Input names, in the order both formats take them.
INPUT_ORDER = ("z", "labels", "psi")


class ExportError(GanforgeError):
    """An export could not be produced, or did not reproduce the PyTorch generator (exit 1)."""

    exit_code = 1


#: A loaded exported file: tensor inputs by name -> samples ``[N, ...]`` (float32, CPU).
Runner = Callable[[Mapping[str, torch.Tensor]], torch.Tensor]


class Exporter(Protocol):
    """One export format (registered in :data:`EXPORTERS`)."""

    name: str
    #: File name endings of this format; the first is the default.
    suffixes: tuple[str, ...]

    def check_dependencies(self, *, loading: bool = False) -> None:
        """Raise a one-line :class:`UserError` if an optional package is missing."""

    def serialize(self, program: torch.export.ExportedProgram, metadata: dict[str, Any], opset: int) -> bytes:
        """The file's bytes for ``program`` with ``metadata`` embedded."""

    def load(self, path: Path) -> tuple[Runner, dict[str, Any]]:
        """A runner for the file at ``path`` and its ganforge metadata (one-line errors)."""


#: Export formats by name (``ganforge export --format NAME``).
EXPORTERS: Registry = Registry("export format")


def exporter_for_path(path: str | Path) -> Exporter | None:
    """The exporter whose suffix ``path`` ends with, or None."""
    suffix = Path(path).suffix.lower()
    for name in EXPORTERS.names():
        exporter = EXPORTERS.get(name)
        if suffix in exporter.suffixes:
            return exporter
    return None


def all_suffixes() -> list[str]:
    return [s for name in EXPORTERS.names() for s in EXPORTERS.get(name).suffixes]


def missing_package(packages: str, purpose: str) -> UserError:
    """The one-line error for an absent optional dependency."""
    return UserError(f"{purpose} needs {packages}: pip install 'ganforge[export]'")


# --------------------------------------------------------------------------- the exported function


def uses_w_truncation(generator: nn.Module) -> bool:
    """True for StyleGAN generators: truncation is psi in ``w`` space, not clipping of ``z``."""
    return isinstance(generator, StyleGANGenerator)


class ExportModule(nn.Module):
    """The fixed signature that is exported: ``(z, labels?, psi?) -> samples``.

    StyleGAN generators take ``psi`` and render ``w_avg + psi (w - w_avg)`` (``psi = 1``:
    no truncation), the same as ``StyleGANGenerator.sample(truncation=psi)``.
    """

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator
        self.w_truncation = uses_w_truncation(generator)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, psi: torch.Tensor | None = None) -> torch.Tensor:
        if not self.w_truncation:
            return self.generator(z, labels)
        ws = self.generator.styles(z, labels)  # [N, num_ws, w_dim], untruncated
        if psi is not None:
            w_avg = self.generator.mapping.w_avg
            ws = w_avg + psi * (ws - w_avg)
        return self.generator.synthesize(ws)


def input_names(generator: Generator) -> list[str]:
    """The exported inputs of ``generator``, in :data:`INPUT_ORDER`."""
    names = ["z"]
    if generator.num_classes:
        names.append("labels")
    if uses_w_truncation(generator):
        names.append("psi")
    return names


def rebuilt_copy(generator: Generator) -> Generator:
    """An eval-mode CPU copy of ``generator``, rebuilt from its constructor arguments and weights."""
    kwargs = getattr(generator, "init_kwargs", None)
    if kwargs is None:
        raise ExportError(f"{type(generator).__name__} records no constructor arguments (use @configurable)")
    with torch.random.fork_rng(devices=[]):  # the constructor's random init must not move the global RNG
        copy = type(generator)(**kwargs)
    copy.load_state_dict(generator.state_dict())
    copy.meta = dict(getattr(generator, "meta", {}) or {})
    return copy.eval()


def frozen_copy(generator: Generator) -> Generator:
    """An eval-mode CPU copy of ``generator`` in a form every exporter can trace.

    * spectral norm (a parametrization) is replaced by the normalized weight ``W / sigma``
      it computes in eval mode (no power iteration);
    * StyleGAN's modulated convs use their unfused form (the same function): the fused
      one is a grouped convolution with as many groups as samples, which cannot have a
      dynamic batch;
    * ProGAN's growth ``stage`` becomes a Python constant: the file renders the stage the
      generator is at (the final resolution after training);
    * BatchNorm uses its running statistics, and StyleGAN's noise its fixed eval-mode maps.
    """
    from torch.nn.utils import parametrize


    copy = rebuilt_copy(generator)
    for module in copy.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
        if isinstance(module, ModulatedConv2d):
            module.fused = False
        if isinstance(module, Growing):
            stage = int(module.stage)
            del module.stage  # the buffer ...
            module.stage = stage  # ... becomes a constant of the traced program
    for parameter in copy.parameters():
        parameter.requires_grad_(False)
    return copy


def example_inputs(generator: Generator, n: int = 2) -> dict[str, torch.Tensor]:
    """Inputs for tracing (``n >= 2``: sizes 0 and 1 would be specialized)."""
    inputs = {"z": torch.zeros(n, generator.latent_dim)}
    if generator.num_classes:
        inputs["labels"] = torch.arange(n) % generator.num_classes
    if uses_w_truncation(generator):
        inputs["psi"] = torch.tensor(1.0)
    return inputs


def trace(generator: Generator) -> torch.export.ExportedProgram:
    """The :class:`ExportModule` of a frozen copy of ``generator``, captured by ``torch.export``."""
    module = ExportModule(frozen_copy(generator)).eval()
    inputs = example_inputs(module.generator)
    batch = torch.export.Dim("batch", min=1)
    dynamic = {name: ({0: batch} if name != "psi" else None) for name in inputs}
    try:
        return torch.export.export(module, (), kwargs=inputs, dynamic_shapes=dynamic, strict=True)
    except Exception as err:  # torch.export raises many error types; report the first line
        raise ExportError(f"cannot trace {type(generator).__name__} for export: {first_line(err)}") from err


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# --------------------------------------------------------------------------- metadata


def build_metadata(generator: Generator, format_name: str) -> dict[str, Any]:
    """What an exported file says about itself (JSON-able)."""
    meta = dict(getattr(generator, "meta", {}) or {})
    meta.setdefault("weights_id", weights_hash(generator))
    return {
        "ganforge_export": METADATA_VERSION,
        "ganforge_version": __version__,
        "format": format_name,
        "family": type(generator).__name__,
        "latent_dim": int(generator.latent_dim),
        "num_classes": int(generator.num_classes),
        "class_names": meta.get("class_names"),
        "output_shape": list(generator.output_shape),
        "weights_id": meta["weights_id"],
        "run": meta.get("run", ""),
        "inputs": input_names(generator),
        "truncation": "w" if uses_w_truncation(generator) else "z",
        "meta": json.loads(json.dumps(meta, default=str)),
    }


def parse_metadata(text: str | bytes | None, path: Path) -> dict[str, Any]:
    """Validate the ganforge metadata of an exported file; one-line errors otherwise."""
    if not text:
        raise UserError(f"'{path}' has no ganforge metadata: it was not written by 'ganforge export'")
    try:
        metadata = json.loads(text)
        version = int(metadata["ganforge_export"])
        for key in ("latent_dim", "num_classes", "output_shape", "inputs"):
            metadata[key]  # noqa: B018 - presence check
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"'{path}' has unreadable ganforge metadata ({err})") from None
    if version > METADATA_VERSION:
        raise UserError(f"'{path}' was written by a newer ganforge (export format {version}); upgrade ganforge")
    return metadata


@dataclass(frozen=True)
class ExportResult:
    """What :func:`~ganforge.export.export_generator` wrote."""

    path: Path
    format: str
    max_abs_diff: float
    metadata: dict[str, Any]

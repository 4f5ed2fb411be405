"""ONNX export (``torch.onnx.export`` of the ``torch.export`` program) and loading with onnxruntime.

The file is self-contained (weights inside, no external data: generators up to 2 GB),
opset 18 by default, with a dynamic ``batch`` axis on every input and on the output
``samples``. The ganforge metadata is a JSON string under the ``metadata_props`` key
``ganforge``; the main fields are repeated as their own keys for viewers such as Netron.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from ..errors import UserError
from .program import EXPORTERS, METADATA_KEY, ExportError, Runner, first_line, missing_package, parse_metadata

#: Lowest opset accepted (the torch.export-based exporter targets 18 natively).
MIN_OPSET = 17
DEFAULT_OPSET = 18
#: Metadata fields repeated as plain ``metadata_props`` entries.
FLAT_KEYS = ("latent_dim", "num_classes", "class_names", "output_shape", "weights_id", "run", "inputs")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's progress prints and warnings (the CLI prints its own summary)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


class OnnxExporter:
    """ONNX (opset >= 17), checked and run with onnxruntime."""

    name = "onnx"
    suffixes = (".onnx",)

    def check_dependencies(self, *, loading: bool = False) -> None:
        needed = ["onnxruntime"] if loading else ["onnx", "onnxscript", "onnxruntime"]
        for package in needed:
            try:
                __import__(package)
            except ImportError:
                purpose = "running an ONNX file" if loading else "ONNX export"
                raise missing_package(", ".join(needed), purpose) from None

    def serialize(self, program: torch.export.ExportedProgram, metadata: dict[str, Any], opset: int) -> bytes:
        try:
            with _quiet():
                onnx_program = torch.onnx.export(
                    program, (), dynamo=True, opset_version=opset, output_names=["samples"], external_data=False,
                    verbose=False,
                )
        except Exception as err:
            raise ExportError(f"ONNX conversion failed: {first_line(err)}") from err
        model = onnx_program.model_proto
        _name_batch_axis(model)
        for key, value in [(METADATA_KEY, metadata), *((k, metadata[k]) for k in FLAT_KEYS)]:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
        model.producer_name = "ganforge"
        return model.SerializeToString()

    def load(self, path: Path) -> tuple[Runner, dict[str, Any]]:
        self.check_dependencies(loading=True)
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own error types (InvalidProtobuf, Fail, ...)
            raise UserError(f"cannot read ONNX file '{path}': {first_line(err)}") from None
        metadata = parse_metadata(session.get_modelmeta().custom_metadata_map.get(METADATA_KEY), path)

        def run(inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
            feeds = {name: np.ascontiguousarray(value.cpu().numpy()) for name, value in inputs.items()}
            return torch.from_numpy(session.run(["samples"], feeds)[0])

        return run, metadata


def _name_batch_axis(model: Any) -> None:
    """Rename the exporter's symbol for the batch size (``s0``, ...) to ``batch`` throughout."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    symbol = dims[0].dim_param if len(dims) else ""
    if not symbol:
        return
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param == symbol:
                dim.dim_param = "batch"


EXPORTERS.add("onnx", OnnxExporter(), help="ONNX (opset >= 17), verified with onnxruntime")

"""TorchScript export: the ``torch.export`` graph, scripted, with ``ganforge.json`` as an extra file.

``torch.jit.trace`` cannot be used: the generators compute ``len(z)``, which a trace
freezes to the example batch size. ``torch.export`` keeps that size symbolic, and its
graph (ATen operators only) is turned back into TorchScript by :func:`script_program`.
The result loads with ``torch.jit.load`` in any PyTorch >= 2.1, no ganforge needed.

``torch.jit.load`` runs TorchScript code, not pickles, but a TorchScript file is still a
program: load only files you produced yourself or trust.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
import torch.fx

from ..errors import UserError
from .program import EXPORTERS, METADATA_KEY, ExportError, Runner, first_line, parse_metadata

EXTRA_FILE = f"{METADATA_KEY}.json"


@contextlib.contextmanager
def _no_deprecation_warnings() -> Iterator[None]:
    """TorchScript is deprecated in favour of torch.export; the files still load everywhere."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*TorchScript.*")
        yield


def _is_check(target: Any) -> bool:
    """Runtime assertions of torch.export graphs (shape guards), which TorchScript need not run."""
    name = getattr(target, "__name__", str(target))
    return name.startswith(("_assert", "sym_constrain_range")) or target is torch._assert


def script_program(program: torch.export.ExportedProgram) -> torch.jit.ScriptModule:
    """A TorchScript module computing the same function as ``program`` (tensor inputs, one output)."""
    module = program.module()
    graph = module.graph
    for node in list(graph.nodes):
        if node.op == "call_module" and not node.users:  # torch.export's input guards
            graph.erase_node(node)
        elif node.op == "call_function" and _is_check(node.target) and not node.users:
            graph.erase_node(node)
        elif node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload):
            # TorchScript resolves overloads itself; it knows ``aten::size``, not ``aten::sym_size``.
            sym_size = node.target is torch.ops.aten.sym_size.int
            node.target = torch.ops.aten.size if sym_size else node.target.overloadpacket
        elif node.op == "output" and isinstance(node.args[0], (tuple, list)) and len(node.args[0]) == 1:
            node.args = (node.args[0][0],)  # one tensor, not a 1-tuple
    graph._codegen = torch.fx.graph.CodeGen()  # plain arguments instead of pytree (un)flattening
    graph.eliminate_dead_code()
    graph.lint()
    plain = torch.fx.GraphModule(module, graph)  # copies only the weights the graph uses; no hooks
    return torch.jit.script(plain)


def _load_failure(err: BaseException) -> str:
    """A short reason for a failed ``torch.jit.load`` (its zip-reader messages run to several sentences)."""
    text = first_line(err).split(". This is an internal miniz error")[0]
    if "constants.pkl" in text:  # a zip archive from torch.save
        return "not TorchScript but a torch.save file (a training checkpoint? sample from its run directory instead)"
    return text


class TorchScriptExporter:
    """TorchScript (``torch.jit.load``), scripted from the torch.export graph."""

    name = "torchscript"
    suffixes = (".pt", ".torchscript")

    def check_dependencies(self, *, loading: bool = False) -> None:
        """Nothing beyond PyTorch."""

    def serialize(self, program: torch.export.ExportedProgram, metadata: dict[str, Any], opset: int) -> bytes:
        try:
            with _no_deprecation_warnings():
                scripted = script_program(program)
                buffer = io.BytesIO()
                torch.jit.save(scripted, buffer, _extra_files={EXTRA_FILE: json.dumps(metadata)})
        except Exception as err:
            raise ExportError(f"TorchScript conversion failed: {first_line(err)}") from err
        return buffer.getvalue()

    def load(self, path: Path) -> tuple[Runner, dict[str, Any]]:
        extra = {EXTRA_FILE: ""}
        try:
            with _no_deprecation_warnings():
                module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except Exception as err:  # RuntimeError for anything that is not a TorchScript archive
            raise UserError(f"cannot read TorchScript file '{path}': {_load_failure(err)}") from None
        metadata = parse_metadata(extra[EXTRA_FILE], path)
        names = list(metadata["inputs"])

        @torch.no_grad()
        def run(inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
            return module(*(inputs[name] for name in names))

        return run, metadata


EXPORTERS.add("torchscript", TorchScriptExporter(), aliases=("jit",), help="TorchScript, loads with torch.jit.load")

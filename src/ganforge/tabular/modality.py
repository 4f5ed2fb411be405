"""The ``table`` modality: rows as the vectors of :class:`~ganforge.tabular.TableTransformer`, read as CSV.

A row vector only means a row together with its transformer (the modes of every numeric column,
the categories of the others): data sets keep its state in ``info["table"]``, the trainer stamps
it into the generator's metadata (:meth:`TableModality.generator_meta`), and
:meth:`TableModality.bind` gives every command a modality that decodes with it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..errors import UserError
from ..modality import Media, Modality, register, write_npy, write_png, write_with_provenance
from .transform import TableTransformer

if TYPE_CHECKING:
    import pandas as pd

#: One row as a file: a CSV line with its header (the serve API's samples, ``synthesize``'s folders).
CSV = Media("text/csv", ".csv")

#: Rows and columns a preview shows, and its size.
PREVIEW_ROWS, PREVIEW_COLUMNS = 12, 8
CELL_WIDTH, LINE_HEIGHT = 96, 16


def write_csv(modality: TableModality, samples: torch.Tensor, path: Path, *, metadata: dict[str, Any] | None = None,
              **_: Any) -> Path:
    """The rows as CSV (a header, then one row a line); the provenance beside it in ``FILE.csv.provenance.json``."""
    table = modality.rows(samples)
    return write_with_provenance(path, table.to_csv(index=False).encode("utf-8"), metadata, rows=len(table))


def write_parquet(modality: TableModality, samples: torch.Tensor, path: Path, *,
                  metadata: dict[str, Any] | None = None, **_: Any) -> Path:
    """The rows as Parquet (needs pyarrow), the provenance beside it in ``FILE.parquet.provenance.json``."""
    table = modality.rows(samples)
    buffer = io.BytesIO()
    try:
        table.to_parquet(buffer, index=False)
    except ImportError:
        raise UserError("writing Parquet needs pyarrow: pip install pyarrow (or write FILE.csv)") from None
    return write_with_provenance(path, buffer.getvalue(), metadata, rows=len(table))


class TableModality(Modality):
    """Table rows as float vectors ``[D]`` (mode-specific normalisation and one-hots); CSV or Parquet out."""

    name = "table"
    plural = "rows"
    description = "table rows as CTGAN vectors [D] (float32; .csv / .parquet rows, scored by TSTR and column shapes)"
    default_metrics = ("column-shapes", "tstr")
    extractor = None
    writers = {".csv": write_csv, ".parquet": write_parquet, ".png": write_png, ".npy": write_npy}
    preview_caption = "rows"
    media = CSV
    data_suffixes = (".csv", ".parquet")

    def __init__(self, transformer: TableTransformer | None = None) -> None:
        self.transformer = transformer

    def bind(self, context: dict[str, Any]) -> TableModality:
        state = (context or {}).get("table")
        return TableModality(TableTransformer.from_dict(state)) if state else self

    def generator_meta(self, dataset: Any) -> dict[str, Any]:
        return {key: dataset.info[key] for key in ("table", "target") if key in dataset.info}

    def source_info(self, meta: dict[str, Any]) -> dict[str, Any]:
        return {key: meta.get(key) for key in ("table", "target")}

    def check(self, data: torch.Tensor, what: str) -> None:
        if data.dim() != 2 or not data.is_floating_point():
            raise UserError(f"{what}: table rows must be float vectors [N, D], got {data.dtype} {tuple(data.shape)}")

    def to_model(self, stored: torch.Tensor) -> torch.Tensor:
        return stored.float()

    def to_stored(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.detach().float()

    def features(self, stored: torch.Tensor) -> torch.Tensor:
        return stored.float()

    def rows(self, samples: torch.Tensor) -> pd.DataFrame:
        """Vectors (stored or generator outputs) -> a table."""
        if self.transformer is None:
            raise UserError("these rows come without their table encoding (metadata 'table'): retrain the generator")
        return self.transformer.inverse(self.to_stored(samples).cpu().numpy())

    def preview(self, samples: torch.Tensor, *, nrow: int | None = None, reference: torch.Tensor | None = None) -> Image.Image:
        """The first rows and columns as a picture of a table."""
        table = self.rows(samples[:PREVIEW_ROWS])
        columns = list(table.columns[:PREVIEW_COLUMNS])
        lines = [[str(c)[:14] for c in columns]] + [[_cell(v) for v in table[columns].iloc[i]] for i in range(len(table))]
        image = Image.new("RGB", (CELL_WIDTH * len(columns) + 8, LINE_HEIGHT * len(lines) + 8), "white")
        draw, font = ImageDraw.Draw(image), ImageFont.load_default()
        for i, cells in enumerate(lines):
            for j, cell in enumerate(cells):
                draw.text((4 + CELL_WIDTH * j, 4 + LINE_HEIGHT * i), cell, fill=(0, 0, 120) if i == 0 else (20, 20, 20), font=font)
        return image

    def encode(self, stored: torch.Tensor, metadata: dict[str, Any], *, scale: int = 1) -> bytes:
        """One row as CSV with its header (CSV has nowhere to keep ``metadata``: the API returns it beside)."""
        return self.rows(stored[None]).to_csv(index=False).encode("utf-8")

    def size(self, shape: tuple[int, ...], count: int, scale: int = 1) -> tuple[int, str]:
        return count * int(np.prod(shape)), f"{count} rows of {int(np.prod(shape))} encoded values"


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)[:14]


register(TableModality())

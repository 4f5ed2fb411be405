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
from ..metrics.tabular import CATEGORY, NUMERIC, category_values, numeric_values
from ..modality import Media, Modality, ReportSection, register, write_npy, write_png, write_with_provenance
from ..viz import svg_bars
from .transform import TableTransformer, from_numeric

if TYPE_CHECKING:
    import pandas as pd

#: One row as a file: a CSV line with its header (the serve API's samples, ``synthesize``'s folders).
CSV = Media("text/csv", ".csv")

#: Rows and columns a preview shows, and its size.
PREVIEW_ROWS, PREVIEW_COLUMNS = 12, 8
CELL_WIDTH, LINE_HEIGHT = 96, 16
#: Columns ``report.html`` draws (the first ones; it names those it leaves out), bins of a numeric
#: column's histogram, and bars of a category column's (the rarer categories share one, "other").
REPORT_COLUMNS, REPORT_BINS, REPORT_CATEGORIES = 30, 20, 12
#: The series of the report's charts: the training rows, then the generated ones.
REAL, FAKE = "real", "generated"


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
    default_metrics = ("tstr", "column-shapes", "correlation", "detection", "dcr")
    extractor = None
    writers = {".csv": write_csv, ".parquet": write_parquet, ".png": write_png, ".npy": write_npy}
    preview_caption = "rows"
    media = CSV
    data_suffixes = (".csv", ".parquet")
    report_samples = 1000

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

    def condition(self, generator: Any, spec: str) -> dict[str, Any]:
        """``column=value``: every row holds that category (CTGAN's conditional vector, the column set to it)."""
        if self.transformer is None:
            raise UserError("this generator's rows come without their table encoding (metadata 'table'): retrain it")
        column, sep, value = spec.partition("=")
        codes = {c.name: c for c in self.transformer.columns}
        if not sep or column not in codes:
            names = ", ".join(c for c, code in codes.items() if code.kind in CATEGORY)
            raise UserError(f"--condition takes COLUMN=VALUE with a category column ({names}), got '{spec}'")
        code = codes[column]
        if code.kind not in CATEGORY:
            raise UserError(f"--condition needs a category column; '{column}' is {code.kind}")
        if value not in code.categories:
            raise UserError(f"column '{column}' has no value '{value}' (values: {', '.join(code.categories)})")
        start = next(s[0] for s in self.transformer.spans if s[3] == column)
        if not hasattr(generator, "set_condition"):
            raise UserError("this generator cannot be conditioned on a column (a ctgan run can)")
        generator.set_condition(start, code.categories.index(value))
        return {"condition": f"{column}={value}"}

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

    def report_sections(self, real: torch.Tensor, fake: torch.Tensor) -> list[ReportSection]:
        """A histogram per column (the first :data:`REPORT_COLUMNS`): the training rows against the generated ones."""
        real_rows, fake_rows = self.rows(real), self.rows(fake)
        kinds = {code.name: code.kind for code in self.transformer.columns} if self.transformer else {}
        columns = [str(c) for c in real_rows.columns]
        shown, left_out = columns[:REPORT_COLUMNS], columns[REPORT_COLUMNS:]
        text = (f"Each column of {len(real_rows)} training rows ({REAL}) and {len(fake_rows)} generated rows ({FAKE}), "
                "as shares of the rows: numeric columns as histograms on shared bins, the others as bars per category.")
        if left_out:
            text += f" The first {len(shown)} of {len(columns)} columns are drawn; left out: {', '.join(left_out)}."
        figures = tuple(column_chart(name, kinds.get(name, "categorical"), real_rows[name], fake_rows[name]) for name in shown)
        return [ReportSection("Columns: training rows against generated rows", text, figures)]

    def encode(self, stored: torch.Tensor, metadata: dict[str, Any], *, scale: int = 1) -> bytes:
        """One row as CSV with its header (CSV has nowhere to keep ``metadata``: the API returns it beside)."""
        return self.rows(stored[None]).to_csv(index=False).encode("utf-8")

    @property
    def batch_media(self) -> Media:
        return CSV

    def encode_batch(self, samples: torch.Tensor, metadata: dict[str, Any], *, nrow: int | None = None,
                     scale: int = 1) -> bytes:
        """All rows as one CSV (the serve API's ``format=grid``, its "download all"); the API returns ``metadata`` beside."""
        return self.rows(samples).to_csv(index=False).encode("utf-8")

    def size(self, shape: tuple[int, ...], count: int, scale: int = 1) -> tuple[int, str]:
        return count * int(np.prod(shape)), f"{count} rows of {int(np.prod(shape))} encoded values"


def column_chart(name: str, kind: str, real: pd.Series, fake: pd.Series) -> str:
    """An SVG chart of one column, real against generated: overlaid histograms on shared bins (numeric kinds,
    missing values left out and their share named), else side-by-side shares of the categories."""
    if kind in NUMERIC:
        values = {REAL: numeric_values(real, kind), FAKE: numeric_values(fake, kind)}
        present = {label: v[~np.isnan(v)] for label, v in values.items()}
        edges = np.histogram_bin_edges(np.concatenate(list(present.values())), REPORT_BINS)
        shares = {_with_missing(label, values[label]): np.histogram(v, edges)[0] / max(len(v), 1) for label, v in present.items()}
        ticks = [_cell(v) for v in from_numeric(edges, kind)]
        bins = [f"{ticks[i]} to {ticks[i + 1]}" for i in range(REPORT_BINS)]
        return svg_bars(name, bins, shares, overlay=True, ends=(ticks[0], ticks[-1]))
    values = {REAL: category_values(real), FAKE: category_values(fake)}
    categories, counts = np.unique(np.concatenate(list(values.values())), return_counts=True)
    ranked = [str(c) for c in categories[np.argsort(-counts, kind="stable")]]
    shown = ranked if len(ranked) <= REPORT_CATEGORIES else ranked[:REPORT_CATEGORIES - 1]
    other = ["other"] if len(shown) < len(ranked) else []
    shares = {label: [float(np.mean(v == c)) for c in shown] + [float(np.mean(~np.isin(v, shown))) for _ in other]
              for label, v in values.items()}
    return svg_bars(name, shown + other, shares)


def _with_missing(label: str, values: np.ndarray) -> str:
    """A series' name, with the share of its rows that miss the value when any do."""
    missing = float(np.isnan(values).mean()) if len(values) else 0.0
    return f"{label} ({missing:.0%} missing)" if missing else label


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if hasattr(value, "strftime") and value == value:  # a date (NaT is not itself): its time only when it has one
        return value.strftime("%Y-%m-%d %H:%M" if (value.hour, value.minute) != (0, 0) else "%Y-%m-%d")
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)[:14]


register(TableModality())

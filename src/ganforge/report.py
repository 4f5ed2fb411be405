"""``report.html``: a run's curves, sample grids over time and config in one self-contained page.

The page has no external references (charts are inline SVG, images and sounds are data URLs),
so it can be mailed, archived or opened offline. Where the run's modality has a playable form
(audio), each preview picture has a player of the same samples (``samples/step-N.wav``); where it
compares its training data with generated samples (:meth:`~ganforge.modality.Modality.report_sections`:
tables' histograms per column), its sections follow the previews. The trainer rewrites it whenever it
saves a sample grid; ``ganforge report RUN_DIR`` rebuilds it by hand.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import torch

from . import data as datasets
from . import modality as modalities
from .config import DataConfig
from .core import atomic_write_text
from .errors import UserError
from .rundir import REPORT as REPORT_FILE
from .rundir import RunDir
from .viz import CHART_COLOURS

REPORT = REPORT_FILE
#: Sample grids embedded at most (evenly spaced over the run, always the first and the last).
MAX_GRIDS = 12
#: Logged keys that are bookkeeping, not curves.
_NOT_CURVES = {"step", "kimg"}
#: Curves drawn together on one chart (when present); every other key gets its own chart.
_GROUPS = {
    "losses": ("d_loss", "g_loss"),
    "discriminator outputs": ("d_real", "d_fake"),
}
#: The seed of the generated samples that the modality's sections compare with the training data.
REPORT_SEED = 0
#: The training samples last read for those sections, by data config (the trainer rewrites the report at
#: every sample step, and a table's data set takes seconds to build).
_TRAINING: dict[str, torch.Tensor] = {}


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (a torn last line from a crash is skipped)."""
    return RunDir(run_dir).metrics()


def series(records: Sequence[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """``(step, value)`` points of one logged key, finite values only."""
    points = []
    for r in records:
        value = r.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and "step" in r:
            points.append((float(r["step"]), float(value)))
    return points


def _tick(value: float) -> str:
    return f"{value:.4g}"


def svg_chart(title: str, curves: dict[str, list[tuple[float, float]]], width: int = 460, height: int = 220) -> str:
    """An inline SVG line chart of ``curves`` (name -> points) sharing the axes."""
    points = [p for pts in curves.values() for p in pts]
    left, right, top, bottom = 58, 12, 26, 30
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - abs(y0) * 0.1 - 1e-3, y1 + abs(y1) * 0.1 + 1e-3

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * (height - top - bottom)

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="16" class="title">{html.escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" class="frame"/>',
        f'<text x="{left - 4}" y="{top + 4}" class="ylab">{_tick(y1)}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" class="ylab">{_tick(y0)}</text>',
        f'<text x="{left}" y="{height - 10}" class="xlab">step {_tick(x0)}</text>',
        f'<text x="{width - right}" y="{height - 10}" class="xlab end">{_tick(x1)}</text>',
    ]
    for i, (name, pts) in enumerate(curves.items()):
        colour = CHART_COLOURS[i % len(CHART_COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        if len(pts) == 1:
            x, y = pts[0]
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
        else:
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        parts.append(
            f'<text x="{width - right - 4}" y="{top + 14 + 14 * i}" class="legend" fill="{colour}">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def charts(records: Sequence[dict[str, Any]]) -> list[str]:
    """Evaluation metrics first, then the grouped curves, then every other logged number."""
    keys = list(dict.fromkeys(k for r in records for k in r if k not in _NOT_CURVES))
    out = []
    for key in [k for k in keys if k.startswith("eval/")]:
        if pts := series(records, key):
            out.append(svg_chart(key, {key: pts}))
    grouped = set()
    for title, members in _GROUPS.items():
        curves = {k: pts for k in members if (pts := series(records, k))}
        grouped.update(members)
        if curves:
            out.append(svg_chart(title, curves))
    for key in keys:
        if key not in grouped and not key.startswith("eval/") and (pts := series(records, key)):
            out.append(svg_chart(key, {key: pts}))
    return out


def pick_grids(paths: Sequence[Path], limit: int = MAX_GRIDS) -> list[Path]:
    """At most ``limit`` paths, evenly spaced, always keeping the first and the last."""
    if len(paths) <= limit:
        return list(paths)
    return [paths[round(i * (len(paths) - 1) / (limit - 1))] for i in range(limit)]


def _data_url(path: Path, media: modalities.Media = modalities.PNG) -> str:
    return f"data:{media.type};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figure(grid: Path, playable: modalities.Media | None) -> str:
    """One preview picture, with a player of the same samples beside it where the run has a playable file."""
    name = html.escape(grid.stem)
    player = ""
    if playable is not None and (file := grid.with_suffix(playable.suffix)).is_file():
        tag = playable.element
        if tag == "img":  # an animated picture (video clips as a GIF) plays by itself
            player = f'<img src="{_data_url(file, playable)}" alt="{name} (playing)" title="{name}" data-step="{name}">'
        else:
            player = (f'<{tag} controls preload="metadata" src="{_data_url(file, playable)}" '
                      f'title="{name}" data-step="{name}"></{tag}>')
    return f'<figure><img src="{_data_url(grid)}" alt="{name}">{player}<figcaption>{name}</figcaption></figure>'


def training_samples(cfg: DataConfig, n: int) -> torch.Tensor:
    """The first ``n`` stored samples of the data set ``cfg`` describes (the last set read is kept)."""
    key = json.dumps([asdict(cfg), n], sort_keys=True, default=str)
    if key not in _TRAINING:
        _TRAINING.clear()
        _TRAINING[key] = datasets.create(cfg).data[:n].clone()
    return _TRAINING[key]


def modality_sections(run: RunDir, kind: modalities.Modality | None, training: torch.Tensor | None = None) -> str:
    """The modality's own sections (:meth:`~ganforge.modality.Modality.report_sections`): the run's training
    data (``training``: its stored samples, else read from the run's data config) against samples of its
    saved generator (seed :data:`REPORT_SEED`); a note where they cannot be drawn."""
    if kind is None or not kind.report_samples:
        return ""
    if not run.generator_meta():
        return f"<p>Comparisons of the training data with generated {html.escape(kind.plural)} follow once the run saves its generator.</p>"
    try:
        generator = run.load_generator()
        bound = modalities.of(generator)  # with the generator's context (a table's encoding)
        real = training_samples(run.config.data, kind.report_samples) if training is None else training[:kind.report_samples]
        sections = bound.report_sections(real, bound.to_stored(generator.sample(len(real), seed=REPORT_SEED)))
    except UserError as err:
        return f"<p>No comparison of the training data with generated {html.escape(kind.plural)}: {html.escape(str(err))}</p>"
    made = f" Generated {kind.plural}: seed {REPORT_SEED}, the generator saved at step {generator.meta.get('step', '?')}."
    return "".join(f"<h2>{html.escape(s.title)}</h2><p>{html.escape(s.text + made)}</p>"
                   f'<div class="charts">{"".join(s.figures)}</div>' for s in sections)


_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
.charts, .grids { display: flex; flex-wrap: wrap; gap: 12px; }
.chart .title { font-weight: 600; font-size: 13px; } .chart .frame { fill: none; stroke: #bbb; }
.chart text { font-size: 11px; fill: #555; } .chart .ylab { text-anchor: end; } .chart .end { text-anchor: end; }
.chart .legend { text-anchor: end; font-size: 12px; }
figure { margin: 0; } figure img { image-rendering: pixelated; width: 256px; border: 1px solid #ddd; }
figure audio, figure video { display: block; width: 258px; margin-top: 4px; }
figcaption { font-size: 12px; color: #555; text-align: center; }
pre { background: #f6f6f6; padding: 12px; overflow-x: auto; }
table { border-collapse: collapse; } td { padding: 2px 12px 2px 0; }
"""


def build_report(run_dir: str | Path, modality: str | None = None, training: torch.Tensor | None = None) -> str:
    """The HTML text of a run's report.

    ``modality`` names the run's modality (the trainer knows it before ``generator/`` is saved);
    None reads it from the saved generator's metadata. ``training``: the run's stored training samples
    where the caller holds them (the trainer), for the modality's sections; None reads them when needed.
    """
    run = RunDir(run_dir)
    if not (run.is_run() or run.metrics_path.is_file()):
        raise UserError(f"no run directory at '{run.dir}' (no {run.config_path.name}, generator/ or {run.metrics_path.name})")
    records = run.metrics()
    config_text = run.config_path.read_text() if run.config_path.is_file() else f"(no {run.config_path.name})"
    name = run.dir.name
    kind = _modality(run, modality)
    caption = kind.preview_caption if kind else "samples"
    playable = kind.playable if kind else None
    last = records[-1] if records else {}
    summary = [("run", name), ("last logged step", last.get("step", "-")), ("kimg", last.get("kimg", "-"))]
    summary += [(k, _tick(v)) for k, v in last.items() if k.startswith("eval/") and isinstance(v, (int, float))]
    grids = pick_grids(run.sample_grids())
    body = [
        f"<h1>ganforge run: {html.escape(name)}</h1>",
        "<table>" + "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in summary)
        + "</table>",
        "<h2>Curves</h2>",
        '<div class="charts">' + ("".join(charts(records)) or "<p>nothing logged yet</p>") + "</div>",
        f"<h2>Samples over time</h2><p>{html.escape(caption.capitalize())} of the same fixed inputs at every step, "
        "so they are comparable" + (f"; each plays the same {html.escape(kind.plural)} one after another" if playable else "")
        + ".</p>",
        '<div class="grids">'
        + ("".join(_figure(p, playable) for p in grids) or f"<p>no {html.escape(caption)} yet</p>")
        + "</div>",
        modality_sections(run, kind, training),
        "<h2>Config</h2>",
        f"<pre>{html.escape(config_text)}</pre>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(name)}: ganforge report</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def write_report(run_dir: str | Path, modality: str | None = None, training: torch.Tensor | None = None) -> Path:
    """Write ``RUN_DIR/report.html`` atomically and return its path (``modality``, ``training``: see :func:`build_report`)."""
    path = RunDir(run_dir).report_path
    atomic_write_text(path, build_report(run_dir, modality, training))
    return path


def _modality(run: RunDir, name: str | None = None) -> modalities.Modality | None:
    """The run's modality (its previews' caption, what plays beside them): ``name``, else the saved generator's."""
    try:
        return modalities.get(str(name or run.generator_meta().get("modality") or "image"))
    except UserError:  # a modality this process has not registered
        return None

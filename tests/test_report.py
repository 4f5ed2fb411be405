"""report.html: written by every run, self-contained, showing the curves, grids and config."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.report import MAX_GRIDS, build_report, pick_grids, read_metrics, series
from tiny_configs import TINY_DIGITS


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    overrides = {**TINY_DIGITS, "train.steps": 40, "eval.every": 20, "eval.n": 200, "eval.metrics": ["fid"]}
    ganforge.train("dcgan-digits", out=out, overrides=overrides)
    return out


def test_every_run_writes_a_self_contained_report(run_dir: Path) -> None:
    page = (run_dir / "report.html").read_text()
    # Nothing is fetched from elsewhere: images are data URLs, charts inline SVG.
    assert not re.search(r'(src|href)="(?!data:)', page)
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    grids = sorted((run_dir / "samples").glob("step-*.png"))
    assert len(images) == len(grids) == 2  # steps 20 and 40
    for encoded, path in zip(images, grids):
        assert base64.b64decode(encoded) == path.read_bytes()
        Image.open(io.BytesIO(base64.b64decode(encoded))).verify()
    assert "name: run" in page and "extractor: digits" in page  # the resolved config (named after its directory)
    assert "<audio" not in page and not list((run_dir / "samples").glob("step-*.wav"))  # images: nothing to play


def test_report_curves_follow_the_log(run_dir: Path) -> None:
    records = read_metrics(run_dir)
    page = build_report(run_dir)
    charts = re.findall(r'<svg class="chart".*?</svg>', page)
    titles = [re.search(r'class="title">([^<]+)<', c).group(1) for c in charts]
    assert titles[0] == "eval/fid" and "losses" in titles
    losses = charts[titles.index("losses")]
    lines = re.findall(r'<polyline points="([^"]+)"', losses)
    assert len(lines) == 2  # d_loss and g_loss
    logged = len(series(records, "d_loss"))
    assert logged == 4  # every 10 of 40 steps
    assert [len(line.split()) for line in lines] == [logged, logged]
    assert len(series(records, "eval/fid")) == 2


def test_series_skips_non_finite_values_and_torn_lines(tmp_path: Path) -> None:
    lines = [json.dumps({"step": 1, "d_loss": 1.0}), json.dumps({"step": 2, "d_loss": float("nan")}),
             json.dumps({"step": 3, "d_loss": 0.5}), '{"step": 4, "d_lo']
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines))
    records = read_metrics(tmp_path)
    assert len(records) == 3
    assert series(records, "d_loss") == [(1.0, 1.0), (3.0, 0.5)]
    assert "<svg" in build_report(tmp_path)


def test_pick_grids_keeps_ends_and_spacing() -> None:
    paths = [Path(f"step-{i:06d}.png") for i in range(50)]
    picked = pick_grids(paths)
    assert len(picked) == MAX_GRIDS and picked[0] == paths[0] and picked[-1] == paths[-1]
    assert picked == sorted(set(picked))
    assert pick_grids(paths[:3]) == paths[:3]


def test_report_cli(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").is_file()
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no run directory" in capsys.readouterr().err

"""report.html: written by every run, self-contained, showing the curves, grids and config; a table run's
histograms per column, real against generated."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.config import DataConfig
from ganforge.data import create
from ganforge.metrics.tabular import NUMERIC
from ganforge.modality import of
from ganforge.report import MAX_GRIDS, REPORT_SEED, build_report, pick_grids, read_metrics, series
from ganforge.tabular import modality as table_modality
from ganforge.tabular.modality import REPORT_BINS
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



# --------------------------------------------------------------------------- a table run: a histogram per column

#: A report's bar charts: (the whole SVG, its title).
BAR_CHARTS = re.compile(r'(<svg class="chart bars".*?class="title">([^<]+)<.*?</svg>)')
#: A bar: its fill colour, and whether it is see-through (overlaid histograms).
BAR = re.compile(r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="[^"]+" fill="([^"]+)"( fill-opacity="0.5")?>')


def bar_charts(page: str) -> dict[str, str]:
    """Column name -> its chart."""
    return {html.unescape(title): svg for svg, title in BAR_CHARTS.findall(page)}


def column_kinds(run: ganforge.Run) -> dict[str, str]:
    """The run's columns in order, with their kinds (from the generator's table encoding)."""
    return {code.name: code.kind for code in of(ganforge.load(run.dir)).transformer.columns}


def test_a_table_run_report_draws_each_column_real_against_generated(tiny_table_run: ganforge.Run) -> None:
    page = (tiny_table_run.dir / "report.html").read_text()  # as the trainer wrote it
    assert not re.search(r'(src|href)="(?!data:)', page)
    charts, kinds = bar_charts(page), column_kinds(tiny_table_run)
    assert list(charts) == list(kinds) and len(kinds) == 6  # one chart per column, in the table's order
    assert set(kinds.values()) == {"continuous", "discrete", "date", "boolean", "categorical"}
    assert "Columns: training rows against generated rows" in page and "left out" not in page
    assert f"seed {REPORT_SEED}, the generator saved at step 20" in page
    for name, kind in kinds.items():
        bars = BAR.findall(charts[name])
        colours = [colour for colour, _ in bars]
        assert len(set(colours)) == 2 and colours.count(colours[0]) == len(bars) // 2, name  # real and generated
        if kind in NUMERIC:  # overlaid histograms on shared bins
            assert len(bars) == 2 * REPORT_BINS and all(see_through for _, see_through in bars), name
        else:  # side-by-side shares of each category
            assert len(bars) == 2 * {"boolean": 2, "categorical": 3}[kind] and not any(s for _, s in bars), name
    assert "Washington, D.C." in charts["city"] and "2019-" in charts["joined"]  # category names; dates as dates
    assert re.search(r"real \(\d+% missing\)", charts["income"])  # a tenth of the incomes are missing


def test_table_report_shares_are_the_training_rows(tiny_table_run: ganforge.Run, table_csv: Path) -> None:
    svg = bar_charts(build_report(tiny_table_run.dir))["smoker"]  # the training rows read from the run's config
    shown = {label: float(share) for label, share in re.findall(r"<title>([^:<]+): real ([0-9.]+)</title>", svg)}
    training = create(DataConfig(name="table", root=str(table_csv)))
    shares = training.info["frame"]["smoker"].astype(str).value_counts(normalize=True)
    assert shown.keys() == {"True", "False"}
    assert all(shown[label] == pytest.approx(shares[label], abs=5e-4) for label in shown)
    # a caller that holds the training samples (the trainer) passes them
    assert "Each column of 10 training rows (real) and 10 generated rows" in build_report(tiny_table_run.dir, training=training.data[:10])


def test_a_table_report_names_the_columns_it_leaves_out(tiny_table_run: ganforge.Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table_modality, "REPORT_COLUMNS", 4)
    page = build_report(tiny_table_run.dir)
    assert list(bar_charts(page)) == list(column_kinds(tiny_table_run))[:4]
    assert "The first 4 of 6 columns are drawn; left out: smoker, city." in page


def test_a_table_report_waits_for_the_generator(tiny_table_run: ganforge.Run, run_copy) -> None:
    run = run_copy(tiny_table_run)
    shutil.rmtree(run / "generator")
    page = build_report(run, modality="table")  # as the trainer writes it at a sample step before a checkpoint
    assert not bar_charts(page) and "follow once the run saves its generator" in page
    assert "<img" in page  # the rest of the report as before


def test_an_image_report_has_no_modality_sections(run_dir: Path) -> None:
    assert not bar_charts(build_report(run_dir)) and "training rows" not in build_report(run_dir)

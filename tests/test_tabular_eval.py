"""``ganforge eval`` for tables: the registered table metrics against real-data and noise baselines,
through the same evaluation path a run takes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pandas")
pytest.importorskip("sklearn")

from ganforge.config import DataConfig  # noqa: E402
from ganforge.data import create  # noqa: E402
from ganforge.errors import UserError  # noqa: E402
from ganforge.evaluation import Source, evaluate  # noqa: E402
from ganforge.tabular import TableTransformer  # noqa: E402
from ganforge.tabular.baselines import GaussianCopula, Resample  # noqa: E402

METRICS = ["tstr", "column-shapes", "correlation", "detection", "dcr"]


@pytest.fixture(scope="module")
def wine() -> dict:
    train = create(DataConfig(name="wine"))
    return {"info": train.info, "transformer": TableTransformer.from_dict(train.info["table"])}


def rows_source(wine: dict, frame, what: str) -> Source:
    vectors = torch.from_numpy(wine["transformer"].transform(frame)).float()
    return Source(vectors, what, {"table": wine["info"]["table"], "target": wine["info"]["target"]}, modality="table")


def test_metrics_rank_a_good_model_above_noise_and_flag_copies(wine: dict) -> None:
    info = wine["info"]
    frame, kinds, target = info["frame"], info["kinds"], info["target"]
    copula = GaussianCopula().fit(frame, kinds, condition=target, seed=0).sample(600, seed=1)
    copies = Resample(0.0).fit(frame, kinds, seed=0).sample(600, seed=1)
    # noise: every value of every column drawn independently from the training column (no relations left)
    rng = np.random.default_rng(0)
    noise = frame.apply(lambda c: c.to_numpy()[rng.integers(0, len(c), 600)])

    good = evaluate("wine", rows_source(wine, copula, "copula"), METRICS)
    bad = evaluate("wine", rows_source(wine, noise, "noise"), METRICS)
    copied = evaluate("wine", rows_source(wine, copies, "copies"), ["dcr"])

    assert good["tstr_score"] == "macro_f1" and 0.85 < good["trtr"] <= 1.0  # TRTR: the real rows' own figure
    assert good["tstr"] > 0.85 and bad["tstr"] < 0.6  # shuffled columns teach nothing about the class
    assert good["column_shapes"] > 0.85 and bad["column_shapes"] > 0.85  # marginals alone cannot tell them apart ...
    assert good["correlation_distance"] < 0.1 < bad["correlation_distance"]  # ... relations can
    assert good["detection_auc"] < 0.7 and good["detection_auc_forest"] < 0.75 < bad["detection_auc_forest"]
    assert good["dcr_ratio"] > 0.5 and good["copies"] < 0.2
    assert copied["dcr_ratio"] < 0.05 and copied["copies"] > 0.9  # the memorisation check flags copied rows


def test_table_eval_errors_are_one_line(wine: dict, tiny_dcgan_run) -> None:
    source = rows_source(wine, wine["info"]["frame"], "real rows")
    with pytest.raises(UserError, match="trained without train.privacy"):
        evaluate(None, source, ["epsilon"])
    with pytest.raises(UserError, match="tstr scores table rows, got images"):
        evaluate("digits", tiny_dcgan_run.dir, ["tstr"])
    with pytest.raises(UserError, match="held-out split"):
        evaluate(source, source, ["tstr"])  # rows alone have no held-out split


def test_eval_cli_scores_a_table_run(tiny_table_run, capsys) -> None:
    from ganforge.cli import main

    assert main(["eval", str(tiny_table_run.dir), "--metrics", "column-shapes,correlation,detection", "--n", "300"]) == 0
    out = capsys.readouterr().out
    for key in ("column_shapes", "column_shapes_worst", "correlation_distance", "detection_auc"):
        assert key in out


def test_a_numeric_target_is_scored_by_r2() -> None:
    train = create(DataConfig(name="diabetes"))
    info = train.info
    transformer = TableTransformer.from_dict(info["table"])
    fake = GaussianCopula().fit(info["frame"], info["kinds"], seed=0).sample(500, seed=1)
    source = Source(torch.from_numpy(transformer.transform(fake)).float(), "copula",
                    {"table": info["table"], "target": info["target"]}, modality="table")
    scores = evaluate("diabetes", source, ["tstr"])
    assert scores["tstr_score"] == "r2" and 0.2 < scores["trtr"] < 0.7  # disease progression is hard to predict from 10 values
    assert scores["tstr"] > 0.1  # a copula keeps enough of the relations to predict it at all

"""``train.loggers``: Weights & Biases (offline) and MLflow (a file store in the run) record the same metrics as
``metrics.jsonl``; unknown names and missing packages are one-line errors."""

from __future__ import annotations

import json
import struct
import sys

import pytest

import ganforge
from ganforge.errors import ConfigError, UserError
from ganforge.validate import load_config

SETTINGS = {"train.steps": 20, "train.log_every": 5, "model.hidden_dim": 16, "train.progress": False, "train.threads": 1}


def wandb_history(path) -> dict[int, dict[str, float]]:
    """The history records of an offline W&B run file (LevelDB-log blocks of protobuf ``Record``s), merged by step."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block, pos, chunks, records = path.read_bytes(), 32768, 7, b"", []  # 7: the ':W&B' header
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # the block's tail is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunks = (b"" if kind in (1, 2) else chunks) + data[pos + 7:pos + 7 + length]  # full, first, middle, last
        pos += 7 + length
        if kind in (1, 4):
            records.append(chunks)
    history: dict[int, dict[str, float]] = {}
    for raw in records:
        record = pb.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            history.setdefault(int(items["_step"]), {}).update(items)
    return history


def test_wandb_and_mlflow_record_what_metrics_jsonl_records(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = ganforge.train("gan-ring8", out=tmp_path / "run",
                         overrides={**SETTINGS, "train.loggers": ["jsonl", "wandb", "mlflow", "tensorboard"]}).dir
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) >= 4 and any("eval/modes" in r for r in records)  # training lines and an evaluation

    history = wandb_history(next((run / "wandb").glob("offline-run-*/run-*.wandb")))
    client = mlflow.MlflowClient((run / "mlruns").resolve().as_uri())
    run_id = (run / "mlflow_id.txt").read_text().strip()
    for record in records:
        for key, value in record.items():
            if key == "step" or not isinstance(value, (int, float)):
                continue
            assert history[record["step"]][key] == pytest.approx(value), (key, record["step"])
            logged = {m.step: m.value for m in client.get_metric_history(run_id, key)}
            assert logged[record["step"]] == pytest.approx(value), (key, record["step"])
    assert client.get_run(run_id).data.params["train.steps"] == "20" and client.get_run(run_id).info.status == "FINISHED"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_unknown_logger_and_missing_package_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="did you mean .mlflow."):
        load_config("gan-ring8", {"train.loggers": ["mlfow"]})
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb fails
    with pytest.raises(ConfigError, match="pip install wandb"):
        ganforge.train("gan-ring8", out=tmp_path / "run", overrides={**SETTINGS, "train.loggers": ["wandb"]})

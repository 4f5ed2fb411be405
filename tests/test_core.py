"""The lowest layer: atomic writes (one file, a folder of files), the cache, devices, eval_mode, pixels."""

import os
import stat
import threading

import pytest
import torch

from ganforge import core
from ganforge.errors import UserError


def test_atomic_write_bytes_replaces_whole_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "a" / "f.bin"
    core.atomic_write_bytes(path, b"old")
    core.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and os.listdir(path.parent) == ["f.bin"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_folder_of_files_is_replaced_as_one_unit(tmp_path):
    """A reader polling the pair never sees the config of one version beside the weights of another."""
    folder = tmp_path / "generator"
    core.atomic_write_files(folder, {"config.json": b"0", "model.safetensors": b"0" * 1000})
    mixed, reads, stop = [], [0], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                files = core.read_files(folder, ["config.json", "model.safetensors"])
            except FileNotFoundError:  # only where the platform cannot exchange two paths in one step
                continue
            config, weights = files["config.json"], files["model.safetensors"]
            reads[0] += 1
            if weights != config * 1000:
                mixed.append((config, weights[:1]))

    thread = threading.Thread(target=reader)
    thread.start()
    for version in range(1, 200):
        digit = str(version % 10).encode()
        core.atomic_write_files(folder, {"config.json": digit, "model.safetensors": digit * 1000})
    stop.set()
    thread.join()
    assert not mixed and reads[0] > 0
    assert sorted(os.listdir(tmp_path)) == ["generator"]  # no temporary or old folders left
    assert sorted(os.listdir(folder)) == ["config.json", "model.safetensors"]
    assert {stat.S_IMODE((folder / n).stat().st_mode) for n in os.listdir(folder)} == {0o644}


def test_cache_rebuilds_a_corrupt_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return {"x": torch.arange(3)}

    assert torch.equal(core.cached(["k", 1], build)["x"], torch.arange(3))
    assert torch.equal(core.cached(["k", 1], build)["x"], torch.arange(3)) and len(calls) == 1
    (entry,) = (tmp_path / "decoded").iterdir()
    entry.write_bytes(b"garbage")
    assert torch.equal(core.cached(["k", 1], build)["x"], torch.arange(3)) and len(calls) == 2
    tensors = core.cached_tensors({"a": 1}, lambda: {"f": torch.ones(2)}, namespace="features", label="x")
    assert torch.equal(tensors["f"], torch.ones(2))


def test_devices_and_modes_and_pixels():
    assert core.resolve_device("cpu").type == "cpu"
    with pytest.raises(UserError, match="train.device 'bogus' is not a device"):
        core.resolve_device("bogus", "train.device")
    net = torch.nn.Dropout().train()
    with core.eval_mode(net):
        assert not net.training
    assert net.training
    with pytest.raises(RuntimeError), core.eval_mode(net):
        raise RuntimeError("restored even on error")
    assert net.training
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    assert torch.equal(core.to_uint8(core.from_uint8(pixels)), pixels)
    assert core.from_uint8(pixels).min() == -1 and core.from_uint8(pixels).max() == 1

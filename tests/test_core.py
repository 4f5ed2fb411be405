"""The lowest layer: atomic writes (one file, a folder of files), stale temporaries, the fault hook, the cache,
devices, eval_mode, pixels."""

import os
import signal
import stat
import subprocess
import threading
from pathlib import Path

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


def _dead_pid() -> int:
    """The PID of a process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead, live, own = _dead_pid(), os.getppid(), os.getpid()
    (tmp_path / f".latest.tmp-{dead}.pt").write_bytes(b"half a checkpoint")
    (tmp_path / f".generator.tmp-{dead}").mkdir()
    (tmp_path / f".generator.tmp-{dead}" / "model.safetensors").write_bytes(b"w")
    (tmp_path / f".generator.old-{dead}").mkdir()
    (tmp_path / f".config.tmp-{dead}").write_text("no suffix")
    (tmp_path / f".report.tmp-{live}.html").write_text("another process is writing this")
    (tmp_path / f".metrics.tmp-{own}.jsonl").write_text("ours")
    others = ["latest.pt", ".hidden", "notes.tmp-1.txt", ".x.tmp-abc.pt", ".x.tmp-.pt"]
    for name in others:
        (tmp_path / name).write_text("not a temporary")
    removed = core.remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == sorted(
        [f".latest.tmp-{dead}.pt", f".generator.tmp-{dead}", f".generator.old-{dead}", f".config.tmp-{dead}"]
    )
    assert sorted(os.listdir(tmp_path)) == sorted([*others, f".report.tmp-{live}.html", f".metrics.tmp-{own}.jsonl"])
    assert [p.name for p in core.remove_stale_temps(tmp_path, include_own=True)] == [f".metrics.tmp-{own}.jsonl"]
    assert core.remove_stale_temps(tmp_path / "missing") == []
    assert core.is_temporary(f".latest.tmp-{dead}.pt") and not any(core.is_temporary(name) for name in others)


def test_the_temporaries_the_atomic_writers_make_are_the_ones_recognised(tmp_path, monkeypatch):
    """What atomic_write_bytes / atomic_write_files name their temporaries, remove_stale_temps finds."""
    written: list[Path] = []
    real = core._write_synced
    monkeypatch.setattr(core, "_write_synced", lambda path, data: (written.append(path), real(path, data))[1])
    core.atomic_write_bytes(tmp_path / "latest.pt", b"x")
    core.atomic_write_bytes(tmp_path / "README", b"x")
    core.atomic_write_files(tmp_path / "generator", {"config.json": b"{}"})
    temporaries = [written[0], written[1], written[2].parent]
    assert [p.parent for p in temporaries] == [tmp_path] * 3
    written[0].write_bytes(b"left by a kill")
    written[1].write_bytes(b"left by a kill")
    written[2].parent.mkdir()
    assert core.remove_stale_temps(tmp_path) == []  # this process is alive
    assert sorted(core.remove_stale_temps(tmp_path, include_own=True)) == sorted(temporaries)
    assert sorted(os.listdir(tmp_path)) == ["README", "generator", "latest.pt"]


def test_fault_point_kills_at_the_named_hit_only(monkeypatch):
    kills: list[tuple[int, int]] = []
    monkeypatch.setattr(core.os, "kill", lambda pid, sig: kills.append((pid, sig)))
    monkeypatch.setattr(core, "_fault_hits", {})
    monkeypatch.delenv(core.FAULT_ENV, raising=False)
    core.fault_point("trainer:checkpoint")
    monkeypatch.setenv(core.FAULT_ENV, "trainer:checkpoint:2")
    core.fault_point("trainer:step")
    core.fault_point("trainer:checkpoint")
    assert kills == []
    core.fault_point("trainer:checkpoint")
    assert kills == [(os.getpid(), signal.SIGKILL)]
    monkeypatch.setenv(core.FAULT_ENV, "atomic-write:latest.pt")  # no count: the first hit
    core.fault_point("atomic-write:latest.pt")
    assert len(kills) == 2

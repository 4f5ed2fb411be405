"""Sharing (``ganforge push``, ``hf://`` paths): a run pushed to a hub repository (here a local folder laid out as
the Hugging Face cache, since there is no network) loads back with ``ganforge.load`` and samples the same bytes."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

import ganforge
from ganforge.cli import main
from ganforge.errors import UserError

pytest.importorskip("huggingface_hub")

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def as_hub_cache(folder, cache, repo_id: str) -> None:
    """Lay ``folder``'s files out as the Hub's cache holds a downloaded repository (refs/main -> a snapshot)."""
    repo = cache / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)


def test_a_pushed_run_loads_back_from_hf_and_samples_the_same_bytes(tiny_cdcgan_run, tmp_path, monkeypatch, capsys):
    local = tmp_path / "repo"
    assert main(["push", str(tiny_cdcgan_run.dir), "ada/digits", "--local", str(local), "--license", "mit"]) == 0
    assert sorted(p.name for p in local.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    card = (local / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "ganforge" and front["license"] == "mit" and front["datasets"] == ["digits"]
    assert "ganforge sample hf://ada/digits" in card and "## Training" in card and "recipe:" in card

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    as_hub_cache(local, tmp_path / "hf", "ada/digits")
    shared, original = ganforge.load("hf://ada/digits"), ganforge.load(tiny_cdcgan_run.dir)
    assert torch.equal(shared.sample(8, seed=3), original.sample(8, seed=3))
    for source, name in ((str(tiny_cdcgan_run.dir), "a.png"), ("hf://ada/digits", "b.png")):
        assert main(["sample", source, "--n", "8", "--seed", "3", "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()  # pixels, watermark and provenance


def test_hub_paths_fail_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="cannot get 'hf://ada/missing' from the Hub") as err:
        ganforge.load("hf://ada/missing")
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="hf://OWNER/REPO"):
        ganforge.load("hf://just-a-name")


def test_push_uploads_the_hub_folder(tiny_dcgan_run, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    uploaded = {}

    class FakeApi:  # the Hub's API without a network: records what would be uploaded
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private=False, exist_ok=False):
            uploaded["private"] = private

        def upload_folder(self, folder_path, repo_id, commit_message):
            shutil.copytree(folder_path, tmp_path / "uploaded")
            uploaded["repo_id"] = repo_id

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert main(["push", str(tiny_dcgan_run.dir), "ada/dcgan", "--private"]) == 0
    assert uploaded == {"private": True, "repo_id": "ada/dcgan"} and "hf://ada/dcgan" in capsys.readouterr().out
    assert torch.equal(ganforge.load(tmp_path / "uploaded").sample(2, seed=1), ganforge.load(tiny_dcgan_run.dir).sample(2, seed=1))

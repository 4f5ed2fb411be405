"""``ganforge synthesize``: class-folder layout, balance plans, provenance on every PNG, manifest, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.core import to_uint8
from ganforge.errors import UserError
from ganforge.safeguards import watermark
from ganforge.synthesize import (
    class_folders,
    folder_name,
    image_seed,
    match_classes,
    plan_balance,
    plan_per_class,
    plan_total,
    read_class_counts,
    synthesize,
)


@pytest.fixture(scope="module")
def conditional_run(tiny_cdcgan_run: ganforge.Run) -> Path:
    return tiny_cdcgan_run.dir


@pytest.fixture(scope="module")
def unconditional_run(tiny_dcgan_run: ganforge.Run) -> Path:
    return tiny_dcgan_run.dir


def _skewed_folder(root: Path, counts: dict[str, int]) -> Path:
    """A labelled image folder with ``counts[name]`` grey 8x8 images in each class sub-folder."""
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(np.full((8, 8), i * 10 % 256, dtype=np.uint8), mode="L").save(root / name / f"{i}.png")
    return root


def _pngs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png"))


def test_per_class_layout_counts_provenance_and_manifest(conditional_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "syn"
    assert main(["synthesize", str(conditional_run), "--per-class", "3", "--out", str(out), "--seed", "2",
                 "--truncation", "0.8", "--batch-size", "7"]) == 0
    assert "plan: 10 classes, 30 images" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [str(d) for d in range(10)]
    files = _pngs(out)
    assert len(files) == 30 and all(len(list((out / str(d)).glob("*.png"))) == 3 for d in range(10))
    generator = ganforge.load(conditional_run)
    seeds = set()
    for path in files:
        image = Image.open(path)
        text = image.text
        assert text["synthetic"] == "true" and text["generator"] == generator.meta["weights_id"]
        assert text["run"] == "cdcgan-digits" and text["truncation"] == "0.8"
        assert text["label"] == path.parent.name == text["class"]
        assert int(text["seed"]) == image_seed(2, int(text["index"])) and path.stem == f"{int(text['index']):06d}"
        seeds.add(text["seed"])
        assert image.mode == "L" and image.size == (16, 16)
    assert len(seeds) == 30
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {str(d): 3 for d in range(10)} and manifest["total"] == 30
    assert manifest["generator"] == generator.meta["weights_id"] and manifest["run"] == "cdcgan-digits"
    assert manifest["seed"] == 2 and manifest["truncation"] == 0.8


def test_each_file_is_reproducible_from_its_metadata(conditional_run: Path, tmp_path: Path) -> None:
    generator = ganforge.load(conditional_run)
    synthesize(generator, plan_per_class(generator, 2), tmp_path / "syn", seed=1, batch_size=5)
    for path in _pngs(tmp_path / "syn")[::3]:
        text = Image.open(path).text
        again = to_uint8(generator.sample(1, seed=int(text["seed"]), labels=int(text["label"])))[0, 0].numpy()
        again = watermark.embed(again, watermark.payload(watermark.DEFAULT_KEY, text["generator"]))  # as written
        pixels = np.array(Image.open(path))
        # batch size may move the last bit, which the mark's own rounding can carry one grey level further
        assert np.abs(again.astype(int) - pixels.astype(int)).max() <= 2


def test_balance_plan_on_a_skewed_folder(conditional_run: Path, tmp_path: Path, capsys) -> None:
    real = _skewed_folder(tmp_path / "real", {"0": 5, "3": 2, "7": 1})
    generator = ganforge.load(conditional_run)
    plan = plan_balance(generator, real)
    expected = {0: 0, 1: 5, 2: 5, 3: 3, 4: 5, 5: 5, 6: 5, 7: 4, 8: 5, 9: 5}  # absent classes start at 0
    assert plan.counts == {k: v for k, v in expected.items() if v}
    assert plan.real_counts[0] == 5 and plan.real_counts[3] == 2 and plan.real_counts[1] == 0
    out = tmp_path / "syn"
    assert main(["synthesize", str(conditional_run), "--balance", str(real), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3  2 + 3 = 5" in printed and "7  1 + 4 = 5" in printed and "0  5 + 0 = 5" in printed
    assert {d: len(list((out / str(d)).glob("*.png"))) for d in range(1, 10)} == {k: expected[k] for k in range(1, 10)}
    assert not (out / "0").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["balance"]["target"] == 5 and manifest["balance"]["real_counts"]["3"] == 2


def test_balance_nothing_to_do(conditional_run: Path, tmp_path: Path, capsys) -> None:
    real = _skewed_folder(tmp_path / "real", {str(d): 1 for d in range(10)})
    assert main(["synthesize", str(conditional_run), "--balance", str(real), "--out", str(tmp_path / "o")]) == 0
    assert "nothing to generate" in capsys.readouterr().out


def test_class_names_map_to_folders() -> None:
    names = ["T-shirt/top", "Trouser"]
    assert folder_name("T-shirt/top") == "T-shirt_top"
    assert class_folders(["a/b", "a_b", "c"]) == ["0-a_b", "1-a_b", "2-c"]  # never two classes in one folder
    assert match_classes(["1-a_b"], ["a/b", "a_b"]) == {"1-a_b": 1}
    assert match_classes(["T-shirt_top", "1"], names) == {"T-shirt_top": 0, "1": 1}
    assert match_classes(["Trouser", "T-shirt/top"], names) == {"Trouser": 1, "T-shirt/top": 0}
    with pytest.raises(UserError, match="'cat' name no class of the generator.*T-shirt/top, Trouser"):
        match_classes(["cat"], names)
    with pytest.raises(UserError, match="both name class 'Trouser'"):
        match_classes(["Trouser", "1"], names)


def test_n_cycles_classes_and_unconditional_is_flat(conditional_run: Path, unconditional_run: Path, tmp_path: Path) -> None:
    assert plan_total(ganforge.load(conditional_run), 12).counts == {k: 2 if k < 2 else 1 for k in range(10)}
    out = tmp_path / "flat"
    assert main(["synthesize", str(unconditional_run), "--n", "5", "--out", str(out)]) == 0
    files = _pngs(out)
    assert [p.parent for p in files] == [out] * 5
    assert all(Image.open(p).text["label"] == "" for p in files)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["total"] == 5 and manifest["counts"] == {}


def test_overwrite_rules(conditional_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "syn"
    args = ["synthesize", str(conditional_run), "--per-class", "1", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "--overwrite" in err
    assert main([*args[:3], "2", *args[4:], "--overwrite"]) == 0
    assert len(_pngs(out)) == 20  # the earlier 10 images were replaced, not mixed in
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["synthesize", str(conditional_run), "--per-class", "1", "--out", str(foreign), "--overwrite"]) == 2
    assert "holds no manifest.json" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--per-class", "2"], "--per-class needs a conditional generator; this one is unconditional"),
        (["--balance", "REAL"], "--balance needs a conditional generator"),
        (["--n", "0"], "--n must be >= 1"),
    ],
)
def test_unconditional_errors(unconditional_run: Path, tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    extra = [str(tmp_path) if e == "REAL" else e for e in extra]
    assert main(["synthesize", str(unconditional_run), *extra, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_balance_folder_errors(conditional_run: Path, tmp_path: Path, capsys) -> None:
    generator = ganforge.load(conditional_run)
    with pytest.raises(UserError, match="does not exist"):
        plan_balance(generator, tmp_path / "missing")
    with pytest.raises(UserError, match="'cat' name no class"):
        plan_balance(generator, _skewed_folder(tmp_path / "pets", {"3": 1, "cat": 2}))
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("L", (8, 8)).save(flat / "a.png")
    with pytest.raises(UserError, match="top level"):
        read_class_counts(flat)
    assert read_class_counts(_skewed_folder(tmp_path / "ok", {"1": 2, "2": 0})) == {"1": 2, "2": 0}
    assert main(["synthesize", str(conditional_run), "--balance", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "error: --balance folder" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written before the plan is valid

"""Image-to-image translation: paired/unpaired/SR data, joint crops and flips, pix2pix, its evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

import ganforge
from ganforge import models
from ganforge.config import DataConfig, apply_overrides
from ganforge.data import BatchLoader, Dataset, create, to_uint8
from ganforge.errors import ConfigError, DataError, UserError
from ganforge.evaluation.translation import evaluate_translation, mean_l1
from ganforge.layers.patchgan import receptive_field
from ganforge.models import is_translator, load_generator, save_generator
from ganforge.training.checkpoint import load_checkpoint
from ganforge.validate import load_config
from ganforge.viz import comparison_grid

# --------------------------------------------------------------------------- synthetic pairs

#: A label map's classes are drawn in PALETTE colours; the target paints them in TARGET ones.
PALETTE = np.array([[0, 0, 160], [230, 40, 40], [250, 220, 30], [40, 200, 90]], np.uint8)
TARGET = np.array([[240, 240, 240], [30, 30, 30], [90, 60, 200], [200, 120, 40]], np.uint8)


def label_map(rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A facade-like map of classes 0..3: rectangles on a background."""
    cls = np.zeros((size, size), np.int64)
    for _ in range(rng.integers(3, 7)):
        x0, y0 = rng.integers(0, size - 4, 2)
        w, h = rng.integers(4, size // 2, 2)
        cls[y0 : y0 + h, x0 : x0 + w] = rng.integers(1, 4)
    return cls


def write_pairs(folder: Path, count: int, seed: int, size: int = 32) -> list[np.ndarray]:
    """Side-by-side PNGs ``i.png``: A (left) = a coloured label map, B (right) = its repainting."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(count):
        cls = label_map(rng, size)
        pair = np.concatenate([PALETTE[cls], TARGET[cls]], axis=1)
        Image.fromarray(pair).save(folder / f"{i}.png")
        pairs.append(pair)
    return pairs


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train/`` (48 pairs) and ``test/`` (16 pairs) of 32x32 label maps -> repainted maps."""
    root = tmp_path_factory.mktemp("pairs")
    write_pairs(root / "train", 48, seed=0)
    write_pairs(root / "test", 16, seed=1)
    return root


def make(name: str, **kwargs) -> Dataset:
    return create(DataConfig(name=name, **kwargs))


# --------------------------------------------------------------------------- data sets


def test_paired_folder_side_by_side_both_directions(tmp_path):
    pairs = write_pairs(tmp_path / "train", 5, seed=3, size=16)
    ab = make("paired-folder", root=str(tmp_path), direction="AtoB")
    ba = make("paired-folder", root=str(tmp_path), direction="BtoA")
    assert ab.paired and ab.data.shape == ab.sources.shape == (5, 3, 16, 16)
    by_name = {f"{i}": p for i, p in enumerate(pairs)}
    names = sorted(by_name)  # files are read in name order
    left = torch.stack([torch.from_numpy(by_name[n][:, :16]).permute(2, 0, 1) for n in names])
    right = torch.stack([torch.from_numpy(by_name[n][:, 16:]).permute(2, 0, 1) for n in names])
    assert torch.equal(ab.sources, left) and torch.equal(ab.data, right)
    assert torch.equal(ba.sources, right) and torch.equal(ba.data, left)
    assert ab.info["layout"] == "side-by-side" and ba.info["direction"] == "BtoA"
    # resolution resizes each half to a square; splits are sub-folders
    assert make("paired-folder", root=str(tmp_path), resolution=8).data.shape == (5, 3, 8, 8)
    with pytest.raises(DataError, match="no folder .*test"):
        make("paired-folder", root=str(tmp_path), split="test")


def test_paired_folder_a_b_folders_matched_by_name(tmp_path):
    rng = np.random.default_rng(0)
    images = {name: rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for name in ("x", "y", "z")}
    for name, image in images.items():
        (tmp_path / "train" / "A").mkdir(parents=True, exist_ok=True)
        (tmp_path / "train" / "B").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "train" / "A" / f"{name}.png")
        if name != "z":  # z has no partner: ignored with a warning; B's files are .bmp (names match without extension)
            Image.fromarray(255 - image).save(tmp_path / "train" / "B" / f"{name}.bmp")
    with pytest.warns(UserWarning, match="ignored 1 image"):
        ds = make("paired-folder", root=str(tmp_path))
    assert ds.info["layout"] == "folders" and len(ds) == 2
    assert torch.equal(ds.data, 255 - ds.sources)  # each B is its own A inverted: the pairs are aligned
    assert torch.equal(ds.sources[0], torch.from_numpy(images["x"]).permute(2, 0, 1))
    # pix2pix's combine_A_and_B input layout: root/A/<split>, root/B/<split>
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "train" / "A", other / "A" / "test")
    shutil.copytree(tmp_path / "train" / "B", other / "B" / "test")
    with pytest.warns(UserWarning, match="ignored"):
        ds = make("paired-folder", root=str(other), split="test", direction="BtoA")
    assert torch.equal(ds.sources, 255 - ds.data)


def test_paired_folder_errors_are_one_line(tmp_path):
    with pytest.raises(DataError, match="needs data.root"):
        make("paired-folder")
    with pytest.raises(DataError, match="does not exist"):
        make("paired-folder", root=str(tmp_path / "missing"))
    (tmp_path / "ab" / "A").mkdir(parents=True)
    (tmp_path / "ab" / "B").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "ab" / "A" / "one.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "ab" / "B" / "two.png")
    with pytest.raises(DataError, match="no pairs .* no image of A/ has a namesake in B/"):
        make("paired-folder", root=str(tmp_path / "ab"))
    (tmp_path / "odd").mkdir()
    Image.new("RGB", (9, 4)).save(tmp_path / "odd" / "a.png")
    with pytest.raises(DataError, match="9 px wide: side-by-side pairs .* need an even width"):
        make("paired-folder", root=str(tmp_path / "odd"))
    with pytest.raises(ConfigError, match="data.direction' must be AtoB or BtoA, got 'AB'"):
        load_config("pix2pix-facades", {"data.direction": "AB"})
    with pytest.raises(DataError, match="data.direction applies to image-to-image data sets"):
        make("digits", direction="BtoA")


def test_paired_folder_skips_unreadable_files(tmp_path):
    write_pairs(tmp_path, 3, seed=0, size=12)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        ds = make("paired-folder", root=str(tmp_path))
    assert len(ds) == 3


def test_real_facades_labels_to_photo(shared_data):
    folder = shared_data / "facades" / "test"
    ds = make("paired-folder", root=str(shared_data / "facades"), split="test", resolution=64, direction="BtoA")
    assert ds.data.shape == ds.sources.shape == (106, 3, 64, 64)
    # files are read in name order; BtoA: the source is the right half (the label map)
    first = sorted(p.name for p in folder.iterdir())[0]
    with Image.open(folder / first) as im:
        right = im.convert("RGB").crop((256, 0, 512, 256)).resize((64, 64), Image.Resampling.BICUBIC)
        left = im.convert("RGB").crop((0, 0, 256, 256)).resize((64, 64), Image.Resampling.BICUBIC)
    assert torch.equal(ds.sources[0], torch.from_numpy(np.array(right)).permute(2, 0, 1))
    assert torch.equal(ds.data[0], torch.from_numpy(np.array(left)).permute(2, 0, 1))


def test_unpaired_folders_and_sr_folder(tmp_path):
    for folder, count, size in (("trainA", 3, 12), ("trainB", 5, 12), ("testA", 2, 12), ("testB", 2, 12)):
        for i in range(count):
            save = tmp_path / "cyc" / folder / f"{i}.png"
            save.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (size, size), (10 * i, 0, 0)).save(save)
    ds = make("unpaired-folders", root=str(tmp_path / "cyc"))
    assert not ds.paired and len(ds) == 5 and len(ds.sources) == 3  # sources = A, targets = B
    ds = make("unpaired-folders", root=str(tmp_path / "cyc"), split="test", direction="BtoA")
    assert len(ds) == len(ds.sources) == 2
    with pytest.raises(DataError, match="needs folders valA/ and valB/"):
        make("unpaired-folders", root=str(tmp_path / "cyc"), split="val")
    # sr-folder: centred patches at the native scale; smaller images are skipped
    hr = tmp_path / "hr"
    hr.mkdir()
    big = np.arange(40 * 30 * 3, dtype=np.uint8).reshape(30, 40, 3)
    Image.fromarray(big).save(hr / "big.png")
    Image.new("RGB", (10, 10)).save(hr / "small.png")
    with pytest.warns(UserWarning, match="skipped 1 .*small.png .*smaller than 16x16"):
        ds = make("sr-folder", root=str(hr), resolution=16)
    assert ds.data.shape == (1, 3, 16, 16) and ds.sources is None
    assert torch.equal(ds.data[0], torch.from_numpy(big[7:23, 12:28]).permute(2, 0, 1))
    with pytest.raises(DataError, match="different sizes; set data.resolution"):
        make("sr-folder", root=str(hr))


# --------------------------------------------------------------------------- the loader


def _noise_pairs(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 images and their 2x2-average-pooled halves (a relation that commutes
    with flips and with crops aligned to 2 pixels, and breaks under any misalignment)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return images, _pool(images)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x.float(), 2).round().to(torch.uint8)


def test_loader_keeps_pairs_aligned_through_crop_and_flip():
    images, _ = _noise_pairs(10, 16)
    inverted = Dataset("t", images, sources=255 - images, paired=True)
    loader = BatchLoader(inverted, 4, seed=1, hflip=True, crop=12)
    centre = to_uint8(inverted.to_model(images[:, :, 2:14, 2:14]))
    flipped = cropped = 0
    for _ in range(8):
        batch = next(loader)
        image, source = to_uint8(batch["image"]), to_uint8(batch["source"])
        assert image.shape == source.shape == (4, 3, 12, 12)
        assert torch.equal(source, 255 - image)  # same rows, same windows, same flips
        # every crop is a window of some data image, flipped or not
        for x in image:
            windows = [images[i, :, t : t + 12, c : c + 12] for i in range(10) for t in range(5) for c in range(5)]
            plain = any(torch.equal(x, w) for w in windows)
            mirrored = any(torch.equal(x.flip(-1), w) for w in windows)
            assert plain or mirrored
            flipped += mirrored and not plain
            cropped += not any(torch.equal(x, c) or torch.equal(x.flip(-1), c) for c in centre)
    assert flipped > 0 and cropped > 0  # both augmentations did happen


def test_loader_aligns_sources_smaller_by_an_integer_ratio():
    images, small = _noise_pairs(6, 16)
    ds = Dataset("t", images, sources=small, paired=True)
    assert ds.source_scale == 2
    loader = BatchLoader(ds, 3, seed=0, hflip=True, crop=8)
    for _ in range(6):
        batch = next(loader)
        assert batch["source"].shape[-1] == 4
        assert torch.equal(to_uint8(batch["source"]), _pool(to_uint8(batch["image"])))
    with pytest.raises(DataError, match="multiple of 2"):
        BatchLoader(ds, 3, crop=7)
    with pytest.raises(DataError, match="same size or sizes in an integer ratio"):
        Dataset("t", images, sources=images[:, :, :10, :10], paired=True)
    with pytest.raises(DataError, match=r"data.crop must be between 1 and the image size \(16x16\)"):
        BatchLoader(ds, 3, crop=17)


def test_unpaired_loader_resumes_exactly():
    images, _ = _noise_pairs(10, 8, seed=0)
    others, _ = _noise_pairs(7, 8, seed=1)
    ds = Dataset("u", images, sources=others, paired=False)

    def fresh() -> BatchLoader:
        return BatchLoader(ds, 4, seed=3, hflip=True, crop=6)

    straight = [next(fresh_loader) for fresh_loader in [fresh()] for _ in range(9)]
    first = fresh()
    for _ in range(4):
        next(first)
    state = first.state_dict()
    assert {"source_epoch", "source_position"} <= set(state)
    resumed = fresh()
    resumed.load_state_dict(state)
    for expected in straight[4:]:
        batch = next(resumed)
        assert torch.equal(batch["image"], expected["image"]) and torch.equal(batch["source"], expected["source"])
    # the source stream is independent: its own order and epochs (7 sources, 10 images)
    assert resumed.source_epoch > resumed.epoch
    # an older checkpoint's state (no source stream) still loads
    old = fresh()
    old.load_state_dict({"epoch": 0, "position": 0, "seed": 3})
    assert torch.equal(next(old)["image"], straight[0]["image"])


def test_loader_without_sources_is_unchanged():
    """Plain data sets draw the same batches and flips as before sources and crops existed."""
    images, _ = _noise_pairs(8, 4)
    loader = BatchLoader(Dataset("p", images), 4, seed=5, hflip=True)
    batch = next(loader)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(5 * 1_000_003))[:4]
    mask = torch.rand(4, generator=torch.Generator().manual_seed((5 * 1_000_003) * 7919)) < 0.5
    expected = torch.where(mask[:, None, None, None], images[perm].flip(-1), images[perm])
    assert torch.equal(to_uint8(batch["image"]), expected) and set(batch) == {"image"}
    assert loader.state_dict() == {"epoch": 0, "position": 4, "seed": 5}


# --------------------------------------------------------------------------- networks


def test_pix2pix_networks_match_the_paper():
    """unet_256 and the 70x70 PatchGAN with batch norm: 54.4M and 2,768,705 parameters."""
    g, d = models.create_translator("pix2pix", 3, 3, norm="batch", d_norm="batch")
    assert round(sum(p.numel() for p in g.parameters()) / 1e6, 3) == 54.414
    assert sum(p.numel() for p in d.parameters()) == 2_768_705
    assert receptive_field(3) == 70 and d.receptive_field == 70
    x = torch.randn(1, 3, 256, 256)
    assert d(g(x), x).shape == (1, 1, 30, 30)  # one logit per overlapping 70x70 patch
    assert [m.p for m in g.modules() if isinstance(m, torch.nn.Dropout)] == [0.5] * 3
    with pytest.raises(UserError, match="multiples of 256"):
        g.translate(torch.zeros(1, 3, 64, 64))


def test_translator_save_and_load(tmp_path):
    torch.manual_seed(0)
    g, _ = models.create_translator("pix2pix", 1, 3, base_channels=4, depth=3, norm="batch")
    g.eval()
    save_generator(g, tmp_path / "gen", {"task": "translation"})
    loaded = load_generator(tmp_path / "gen")
    assert is_translator(loaded) and loaded.meta["task"] == "translation"
    assert (loaded.in_channels, loaded.out_channels, loaded.size_multiple) == (1, 3, 8)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    assert torch.equal(g.translate(x), loaded.translate(x))
    with pytest.raises(UserError, match="no latents to sample"):
        loaded.sample(4)
    with pytest.raises(ConfigError, match="translates images: train it with an image-to-image recipe"):
        models.create("pix2pix", (3, 16, 16))


def test_comparison_grid_layout():
    small, big = torch.zeros(5, 1, 4, 4, dtype=torch.uint8), torch.full((5, 3, 8, 8), 255, dtype=torch.uint8)
    image = comparison_grid([small, big, big], max_rows=8)
    assert image.mode == "RGB" and image.size == (3 * 10 + 2, 5 * 10 + 2)  # 3 columns, 5 rows, padding 2
    assert comparison_grid([big] * 3, max_rows=2).size == (9 * 10 + 2, 2 * 10 + 2)  # 3 groups of 3 columns


# --------------------------------------------------------------------------- pix2pix training


#: The synthetic task at 32x32 with a tiny U-Net (5 levels, 8-32 channels) and PatchGAN.
TINY = {
    "recipe": "pix2pix",
    "data": {"name": "paired-folder", "direction": "AtoB"},
    "model": {"name": "pix2pix", "base_channels": 8, "depth": 5, "max_channels": 32, "dropout_blocks": 1,
              "d_base_channels": 8, "d_layers": 2},
    "optim": {"g_lr": 1e-3, "d_lr": 1e-3},
    "train": {"steps": 200, "batch_size": 8, "ema_decay": 0.0, "threads": 1, "progress": False, "log_every": 10,
              "sample_every": 100, "checkpoint_every": 100, "sample_count": 8},
}


def _config(root: Path, **overrides) -> dict:
    return apply_overrides(TINY, {"data.root": str(root), **overrides})


def test_pix2pix_learns_the_synthetic_translation(synthetic, tmp_path):
    """200 steps: the test L1 falls far below the untrained net's and below copying the input
    or predicting the mean target; samples are input | output | target rows."""
    untrained = ganforge.train(_config(synthetic, **{"train.steps": 1}), out=tmp_path / "untrained")
    run = ganforge.train(_config(synthetic), out=tmp_path / "run")
    before = evaluate_translation(untrained.dir, metrics=[])["l1"]
    after = evaluate_translation(run.dir, metrics=[])
    test = make("paired-folder", root=str(synthetic), split="test")
    identity = mean_l1(test.sources, test.data)
    mean_image = mean_l1(test.data.float().mean(0, keepdim=True).round().expand_as(test.data), test.data)
    assert after["split"] == "test" and after["n_real"] == 16
    assert after["l1"] < 0.35 * before and after["l1"] < 0.5 * min(identity, mean_image), (after, before, identity, mean_image)
    records = run.metrics()
    assert {"d_loss", "g_loss", "g_l1", "g_adv", "d_real", "d_fake"} <= set(records[-1])
    # the run directory: grids of 3 columns (input | output | target) with provenance, comparison.png
    grid = Image.open(run.dir / "samples" / "step-000200.png")
    assert grid.size == (3 * 34 + 2, 8 * 34 + 2)
    assert grid.text["run"] and grid.text["synthetic"] == "true" and grid.text["generator"]
    final = Image.open(run.dir / "comparison.png")
    assert final.size == grid.size and final.text == grid.text
    meta = json.loads((run.dir / "generator" / "config.json").read_text())["meta"]
    assert meta["task"] == "translation" and meta["direction"] == "AtoB" and meta["train_size"] == 32
    assert is_translator(ganforge.load(run.dir))


def test_l1_only_baseline_has_no_discriminator(synthetic, tmp_path):
    cfg = _config(synthetic, **{"train.steps": 10, "recipe_options": {"adversarial": False}})
    run = ganforge.train(cfg, out=tmp_path / "l1")
    state = load_checkpoint(run.dir / "checkpoints" / "latest.pt")
    assert set(state["recipe"]["networks"]) == {"generator"}
    assert "d_loss" not in run.metrics()[-1] and "g_l1" in run.metrics()[-1]


def test_pix2pix_resume_is_bit_identical(synthetic, tmp_path):
    """10 steps + resume to 20 == 20 steps in one go, with crops, flips, dropout and batch norm."""
    extra = {"data.resolution": 40, "data.crop": 32, "data.hflip": True, "train.steps": 20, "train.sample_every": 1000,
             "train.checkpoint_every": 1000, "model.norm": "batch"}
    one_go = ganforge.train(_config(synthetic, **extra), out=tmp_path / "one")
    ganforge.train(_config(synthetic, **{**extra, "train.steps": 10}), out=tmp_path / "split")
    resumed = ganforge.train(resume=tmp_path / "split", overrides={"train.steps": 20})
    a = load_checkpoint(one_go.dir / "checkpoints" / "latest.pt")
    b = load_checkpoint(resumed.dir / "checkpoints" / "latest.pt")
    for net in ("generator", "discriminator"):
        for key, tensor in a["recipe"]["networks"][net].items():
            assert torch.equal(tensor, b["recipe"]["networks"][net][key]), f"{net}.{key} differs"
    ga = load_file(str(one_go.dir / "generator" / "model.safetensors"))
    gb = load_file(str(resumed.dir / "generator" / "model.safetensors"))
    assert all(torch.equal(ga[k], gb[k]) for k in ga)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model.name": "dcgan", "model": {"name": "dcgan"}}, "model 'dcgan' generates from latents"),
        ({"eval.every": 10}, r"eval.every > 0 is not supported by recipe 'pix2pix' yet"),
        ({"data.crop": 20}, "multiples of 32, got 20x20"),
        ({"augment.name": "diffaugment"}, "'augment.name' is not supported by recipe 'pix2pix'"),
        ({"recipe_options": {"lambda_l1": 0, "adversarial": False}}, "lambda_l1 must be >= 0"),
    ],
)
def test_pix2pix_config_mistakes_are_one_line_errors(synthetic, tmp_path, overrides, message):
    overrides = dict(overrides)
    model = overrides.pop("model", None)
    cfg = _config(synthetic, **{k: v for k, v in overrides.items() if k != "model.name"})
    if model is not None:
        cfg["model"] = model
    with pytest.raises(ConfigError, match=message):
        ganforge.Trainer(ganforge.load_config(cfg), tmp_path / "r")


def test_pix2pix_needs_paired_data(tmp_path):
    cfg = load_config(None, {"recipe": "pix2pix", "model.name": "pix2pix"})
    with pytest.raises(ConfigError, match="recipe 'pix2pix' needs paired data"):
        ganforge.Trainer(cfg, tmp_path / "r")


def test_eval_run_dispatches_to_the_test_split(synthetic, tmp_path):
    """``ganforge eval RUN_DIR`` on a pix2pix run: L1 + FID (cifar10 features) on the test pairs."""
    run = ganforge.train(_config(synthetic, **{"train.steps": 2}), out=tmp_path / "run")
    result = ganforge.evaluate_run(run.dir, metrics=["fid"], extractor="cifar10")
    assert set(result) >= {"l1", "fid", "split", "n_real", "n_fake"} and result["n_fake"] == 16
    assert result["extractor"].startswith("cifar10")
    with pytest.raises(UserError, match="image-to-image generator: score it on its test pairs"):
        ganforge.evaluate("cifar10", run.dir, extractor="cifar10", n=16)
    written = evaluate_translation(run.dir, metrics=[], n=4, comparison=tmp_path / "grid.png")
    assert written["n_real"] == 4 and Image.open(tmp_path / "grid.png").size == (3 * 34 + 2, 4 * 34 + 2)


def test_presets_resolve():
    cfg = load_config("pix2pix-facades")
    assert cfg.recipe == "pix2pix" and cfg.data.direction == "BtoA" and cfg.data.crop == 64
    baseline = load_config("pix2pix-facades-l1")
    assert baseline.recipe_options == {"lambda_l1": 100.0, "adversarial": False}
    assert baseline.model == cfg.model and baseline.train == cfg.train and baseline.data == cfg.data

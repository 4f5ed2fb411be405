"""CycleGAN: ResNet generator, image pool, cycle/identity losses, unpaired data, the recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import ganforge
from ganforge import models
from ganforge.config import DataConfig, apply_overrides
from ganforge.data import BatchLoader, create
from ganforge.errors import ConfigError, DataError
from ganforge.losses.paired import cycle_loss, identity_loss
from ganforge.models import is_translator, load_generator, save_generator
from ganforge.training.checkpoint import load_checkpoint
from ganforge.training.cyclegan import cycle_error, load_translators
from ganforge.training.image_pool import ImagePool
from ganforge.validate import load_config

# --------------------------------------------------------------------------- synthetic domains

#: Domain A paints a label map's classes in PALETTE colours, domain B in TARGET ones.
PALETTE = np.array([[0, 0, 160], [230, 40, 40], [250, 220, 30], [40, 200, 90]], np.uint8)
TARGET = np.array([[240, 240, 240], [30, 30, 30], [90, 60, 200], [200, 120, 40]], np.uint8)


def write_pairs(folder: Path, count: int, seed: int, size: int = 32) -> None:
    """Side-by-side PNGs: A (left) a coloured rectangle map, B (right) the same map repainted."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cls = np.zeros((size, size), np.int64)
        for _ in range(rng.integers(3, 7)):
            x0, y0 = rng.integers(0, size - 4, 2)
            w, h = rng.integers(4, size // 2, 2)
            cls[y0 : y0 + h, x0 : x0 + w] = rng.integers(1, 4)
        Image.fromarray(np.concatenate([PALETTE[cls], TARGET[cls]], axis=1)).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train/`` (48) and ``test/`` (16) side-by-side pairs, trained on as unpaired domains."""
    root = tmp_path_factory.mktemp("domains")
    write_pairs(root / "train", 48, seed=0)
    write_pairs(root / "test", 16, seed=1)
    return root


#: A tiny CycleGAN at 32x32 (ResNet generators with 8-32 channels, 1 block; 2-layer PatchGANs).
TINY = {
    "recipe": "cyclegan",
    "recipe_options": {"lambda_cycle": 10.0, "lambda_identity": 0.0, "pool_size": 50},
    "data": {"name": "paired-folder", "unpaired": True},
    "model": {"name": "cyclegan", "base_channels": 8, "n_blocks": 1, "d_base_channels": 8, "d_layers": 2},
    "loss": {"name": "least-squares"},
    "optim": {"g_lr": 2e-3, "d_lr": 2e-3},
    # one thread: on a shared 2-core machine, two threads of such small ops mostly wait for each other
    "train": {"steps": 100, "batch_size": 8, "ema_decay": 0.0, "threads": 1, "progress": False, "log_every": 10,
              "sample_every": 1000, "checkpoint_every": 1000, "sample_count": 4},
}


def _config(root: Path, **overrides) -> dict:
    return apply_overrides(TINY, {"data.root": str(root), **overrides})


# --------------------------------------------------------------------------- networks and losses


def test_resnet_generator_matches_the_reference():
    """resnet_9blocks (11,378,179 parameters) and the 70x70 PatchGAN, instance norm; sides multiple of 4."""
    g, d = models.create_translator("cyclegan", 3, 3)
    assert sum(p.numel() for p in g.parameters()) == 11_378_179
    assert sum(p.numel() for p in d.parameters()) == 2_764_737 and d.condition_channels == 0
    g6, _ = models.create_translator("cyclegan", 3, 3, n_blocks=6)
    assert sum(p.numel() for p in g6.parameters()) == 7_837_699
    assert sum(isinstance(m, torch.nn.ReflectionPad2d) for m in g.modules()) == 2 + 2 * 9
    small, _ = models.create_translator("cyclegan", 1, 3, base_channels=4, n_blocks=2)
    out = small(torch.rand(2, 1, 20, 12) * 2 - 1)
    assert out.shape == (2, 3, 20, 12) and out.abs().max() <= 1
    with pytest.raises(ganforge.UserError, match="multiples of 4"):
        small.translate(torch.zeros(1, 1, 18, 16))
    with pytest.raises(ConfigError, match="n_blocks must be >= 0"):
        models.create_translator("cyclegan", 3, 3, n_blocks=-1)


def test_cycle_and_identity_losses():
    torch.manual_seed(0)
    a = torch.rand(4, 3, 8, 8) * 2 - 1
    forward = lambda x: x.flip(1) * 0.5  # noqa: E731  (an invertible map)
    inverse = lambda y: (y * 2).flip(1)  # noqa: E731
    assert cycle_loss(inverse(forward(a)), a) == 0
    assert torch.isclose(cycle_loss(forward(forward(a)), a), (a.flip(1).flip(1) * 0.25 - a).abs().mean())
    assert identity_loss(a, a) == 0 and torch.isclose(identity_loss(a + 0.5, a), torch.tensor(0.5))


# --------------------------------------------------------------------------- image pool


def test_image_pool_fills_then_mixes_and_stays_bounded():
    pool = ImagePool(5, torch.Generator().manual_seed(0))
    first = torch.arange(4.0).reshape(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool) == 4  # filling: the new images pass through
    values = 100.0 + torch.arange(30.0)
    returned = torch.stack([pool.query(torch.full((4, 1, 1, 1), float(v))).flatten() for v in values])  # [30, 4]
    assert len(pool) == 5 and pool.images is not None and pool.images.shape[0] == 5
    new = returned == values[:, None]
    assert 0.35 < new.float().mean() < 0.65  # about half are the new images ...
    assert (returned[~new] < values[:, None].expand_as(returned)[~new]).all()  # ... the rest stored, older ones
    assert torch.equal(ImagePool(0).query(first), first)  # size 0: no history


def test_image_pool_state_round_trip_is_exact():
    def queries(pool: ImagePool, start: int, stop: int) -> list[torch.Tensor]:
        return [pool.query(torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(i))) for i in range(start, stop)]

    straight_rng = torch.Generator().manual_seed(7)
    straight = queries(ImagePool(6, straight_rng), 0, 12)
    first_rng = torch.Generator().manual_seed(7)
    first = ImagePool(6, first_rng)
    queries(first, 0, 5)
    state, rng_state = first.state_dict(), first_rng.get_state()
    resumed_rng = torch.Generator()
    resumed_rng.set_state(rng_state)
    resumed = ImagePool(6, resumed_rng)
    resumed.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(queries(resumed, 5, 12), straight[5:]))
    with pytest.raises(ValueError, match="holds up to 6 images"):
        ImagePool(3).load_state_dict(state)


# --------------------------------------------------------------------------- unpaired view of paired data


def test_paired_folder_read_as_unpaired_domains(synthetic):
    paired = create(DataConfig(name="paired-folder", root=str(synthetic)))
    unpaired = create(DataConfig(name="paired-folder", root=str(synthetic), unpaired=True))
    assert paired.paired and not unpaired.paired
    assert torch.equal(paired.data, unpaired.data) and torch.equal(paired.sources, unpaired.sources)
    batch = next(BatchLoader(unpaired, 8, seed=0))
    a_index = [int((unpaired.to_model(unpaired.sources) - s).abs().flatten(1).sum(1).argmin()) for s in batch["source"]]
    b_index = [int((unpaired.to_model(unpaired.data) - s).abs().flatten(1).sum(1).argmin()) for s in batch["image"]]
    assert a_index != b_index  # the two sides are shuffled independently
    with pytest.raises(DataError, match="data.unpaired applies to image-to-image data sets"):
        create(DataConfig(name="digits", unpaired=True))


# --------------------------------------------------------------------------- the recipe


def test_cyclegan_cycle_error_falls_on_held_out_images(synthetic, tmp_path):
    """100 steps: the held-out cycle error |F(G(a)) - a| falls below half of the untrained nets'."""
    cfg = _config(synthetic)
    test = create(DataConfig(name="paired-folder", root=str(synthetic), split="test"))
    a, b = test.to_model(test.sources), test.to_model(test.data)
    untrained = ganforge.Trainer(ganforge.load_config(cfg), tmp_path / "untrained").recipe.networks
    before = cycle_error(untrained["generator"], untrained["generator_ba"], a)
    run = ganforge.train(cfg, out=tmp_path / "run")
    g_ab, g_ba = load_translators(run.dir)
    after_a, after_b = cycle_error(g_ab, g_ba, a), cycle_error(g_ba, g_ab, b)
    assert after_a < 0.5 * before and after_b < 0.5 * before, (before, after_a, after_b)
    records = run.metrics()
    assert {"d_loss", "g_loss", "cycle", "cycle_a", "cycle_b", "g_adv_a", "g_adv_b", "d_real", "d_fake"} <= set(records[-1])
    assert records[-1]["cycle"] < 0.5 * records[0]["cycle"]
    # samples: a | G(a) | F(G(a)) | b | F(b); the exported generator is G_AB
    grid = Image.open(run.dir / "comparison.png")
    assert grid.size == (5 * 34 + 2, 4 * 34 + 2)
    exported = ganforge.load(run.dir)
    assert is_translator(exported) and torch.equal(exported.translate(a[:2]), g_ab.translate(a[:2]))
    assert exported.meta["task"] == "translation" and exported.meta["recipe"] == "cyclegan"
    # scored on the test pairs (trained unpaired): G_AB's outputs against the true B images
    result = ganforge.evaluate_run(run.dir, metrics=[])
    assert result["n_real"] == 16 and 0 < result["l1"] < 1


def test_cyclegan_resume_is_bit_identical(synthetic, tmp_path):
    """6 steps + resume to 12 == 12 in one go: four networks, both pools, identity loss, crops and flips."""
    extra = {"data.resolution": 36, "data.crop": 32, "data.hflip": True, "train.steps": 12, "train.batch_size": 4,
             "recipe_options": {"lambda_identity": 0.5, "pool_size": 6}}
    one_go = ganforge.train(_config(synthetic, **extra), out=tmp_path / "one")
    ganforge.train(_config(synthetic, **{**extra, "train.steps": 6}), out=tmp_path / "split")
    resumed = ganforge.train(resume=tmp_path / "split", overrides={"train.steps": 12})
    a = load_checkpoint(one_go.dir / "checkpoints" / "latest.pt")
    b = load_checkpoint(resumed.dir / "checkpoints" / "latest.pt")
    assert set(a["recipe"]["networks"]) == {"generator", "generator_ba", "discriminator_a", "discriminator_b"}
    for net, tensors in a["recipe"]["networks"].items():
        for key, tensor in tensors.items():
            assert torch.equal(tensor, b["recipe"]["networks"][net][key]), f"{net}.{key} differs"
    for side in ("a", "b"):
        pool_a, pool_b = a["recipe"]["extra"]["pools"][side], b["recipe"]["extra"]["pools"][side]
        assert len(pool_a["images"]) == 6 and torch.equal(pool_a["images"], pool_b["images"])
    assert "identity" in one_go.metrics()[-1]
    ga = load_file(str(one_go.dir / "generator" / "model.safetensors"))
    gb = load_file(str(resumed.dir / "generator" / "model.safetensors"))
    assert all(torch.equal(ga[k], gb[k]) for k in ga)


def test_exported_generator_save_and_load(tmp_path):
    torch.manual_seed(0)
    g, _ = models.create_translator("cyclegan", 3, 1, base_channels=4, n_blocks=2, norm="batch", dropout=0.5)
    g.eval()
    save_generator(g, tmp_path / "gen", {"task": "translation"})
    loaded = load_generator(tmp_path / "gen")
    assert type(loaded).__name__ == "ResnetGenerator" and (loaded.in_channels, loaded.out_channels) == (3, 1)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(loaded.translate(x), g.translate(x))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"data.unpaired": False}, "recipe 'cyclegan' needs unpaired data"),
        ({"recipe_options": {"lambda_cycle": -1}}, "must be >= 0"),
        ({"train.n_critic": 2}, "train.n_critic must be 1"),
        ({"data.crop": 30}, "multiples of 4, got 30x30"),
        ({"model": {"name": "pix2pix"}}, "needs training images whose sides are multiples of 256"),
    ],
)
def test_cyclegan_config_mistakes_are_one_line_errors(synthetic, tmp_path, overrides, message):
    cfg = _config(synthetic, **{k: v for k, v in overrides.items() if k != "model"})
    if "model" in overrides:
        cfg["model"] = overrides["model"]
    with pytest.raises(ConfigError, match=message):
        ganforge.Trainer(ganforge.load_config(cfg), tmp_path / "r")


def test_identity_loss_needs_equal_channels(tmp_path):
    """Grey label maps -> RGB photos (unpaired-folders keep each side's channels): identity must be off."""
    rng = np.random.default_rng(0)
    for side, mode in (("A", "L"), ("B", "RGB")):
        (tmp_path / f"train{side}").mkdir()
        for i in range(4):
            pixels = rng.integers(0, 256, (8, 8, 3 if mode == "RGB" else 1), dtype=np.uint8).squeeze()
            Image.fromarray(pixels, mode).save(tmp_path / f"train{side}" / f"{i}.png")
    cfg = _config(tmp_path, **{"data.name": "unpaired-folders", "data.unpaired": False, "train.batch_size": 2,
                               "recipe_options": {"lambda_identity": 0.5}})
    cfg["model"].update(d_layers=1)
    with pytest.raises(ConfigError, match="identity loss needs domains with the same channels"):
        ganforge.Trainer(ganforge.load_config(cfg), tmp_path / "r")
    cfg["recipe_options"]["lambda_identity"] = 0.0
    recipe = ganforge.Trainer(ganforge.load_config(cfg), tmp_path / "ok").recipe
    assert recipe.networks["generator"].in_channels == 1 and recipe.networks["generator_ba"].in_channels == 3


def test_preset_resolves():
    cfg = load_config("cyclegan-facades")
    assert cfg.recipe == "cyclegan" and cfg.model.name == "cyclegan" and cfg.data.unpaired
    assert cfg.loss.name == "least-squares" and cfg.optim.lr_schedule == "linear" and cfg.optim.decay_start == 0.5
    assert cfg.recipe_options["lambda_cycle"] == 10.0 and cfg.recipe_options["lambda_identity"] == 0.5

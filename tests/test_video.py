"""Video: the moving-digits truth, video folders, the files a person watches, MoCoGAN's latents, the motion metrics.

The outputs run is the session's ``tiny_video_run``: a conditional MoCoGAN on moving digits at
16x16, 8 frames, 20 steps. What it learned does not matter here; the files around it do.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.config import DataConfig
from ganforge.data import create as create_dataset
from ganforge.data.video import DIRECTIONS, digit_sprites
from ganforge.errors import ConfigError, DataError
from ganforge.evaluation import evaluate
from ganforge.metrics.video import centres_of_mass, digit_crops, identity_consistency, motion_stats
from ganforge.models import MODELS, check_options
from ganforge.video import read_gif, read_provenance, write_gif, write_mp4


def moving_digits(**options) -> ganforge.data.Dataset:
    return create_dataset(DataConfig(name="moving-digits", **options))


@pytest.fixture(scope="module")
def test_clips():
    return moving_digits(split="test")


# --------------------------------------------------------------------------- moving-digits


def test_moving_digits_are_deterministic_and_their_truth_matches_the_frames(test_clips):
    again = moving_digits(split="test")
    assert torch.equal(test_clips.data, again.data) and torch.equal(test_clips.labels, again.labels)
    assert test_clips.data.shape == (1000, 16, 1, 32, 32) and test_clips.modality == "video"
    centres = test_clips.info["centres"][:, :, 0]  # [N, T, 2] recorded centres of the one digit
    measured = centres_of_mass(test_clips.data)
    assert (measured - centres).norm(dim=-1).median() < 1.0  # the digit is where the generator of the data says
    # the first move goes the recorded way (no wall is hit on it)
    step = centres[:, 1] - centres[:, 0]
    heading = torch.round(torch.atan2(-step[:, 1], step[:, 0]) / (math.pi / 4)).long() % len(DIRECTIONS)
    assert torch.equal(heading, test_clips.info["directions"][:, 0])
    assert torch.equal(test_clips.labels, test_clips.info["digits"][:, 0])
    assert sorted(set(test_clips.labels.tolist())) == list(range(10))


def test_digits_bounce_and_never_leave_the_frame(test_clips):
    mass = test_clips.data.float().sum(dim=(2, 3, 4))  # [N, T]: one whole digit in every frame
    assert torch.allclose(mass, mass[:, :1].expand_as(mass))
    speed = motion_stats(test_clips.info["centres"][:, :, 0])["speed"]
    assert 1.0 < speed < 2.5  # 16 px of room / 8 a frame, rounded to pixels
    reversed_x = (torch.sign(test_clips.info["centres"][:, 1:, 0, 0].diff(dim=1)) * -1 ==
                  torch.sign(test_clips.info["centres"][:, 1:-1, 0, 0] - test_clips.info["centres"][:, :-2, 0, 0]))
    assert reversed_x.any()  # some digits bounce


def test_test_clips_show_digit_images_the_training_clips_never_show():
    train, _ = digit_sprites("train", 16, None)
    test, _ = digit_sprites("test", 16, None)
    assert len(train) + len(test) == 1797
    assert not any(torch.equal(test[0], image) for image in train)


def test_options_shape_the_clips():
    two = create_dataset(DataConfig(name="moving-digits", split="test", resolution=64, frames=8, num_digits=2, channels=3))
    assert two.data.shape == (1000, 8, 3, 64, 64)
    assert two.info["digits"].shape == (1000, 2) and two.info["centres"].shape == (1000, 8, 2, 2)


@pytest.mark.parametrize("options, error, message", [
    ({"resolution": 20}, DataError, "multiple of 8"),
    ({"split": "all"}, DataError, "no split 'all'"),
    ({"channels": 2}, ConfigError, "channels"),
])
def test_bad_moving_digits_options_are_one_line_errors(options, error, message):
    with pytest.raises((error, DataError, ConfigError)) as info:
        create_dataset(DataConfig(name="moving-digits", **options))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_video_options_are_refused_on_image_data():
    with pytest.raises(DataError, match="data.frames applies to video data sets"):
        create_dataset(DataConfig(name="digits", frames=8))


# --------------------------------------------------------------------------- video-folder


def _clip(seed: int, frames: int = 10, side: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (frames, side, side, 3), dtype=np.uint8)


def test_a_video_folder_reads_labelled_clips_and_skips_a_corrupt_one(tmp_path):
    for label in ("jump", "walk"):
        for i in range(2):
            write_gif(tmp_path / label / f"{i}.gif", _clip(i + 10 * len(label)))
    write_mp4(tmp_path / "walk" / "2.mp4", _clip(7))
    (tmp_path / "jump" / "bad.gif").write_bytes(b"GIF89a not really")
    with pytest.warns(UserWarning, match="bad.gif"):
        data = create_dataset(DataConfig(name="video-folder", root=str(tmp_path), resolution=16, frames=4, frame_stride=2))
    assert data.data.shape == (5, 4, 3, 16, 16) and data.data.dtype == torch.uint8
    assert data.class_names == ["jump", "walk"] and data.labels.tolist() == [0, 0, 1, 1, 1]
    assert data.info["skipped"] == 1


def test_an_empty_video_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="no clips") as info:
        create_dataset(DataConfig(name="video-folder", root=str(tmp_path)))
    assert "\n" not in str(info.value)
    (tmp_path / "x.gif").write_bytes(b"broken")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="none of the 1 clips"):
        create_dataset(DataConfig(name="video-folder", root=str(tmp_path)))


# --------------------------------------------------------------------------- files a person watches


@pytest.fixture(scope="module")
def run(tiny_video_run) -> Path:
    return tiny_video_run.dir


def sample(run: Path, out: Path | str, *args: str) -> None:
    assert main(["sample", str(run), *args, "--out", str(out)]) == 0


def test_one_gif_per_clip_deterministic_with_provenance(run, tmp_path):
    for out, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        sample(run, f"{tmp_path / out}/", "--n", "3", "--seed", seed)
    names = ["000.gif", "001.gif", "002.gif", "frames.png"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "000.gif").read_bytes() != (tmp_path / "c" / "000.gif").read_bytes()
    generator = ganforge.load(run)
    fields = read_provenance(tmp_path / "a" / "001.gif")
    assert fields["synthetic"] == "true" and fields["generator"] == generator.meta["weights_id"]
    assert fields["seed"] == "3" and fields["index"] == "1"
    frames = read_gif(tmp_path / "a" / "000.gif")
    assert frames.shape[1:] == (16, 16, 3) and 1 <= len(frames) <= 8


def test_a_grid_gif_an_mp4_and_raw_frames(run, tmp_path):
    generator = ganforge.load(run)
    sample(run, tmp_path / "grid.gif", "--n", "4", "--seed", "1", "--label", "7")
    assert read_provenance(tmp_path / "grid.gif")["label"] == "7"
    with Image.open(tmp_path / "grid.gif") as im:
        assert im.n_frames >= 2 and im.info["loop"] == 0
    sample(run, tmp_path / "raw.npy", "--n", "4", "--seed", "1", "--label", "7")
    raw = np.load(tmp_path / "raw.npy")
    expected = generator.sample(4, seed=1, labels=7)
    assert raw.shape == (4, 8, 1, 16, 16) and np.allclose(raw, expected.numpy())
    sample(run, tmp_path / "grid.mp4", "--n", "4", "--seed", "1")
    assert (tmp_path / "grid.mp4").stat().st_size > 0 and read_provenance(tmp_path / "grid.mp4")["synthetic"] == "true"
    sample(run, tmp_path / "strip.png", "--n", "4", "--seed", "1")
    assert Image.open(tmp_path / "strip.png").text["synthetic"] == "true"


def test_the_trainer_previews_clips_as_pictures_and_gifs(run):
    samples = Path(run) / "samples"
    assert (samples / "step-000020.png").is_file() and (samples / "step-000020.gif").is_file()
    assert read_provenance(samples / "step-000020.gif")["synthetic"] == "true"


# --------------------------------------------------------------------------- MoCoGAN


def test_mocogan_latents_hold_the_content_then_the_motion():
    torch.manual_seed(0)
    generator, discriminator = MODELS.get("mocogan")((8, 1, 16, 16), 0, base_channels=8, content_dim=6, motion_dim=4, noise_dim=3)
    generator.eval()
    assert generator.latent_dim == 6 + 8 * 3
    z = torch.randn(2, generator.latent_dim)
    content, noise = generator.split_latent(z)
    assert content.shape == (2, 6) and noise.shape == (2, 8, 3)
    later = z.clone()
    later[:, 6 + 4 * 3 :] += 1.0  # new motion noise from frame 5 on: the first 4 frames stay
    a, b = generator(z), generator(later)
    assert torch.equal(a[:, :4], b[:, :4]) and not torch.allclose(a[:, 4:], b[:, 4:])
    discriminator.eval()
    clips = torch.rand(3, 8, 1, 16, 16) * 2 - 1
    logits = discriminator(clips)
    assert logits.shape == (6,)  # video logits, then image logits
    changed = clips.clone()
    changed[0, 5] = -1.0  # clip 0's image logit reads frame 0 (i mod T), its video logit every frame
    again = discriminator(changed)
    assert again[3] == logits[3] and again[0] != logits[0]


def test_mocogan_image_d_can_judge_several_frames_per_clip_at_the_same_weight():
    torch.manual_seed(0)
    _, discriminator = MODELS.get("mocogan")((8, 1, 16, 16), 0, base_channels=8, content_dim=6, motion_dim=4, noise_dim=3,
                                            image_frames=4)
    discriminator.eval()
    assert discriminator.judgements == 8
    clips = torch.rand(3, 8, 1, 16, 16) * 2 - 1
    logits = discriminator(clips)
    assert logits.shape == (24,)  # 4 copies of the 3 video logits, then 4 frames of each clip
    assert torch.equal(logits[:3], logits[3:6]) and torch.equal(logits[:3], logits[9:12])
    frames = torch.stack([clips[i, (i + 2 * j) % 8] for j in range(4) for i in range(3)])  # offsets 0, T/4, 2T/4, 3T/4
    assert torch.allclose(logits[12:], discriminator.image(frames), atol=1e-6)
    with pytest.raises(ConfigError, match="image_frames"):
        MODELS.get("mocogan")((8, 1, 16, 16), 0, image_frames=9)


def test_mocogan_instance_noise_blurs_what_d_reads_in_training_only():
    torch.manual_seed(0)
    _, discriminator = MODELS.get("mocogan")((8, 1, 16, 16), 0, base_channels=8, content_dim=6, motion_dim=4, noise_dim=3,
                                            d_noise=0.1)
    clips = torch.rand(3, 8, 1, 16, 16) * 2 - 1
    discriminator.eval()  # also freezes batch norm, so only the noise can differ between calls
    assert torch.equal(discriminator(clips), discriminator(clips))
    for module in discriminator.modules():
        module.training = not isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
    torch.manual_seed(1)
    first = discriminator(clips)
    torch.manual_seed(1)
    assert torch.equal(first, discriminator(clips))  # drawn from the (checkpointed) torch stream: resumes exactly
    assert not torch.equal(first, discriminator(clips))
    with pytest.raises(ConfigError, match="d_noise"):
        check_options("mocogan", {"d_noise": -0.1})  # its declared range, checked once with the config


def test_mocogan_translate_moves_one_sprite_so_every_frame_shows_the_same_content():
    torch.manual_seed(0)
    generator, _ = MODELS.get("mocogan")((8, 1, 32, 32), 0, base_channels=8, content_dim=6, motion_dim=4, noise_dim=3,
                                         motion="translate")
    generator.eval()
    z = torch.randn(3, generator.latent_dim)
    clips = generator(z)
    sprites = generator.frame(z[:, :6])  # [3, 1, 16, 16]: drawn once per clip
    assert clips.shape == (3, 8, 1, 32, 32) and sprites.shape == (3, 1, 16, 16)
    ink = (clips + 1).sum(dim=(2, 3, 4))  # bilinear resampling keeps a sprite's total ink wherever it lies inside
    assert torch.allclose(ink, (sprites + 1).sum(dim=(1, 2, 3))[:, None].expand(-1, 8), rtol=1e-3)
    with torch.no_grad():  # a position far off saturates the tanh: the sprite sits in the corner, pixel for pixel
        generator.place.weight.zero_()
        generator.place.bias.fill_(50.0)
    corner = generator(z)
    assert torch.allclose(corner[:, :, :, 16:, 16:], sprites[:, None].expand(-1, 8, -1, -1, -1), atol=1e-5)
    assert torch.equal(corner[:, :, :, :16], torch.full_like(corner[:, :, :, :16], -1.0))
    moved = z.clone()
    moved[:, 6:] += 1.0  # new motion noise, same content: the same sprite, elsewhere
    with torch.no_grad():
        generator.place.bias.zero_()
        generator.place.weight.normal_()
    a, b = generator(z), generator(moved)
    assert not torch.allclose(a, b) and torch.allclose((a + 1).sum(dim=(2, 3, 4)), (b + 1).sum(dim=(2, 3, 4)), rtol=1e-3)
    for bad, message in (({"sprite_size": 32}, "sprite_size"), ({"sprite_size": 12}, "power-of-two"),
                         ({"motion": "warp"}, "model.motion")):
        with pytest.raises(ConfigError, match=message):
            MODELS.get("mocogan")((8, 1, 32, 32), 0, **{"motion": "translate", **bad})
    with pytest.raises(ConfigError, match="only apply"):
        MODELS.get("mocogan")((8, 1, 32, 32), 0, sprite_size=8)


def test_mocogan_infogan_codes_pick_the_sprite_and_q_reads_them_off_the_clip(tmp_path):
    torch.manual_seed(0)
    options = {"base_channels": 8, "content_dim": 8, "motion_dim": 4, "noise_dim": 3, "motion": "translate",
               "num_categorical": 3, "num_continuous": 1, "q_hidden": 8, "image_frames": 2}
    generator, discriminator = MODELS.get("mocogan")((8, 1, 32, 32), 0, **options)
    generator.eval()
    z = torch.randn(6, generator.latent_dim)
    noise, category, continuous = generator.codes(z)
    assert noise.shape == (6, 4) and torch.equal(category, z[:, 4:7].argmax(dim=1))  # the content's last entries
    assert torch.allclose(continuous, torch.erf(z[:, 7:8] / math.sqrt(2)))
    picked = z.clone()
    picked[:, 4:7] = torch.tensor([5.0, 0.0, 0.0])  # the same category for all: only the code's argmax matters
    same = picked.clone()
    same[:, 4:7] = torch.tensor([9.0, -1.0, 2.0])
    assert torch.allclose(generator(picked), generator(same))
    logits, heads = discriminator.forward_aux(generator(z).detach())
    assert logits.shape == (24,) and heads["cat_logits"].shape == (6, 3) and heads["cont_mean"].shape == (6, 1)
    assert torch.equal(discriminator(generator(z).detach()), logits)  # forward = forward_aux's logits
    run = ganforge.train("mocogan-moving-digits", out=tmp_path / "run", overrides={
        **{f"model.{k}": v for k, v in options.items()}, "recipe": "infogan", "data.resolution": 16, "data.frames": 8,
        "model.video_base_channels": 4, "train.batch_size": 8, "train.steps": 2, "train.progress": False,
        "train.threads": 1, "train.sample_every": 2, "train.checkpoint_every": 2, "eval.every": 0})
    logged = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert "q_acc" in logged[-1] and "info_cat" in logged[-1]
    with pytest.raises(ConfigError, match="only apply to model.motion=translate"):
        MODELS.get("mocogan")((8, 1, 32, 32), 0, num_categorical=3)
    with pytest.raises(ConfigError, match="must fit in model.content_dim"):
        MODELS.get("mocogan")((8, 1, 32, 32), 0, motion="translate", content_dim=4, num_categorical=5)


def test_video_runs_train_their_2d_convolutions_channels_last(tmp_path):
    from ganforge.training.trainer import Trainer
    from ganforge.validate import load_config
    from tiny_configs import TINY_RUNS

    recipe = Trainer(load_config(*TINY_RUNS["cmocogan"]), tmp_path / "run").recipe
    weights = {name: p for name, p in recipe.discriminator.named_parameters()}
    frame_conv = next(p for p in weights.values() if p.dim() == 4 and p.shape[1] > 1)  # one input channel: both layouts
    video_conv = next(p for p in weights.values() if p.dim() == 5)
    assert frame_conv.is_contiguous(memory_format=torch.channels_last) and not frame_conv.is_contiguous()
    assert video_conv.is_contiguous()  # 3-D convolutions keep their layout
    clips = torch.zeros(2, *recipe.generator.output_shape)
    assert recipe.formatted(clips) is clips and recipe.formatted(clips[:, 0]).is_contiguous(memory_format=torch.channels_last)


# --------------------------------------------------------------------------- metrics


def test_digit_crops_centre_the_digit(test_clips):
    crops = digit_crops(test_clips.data[:20], 16)
    assert crops.shape == (320, 1, 16, 16)
    kept = crops.float().sum(dim=(1, 2, 3)) / test_clips.data[:20].float().sum(dim=(2, 3, 4)).flatten()
    # the digit is (nearly) whole inside its crop: the centre of mass of an asymmetric digit such as
    # a 7 is off its box's centre by a pixel or two
    assert kept.mean() > 0.98 and kept.min() > 0.85


def test_motion_sees_shuffled_frames_and_identity_reads_real_clips_as_one_digit(test_clips, tmp_path):
    shuffled = test_clips.data[:, torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    real = moving_digits(split="train").data[:1000]
    normal = evaluate(real, test_clips.data, metrics=["motion", "identity", "frame-fid"], n=1000)
    broken = evaluate(real, shuffled, metrics=["motion", "identity", "frame-fid"], n=1000)
    assert normal["motion_acceleration"] < 1.5 * normal["motion_acceleration_real"]
    assert broken["motion_acceleration"] > 4 * normal["motion_acceleration"]
    assert abs(broken["frame_fid"] - normal["frame_fid"]) < 1e-6  # the same frames, in another order
    assert normal["identity_consistency"] >= 0.95 and normal["confident_frames"] >= 0.85
    predictions = torch.tensor([[1, 1, 1], [1, 2, 1]])
    assert identity_consistency(predictions) == 0.5


def test_interpolate_walks_the_content_with_the_motion_fixed_and_the_other_way(run, tmp_path, tiny_dcgan_run, capsys):
    generator = ganforge.load(run)
    parts = generator.latent_parts
    for part in ("content", "motion"):
        out = tmp_path / f"{part}.npy"
        assert main(["interpolate", str(run), "--seeds", "1", "2", "--frames", "3", "--walk", part, "--out", str(out)]) == 0
        assert "wrote 4 clips" in capsys.readouterr().out
    content, motion = np.load(tmp_path / "content.npy"), np.load(tmp_path / "motion.npy")
    assert content.shape == (4, 8, 1, 16, 16) and not np.allclose(content[0], content[-1])
    # each walk starts at seed 1's clip; its end keeps seed 1's other part, so it is neither seed's clip
    seed1, seed2 = generator.sample(1, seed=1, labels=0)[0].numpy(), generator.sample(1, seed=2, labels=0)[0].numpy()
    assert np.allclose(content[0], seed1, atol=1e-5) and np.allclose(motion[0], seed1, atol=1e-5)
    assert not np.allclose(content[-1], seed2, atol=1e-3) and not np.allclose(motion[-1], seed2, atol=1e-3)
    # motion alone changes only what the GRU drives: the first frame's content code stays, so a content
    # walk changes the first frame more than a motion walk does
    assert np.abs(content[-1, 0] - seed1[0]).mean() > np.abs(motion[-1, 0] - seed1[0]).mean()
    assert parts["content"].stop == parts["motion"].start
    assert main(["interpolate", str(run), "--seeds", "1", "2", "--frames", "2", "--out", str(tmp_path / "walk.gif")]) == 0
    assert read_provenance(tmp_path / "walk.gif")["seed"] == "1->2"
    code = main(["interpolate", str(tiny_dcgan_run.dir), "--seeds", "1", "2", "--walk", "content", "--out",
                 str(tmp_path / "d.gif")])
    assert code != 0 and "latent has no named parts" in capsys.readouterr().err


def test_the_report_shows_the_clips_playing_over_training(run, run_copy):
    from ganforge.report import build_report

    html = build_report(run_copy(run))
    assert html.count('<img src="data:image/gif;base64,') == 2  # the clips of steps 10 and 20, playing by themselves
    assert html.count('<img src="data:image/png;base64,') >= 2 and "<img controls" not in html

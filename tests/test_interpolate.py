"""``ganforge interpolate`` (GIF, MP4, PNG frames) and the latent-walk maths of ``ganforge.sampling``."""

import json
import math
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import models
from ganforge.cli import main
from ganforge.core import to_uint8
from ganforge.errors import UserError
from ganforge.interpolation import frame_seed, render_walk
from ganforge.models.base import truncated_normal
from ganforge.safeguards import watermark
from ganforge.sampling import latent_walk, lerp, slerp


@pytest.fixture(scope="module")
def run_dir(tiny_cdcgan_run):
    return tiny_cdcgan_run.dir


@pytest.fixture(scope="module")
def generator(run_dir):
    return ganforge.load(run_dir)


def _expected(generator, seed, label):
    return to_uint8(generator.sample(1, seed=seed, labels=label))[0, 0].numpy()


def _written(generator, seed, label, factor):
    """What a PNG writer makes of a sample: enlarged ``factor`` times, then watermarked (default key)."""
    enlarged = np.kron(_expected(generator, seed, label), np.ones((factor, factor), np.uint8))
    return watermark.embed(enlarged, watermark.payload(watermark.DEFAULT_KEY, generator.meta["weights_id"]))


def _one_error(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err
    return err


# --------------------------------------------------------------------------- sampling maths


def test_lerp_and_slerp_endpoints_and_midpoint():
    rng = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(64, generator=rng), torch.randn(64, generator=rng)
    t = torch.tensor([0.0, 0.5, 1.0])
    for step in (lerp, slerp):
        path = step(z0, z1, t)
        assert path.shape == (3, 64)
        assert torch.allclose(path[0], z0, atol=1e-6) and torch.allclose(path[2], z1, atol=1e-5)
    assert torch.allclose(lerp(z0, z1, t)[1], (z0 + z1) / 2)
    # parallel latents: the arc is the line
    assert torch.allclose(slerp(z0, 2 * z0, t), lerp(z0, 2 * z0, t))


def test_slerp_stays_on_the_shell_and_lerp_cuts_through():
    rng = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(512, generator=rng), torch.randn(512, generator=rng)
    z1 = z1 * (z0.norm() / z1.norm())  # equal norms
    t = torch.linspace(0, 1, 33)
    norms = slerp(z0, z1, t).norm(dim=1)
    assert torch.allclose(norms, z0.norm().expand(33), rtol=1e-4)
    # two independent 512-d Gaussians are ~orthogonal: the chord's midpoint has ~1/sqrt(2) of the norm
    assert lerp(z0, z1, t)[16].norm() / z0.norm() == pytest.approx(1 / math.sqrt(2), abs=0.08)


def test_latent_walk_passes_through_the_seed_latents():
    z = latent_walk(16, [3, 7, 11], frames=5)
    assert z.shape == (2 * 5 + 1, 16)
    for index, seed in ((0, 3), (5, 7), (10, 11)):
        expected = truncated_normal((1, 16), None, torch.Generator().manual_seed(seed))[0]
        assert torch.equal(z[index], expected)
    norms = z.norm(dim=1)  # slerp: no dip between endpoints of similar norm
    assert norms.min() >= 0.9 * min(norms[0], norms[5], norms[10])
    linear = latent_walk(16, [3, 7], frames=4, mode="linear")
    a, b = linear[0], linear[4]
    assert torch.allclose(linear[2], (a + b) / 2, atol=1e-6)
    truncated = latent_walk(16, [3, 7], frames=4, truncation=0.5)
    assert truncated[[0, -1]].abs().max() <= 0.5


@pytest.mark.parametrize(
    "seeds, frames, mode, message",
    [
        ([1], 4, "slerp", "at least two seeds"),
        ([1, 2], 0, "slerp", "frames must be >= 1"),
        ([1, 2], 4, "cubic", "unknown interpolation"),
    ],
)
def test_latent_walk_rejects_bad_input(seeds, frames, mode, message):
    with pytest.raises(UserError, match=message):
        latent_walk(8, seeds, frames, mode)


def test_frame_seeds():
    assert [frame_seed([3, 7, 11], 4, i) for i in (0, 1, 4, 8)] == ["3->7@0", "3->7@0.25", "7->11@0", "7->11@1"]


# --------------------------------------------------------------------------- rendering and files


def test_gif_has_all_frames_and_the_seed_samples_at_the_ends(run_dir, generator, tmp_path, capsys):
    out = tmp_path / "walk.gif"
    assert main(["interpolate", str(run_dir), "--seeds", "3", "7", "11", "--frames", "4", "--label", "2", "--out", str(out)]) == 0
    assert "wrote 9 frames" in capsys.readouterr().out
    gif = Image.open(out)
    assert gif.n_frames == 2 * 4 + 1 and gif.size == (256, 256)  # 16 px enlarged x16
    comment = json.loads(gif.info["comment"])
    assert comment["seed"] == "3->7->11" and comment["label"] == "2" and comment["synthetic"] == "true"
    assert comment["generator"] == generator.meta["weights_id"]
    gif.seek(0)
    assert watermark.read(np.asarray(gif.convert("L"))).intact and comment["watermark"] == watermark.METHOD
    assert np.array_equal(np.asarray(gif.convert("L")), _written(generator, 3, 2, 16))  # grey GIF frames are exact
    gif.seek(4)
    assert np.array_equal(np.asarray(gif.convert("L")), _written(generator, 7, 2, 16))
    gif.seek(gif.n_frames - 1)
    assert np.array_equal(np.asarray(gif.convert("L")), _written(generator, 11, 2, 16))
    last = np.asarray(gif.convert("L"))
    gif.seek(1)
    assert not np.array_equal(np.asarray(gif.convert("L")), last)  # the frames move


@pytest.mark.parametrize("target", ["frames/", "strip/walk.png"])
def test_png_frames_carry_provenance(run_dir, generator, tmp_path, target):
    out = tmp_path / target
    assert main(["interpolate", str(run_dir), "--seeds", "5", "9", "--frames", "4", "--mode", "linear",
                 "--size", "32", "--out", str(out) + ("/" if target.endswith("/") else "")]) == 0
    stem = "frame" if target.endswith("/") else "walk"
    files = sorted((tmp_path / target.split("/")[0]).glob(f"{stem}-*.png"))
    assert [f.name for f in files] == [f"{stem}-{i:04d}.png" for i in range(5)]
    texts = [Image.open(f).text for f in files]
    assert [t["seed"] for t in texts] == ["5->9@0", "5->9@0.25", "5->9@0.5", "5->9@0.75", "5->9@1"]
    assert all(t["interpolation"] == "linear" and t["synthetic"] == "true" and t["label"] == "0" for t in texts)
    assert texts[2]["frame"] == "2/4" and texts[0]["generator"] == generator.meta["weights_id"]
    assert Image.open(files[0]).size == (32, 32)
    assert np.array_equal(np.asarray(Image.open(files[0]).convert("L")), _written(generator, 5, 0, 2))
    assert np.array_equal(np.asarray(Image.open(files[-1]).convert("L")), _written(generator, 9, 0, 2))


def test_stylegan_walk_truncates_in_w_like_sample():
    torch.manual_seed(0)
    options = {"base_channels": 4, "max_channels": 8, "latent_dim": 8, "w_dim": 8, "mapping_layers": 1}
    generator, _ = models.create("stylegan", (1, 8, 8), 0, **options)
    with torch.no_grad():
        generator.mapping.w_avg.normal_()
    walk = render_walk(generator.eval(), [2, 4], frames=3, truncation=0.5)
    assert torch.allclose(walk.images[0], generator.sample(1, seed=2, truncation=0.5)[0], atol=1e-6)
    assert torch.allclose(walk.images[-1], generator.sample(1, seed=4, truncation=0.5)[0], atol=1e-6)
    assert generator.truncation_psi == 1.0  # restored
    assert walk.provenance[1]["truncation"] == "0.5"


def test_walk_from_an_exported_file_matches_the_run(run_dir, generator, tmp_path, capsys):
    from ganforge.export import load_exported

    out = tmp_path / "g.pt"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    a = render_walk(load_exported(out), [3, 8], frames=3, label=4)
    b = render_walk(generator, [3, 8], frames=3, label=4)
    assert (a.images - b.images).abs().max() <= 1e-4 and a.provenance == b.provenance
    assert main(["interpolate", str(out), "--seeds", "3", "8", "--frames", "3", "--out", str(tmp_path / "w.gif")]) == 0
    assert Image.open(tmp_path / "w.gif").n_frames == 4


def test_mp4(run_dir, tmp_path):
    imageio = pytest.importorskip("imageio.v2")
    pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "walk.mp4"
    assert main(["interpolate", str(run_dir), "--seeds", "1", "2", "--frames", "5", "--fps", "10", "--out", str(out)]) == 0
    reader = imageio.get_reader(str(out), format="FFMPEG")
    try:
        frames = list(reader.iter_data())
        assert reader.get_meta_data()["fps"] == 10
    finally:
        reader.close()
    assert len(frames) == 6 and frames[0].shape == (256, 256, 3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "1"], "give at least two seeds"),
        (["--seeds", "1", "2", "--mode", "cubic"], "unknown interpolation 'cubic'"),
        (["--seeds", "1", "2", "--frames", "0"], "frames must be >= 1"),
        (["--seeds", "1", "2", "--fps", "0"], "--fps must be > 0"),
        (["--seeds", "1", "2", "--size", "0"], "--size must be >= 1"),
        (["--seeds", "1", "2", "--label", "cat"], "unknown label 'cat'"),
    ],
)
def test_bad_input_is_one_line(run_dir, tmp_path, capsys, args, message):
    assert main(["interpolate", str(run_dir), *args, "--out", str(tmp_path / "w.gif")]) == 2
    assert message in _one_error(capsys)
    assert not (tmp_path / "w.gif").exists()


def test_bad_output_and_missing_video_packages(run_dir, tmp_path, capsys, monkeypatch):
    assert main(["interpolate", str(run_dir), "--seeds", "1", "2", "--out", str(tmp_path / "w.jpg")]) == 2
    assert "--out must end in .gif, .mp4, .png or .npy" in _one_error(capsys)
    monkeypatch.setitem(sys.modules, "imageio", None)
    assert main(["interpolate", str(run_dir), "--seeds", "1", "2", "--frames", "2", "--out", str(tmp_path / "w.mp4")]) == 2
    assert "pip install 'ganforge[video]'" in _one_error(capsys)


def test_vector_generators_are_refused(tmp_path, capsys):
    generator, _ = models.create("mlp", (2,), 0, hidden_dim=8, num_layers=1)
    models.save_generator(generator, tmp_path / "g")
    assert main(["interpolate", str(tmp_path / "g"), "--seeds", "1", "2", "--out", str(tmp_path / "w.gif")]) == 2
    assert "renders images" in _one_error(capsys)

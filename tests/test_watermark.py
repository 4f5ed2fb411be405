"""The invisible watermark: what it survives, what it costs, who can read it, and every command that writes it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_images

from ganforge.cli import main
from ganforge.metrics.psnr_ssim import psnr
from ganforge.safeguards import watermark as wm
from ganforge.safeguards.verify import verify_file

GENERATOR = "6193a514ffbb9f1c"


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Real photos that ship with scikit-learn (427x640 RGB): crops of them are the host images."""
    return list(load_sample_images().images)


def crops(photos: list[np.ndarray], size: int, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` square crops of the photos (side between ``size`` and 3 ``size``), resized to ``size``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(rng.integers(size, min(3 * size, *photo.shape[:2]) + 1))
        top, left = rng.integers(0, photo.shape[0] - side + 1), rng.integers(0, photo.shape[1] - side + 1)
        out.append(np.asarray(Image.fromarray(photo[top:top + side, left:left + side]).resize((size, size), Image.BICUBIC)))
    return out


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def half(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((image.shape[1] // 2, image.shape[0] // 2), Image.BILINEAR))


def test_a_64px_mark_survives_jpeg_75_and_half_size_at_38_db(photos):
    """The issue's bar on 64x64 images: bit accuracy >= 0.95 after JPEG 75 and 0.5x resize, PSNR >= 38 dB
    (measured on these 40 crops: every bit read back after both, PSNR 40.1 dB on average, 39.2 the lowest)."""
    bits = wm.payload(wm.DEFAULT_KEY, GENERATOR)
    accuracy = {"clean": [], "jpeg75": [], "half": []}
    quality = []
    for image in crops(photos, 64, 40):
        marked = wm.embed(image, bits)
        quality.append(psnr(marked, image, y_channel=False))
        for name, attacked in (("clean", marked), ("jpeg75", jpeg(marked, 75)), ("half", half(marked))):
            accuracy[name].append(float((wm.read(attacked).bits == bits).mean()))
    assert np.mean(quality) >= 38 and min(quality) >= 37, quality
    assert min(accuracy["clean"]) == 1.0
    assert np.mean(accuracy["jpeg75"]) >= 0.95 and np.mean(accuracy["half"]) >= 0.95, {k: np.mean(v) for k, v in accuracy.items()}


@pytest.mark.parametrize("size, mode", [(28, "L"), (32, "RGB"), (128, "RGB"), (256, "RGBA")])
def test_the_mark_reads_back_at_the_sizes_ganforge_writes(photos, size, mode):
    bits = wm.payload(wm.DEFAULT_KEY, GENERATOR)
    for image in crops(photos, size, 4, seed=size):
        image = np.asarray(Image.fromarray(image).convert(mode))
        marked = wm.embed(image, bits)
        assert marked.shape == image.shape and marked.dtype == np.uint8
        reading = wm.read(marked)
        assert reading.found and reading.intact and reading.generator_id == GENERATOR[:8], reading
        if mode == "RGBA":
            assert np.array_equal(marked[..., 3], image[..., 3])  # alpha untouched
        assert np.array_equal(marked, wm.embed(image, bits))  # deterministic


def test_unmarked_photos_and_other_keys_read_as_unmarked(photos):
    """A random image passes the 16-bit key-id check with probability 17 / 65,536; none of 300 photo crops does,
    and a mark made with another key is not found under the default one (nor the default mark under that key)."""
    found = [wm.read(image).found for size in (32, 64, 128) for image in crops(photos, size, 100, seed=size + 1)]
    assert sum(found) == 0
    image = crops(photos, 64, 1, seed=7)[0]
    mine = wm.embed(image, wm.payload("my secret", GENERATOR), key="my secret")
    assert wm.read(mine, "my secret").found and not wm.read(mine).found
    assert not wm.read(wm.embed(image, wm.payload(wm.DEFAULT_KEY, GENERATOR)), "my secret").found
    assert wm.key_id("my secret") != wm.key_id(wm.DEFAULT_KEY)


def test_the_crc_tells_a_damaged_generator_id(photos):
    image = crops(photos, 64, 1, seed=3)[0]
    bits = wm.payload(wm.DEFAULT_KEY, GENERATOR)
    forged = bits.copy()
    forged[wm.KEY_BITS + 5] ^= 1  # one bit of the generator id changed, the CRC left as it was
    reading = wm.read(wm.embed(image, forged))
    assert reading.found and not reading.intact


def test_mark_touches_generated_images_only_and_records_an_opt_out(photos):
    image = Image.fromarray(crops(photos, 64, 1, seed=5)[0])
    generated = {"synthetic": "true", "generator": GENERATOR}
    marked, meta = wm.mark(image, generated)
    assert meta["watermark"] == wm.METHOD and meta["watermark_key_id"] == f"{wm.key_id(wm.DEFAULT_KEY):04x}"
    assert wm.read(np.asarray(marked)).found
    plain, meta = wm.mark(image, {"run": "x"})  # not generated (a real image, a plot): left alone
    assert plain is image and "watermark" not in meta
    with wm.settings(enabled=False):
        kept, meta = wm.mark(image, generated)
    assert kept is image and meta["watermark"] == "off"
    with wm.settings(key="another"):
        _, meta = wm.mark(image, generated)
    assert meta["watermark_key_id"] == f"{wm.key_id('another'):04x}"


# ----------------------------------------------------------------------------- every command marks its images


def verified(path, capsys, *flags) -> dict:
    capsys.readouterr()
    assert main(["verify", str(path), "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def test_sample_marks_by_default_and_verify_reads_it(tiny_dcgan_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["sample", str(tiny_dcgan_run.dir), "--n", "16", "--out", str(out)]) == 0
    report = verified(out, capsys)
    assert report["watermark"]["found"] and report["watermark"]["matches_metadata"]
    assert report["metadata"]["watermark"] == wm.METHOD
    again = tmp_path / "again.png"
    main(["sample", str(tiny_dcgan_run.dir), "--n", "16", "--out", str(again)])
    assert out.read_bytes() == again.read_bytes()  # sampling stays deterministic
    off = tmp_path / "off.png"
    main(["sample", str(tiny_dcgan_run.dir), "--n", "16", "--out", str(off), "--no-watermark"])
    report = verified(off, capsys)
    assert not report["watermark"]["found"] and report["metadata"]["watermark"] == "off"
    keyed = tmp_path / "keyed.png"
    main(["sample", str(tiny_dcgan_run.dir), "--n", "16", "--out", str(keyed), "--watermark-key", "k3y"])
    assert not verified(keyed, capsys)["watermark"]["found"]
    assert verified(keyed, capsys, "--watermark-key", "k3y")["watermark"]["matches_metadata"]
    folder = tmp_path / "each"
    main(["sample", str(tiny_dcgan_run.dir), "--n", "3", "--out", f"{folder}/"])
    assert all(verify_file(path)["watermark"]["found"] for path in sorted(folder.glob("*.png")))


def test_synthesize_interpolate_and_the_trainer_mark_their_images(tiny_cdcgan_run, tmp_path):
    synthetic = tmp_path / "synthetic"
    assert main(["synthesize", str(tiny_cdcgan_run.dir), "--per-class", "1", "--out", str(synthetic)]) == 0
    files = sorted(synthetic.rglob("*.png"))
    assert len(files) == 10 and all(verify_file(f)["watermark"]["matches_metadata"] for f in files)
    walk = tmp_path / "walk.png"
    assert main(["interpolate", str(tiny_cdcgan_run.dir), "--seeds", "1", "2", "--frames", "2", "--out", str(walk)]) == 0
    frames = sorted(tmp_path.glob("walk-*.png"))
    assert frames and all(verify_file(f)["watermark"]["found"] for f in frames)
    grids = sorted((tiny_cdcgan_run.dir / "samples").glob("*.png"))
    assert grids and all(verify_file(f)["watermark"]["matches_metadata"] for f in grids)


def test_the_server_marks_what_it_serves(tiny_dcgan_run):
    from fastapi.testclient import TestClient

    from ganforge.serve import create_app

    with TestClient(create_app(tiny_dcgan_run.dir), base_url="http://localhost") as client:
        response = client.post("/api/generate", json={"n": 4, "seed": 3}, headers={"accept": "image/png"})
    assert response.status_code == 200, response.text
    reading = wm.read(np.asarray(Image.open(io.BytesIO(response.content))))
    assert reading.found and reading.intact


def test_the_server_verifies_an_upload(tiny_dcgan_run, tmp_path):
    from fastapi.testclient import TestClient

    from ganforge.serve import create_app

    out = tmp_path / "grid.png"
    main(["sample", str(tiny_dcgan_run.dir), "--n", "4", "--out", str(out)])
    with TestClient(create_app(tiny_dcgan_run.dir), base_url="http://localhost") as client:
        report = client.post("/api/verify", content=out.read_bytes()).json()
        jpeg_copy = io.BytesIO()
        Image.open(out).convert("RGB").save(jpeg_copy, "JPEG", quality=75)
        copy = client.post("/api/verify", content=jpeg_copy.getvalue()).json()
        bad = client.post("/api/verify", content=b"not an image")
    assert report["file"] == "upload" and report["watermark"]["matches_metadata"] and report["metadata"]["synthetic"] == "true"
    assert copy["watermark"]["found"] and not copy["metadata"]["present"]  # the JPEG copy lost the metadata, not the mark
    assert bad.status_code == 400 and "upload is not an image" in bad.json()["detail"]


def test_video_clips_carry_the_mark_in_every_frame(tiny_video_run, tmp_path):
    from ganforge.video import read_gif

    folder = tmp_path / "clips"
    assert main(["sample", str(tiny_video_run.dir), "--n", "2", "--out", f"{folder}/"]) == 0
    report = verify_file(folder / "000.gif")
    assert report["watermark"]["matches_metadata"] and report["metadata"]["watermark"] == wm.METHOD
    frames = read_gif(folder / "000.gif")
    assert all(wm.read(frame).intact for frame in frames)


def test_upscale_marks_its_outputs(tmp_path):
    import torch

    from ganforge.models import save_generator
    from ganforge.models.srgan import SRResNet

    torch.manual_seed(0)
    save_generator(SRResNet(scale=2, channels=8, blocks=1, norm="none"), tmp_path / "g", {"task": "super-resolution"})
    photo = crops(list(load_sample_images().images), 48, 1)[0]
    Image.fromarray(photo).save(tmp_path / "photo.png")
    assert main(["upscale", str(tmp_path / "g"), str(tmp_path / "photo.png"), "--out", str(tmp_path / "out")]) == 0
    report = verify_file(tmp_path / "out" / "photo.png")
    assert report["size"] == [96, 96] and report["watermark"]["matches_metadata"]

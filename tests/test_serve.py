"""``ganforge serve``: the HTTP API, its limits and errors, the micro-batcher, and the CLI."""

import asyncio
import base64
import io
import itertools
import json
import re
import socket
import subprocess
import sys
import time
import warnings

import httpx
import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
from PIL import Image

import ganforge
from ganforge import cli
from ganforge import modality as modalities
from ganforge.audio import read_provenance
from ganforge.errors import UserError
from ganforge.modality import Media
from ganforge.safeguards import watermark
from ganforge.serve import create_app
from ganforge.serve.batcher import MicroBatcher
from ganforge.serve.guards import default_allowed_hosts
from ganforge.viz import image_grid

with warnings.catch_warnings():  # starlette prefers httpx2 but works with httpx
    warnings.filterwarnings("ignore", message=".*httpx2")
    from fastapi.testclient import TestClient


def local(app) -> TestClient:
    """A test client whose requests say ``Host: localhost`` (the app answers only loopback names by default)."""
    return TestClient(app, base_url="http://localhost")


@pytest.fixture(scope="module")
def runs(tiny_dcgan_run, tiny_cdcgan_run):
    """The session's tiny unconditional and conditional digits DCGANs (20 steps: these tests are about the API)."""
    return {"unconditional": tiny_dcgan_run.dir, "conditional": tiny_cdcgan_run.dir}


@pytest.fixture(scope="module")
def conditional(runs):
    with local(create_app(runs["conditional"])) as client:
        yield client


@pytest.fixture(scope="module")
def unconditional(runs):
    with local(create_app(runs["unconditional"])) as client:
        yield client


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def message(response: httpx.Response) -> str:
    """The error text of a 4xx: a string detail, or the messages of FastAPI's field errors."""
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return detail
    return "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in detail)  # loc[0] is "body"


# --------------------------------------------------------------------------- endpoints


def test_info_and_health(conditional, unconditional):
    assert conditional.get("/health").json() == {"status": "ok"}
    info = conditional.get("/api/info").json()
    assert info["model"] == "DCGANGenerator" and info["run"] == "cdcgan-digits" and info["data"] == "digits"
    assert info["conditional"] and info["num_classes"] == 10 and info["class_names"][3] == "3"
    assert info["output_shape"] == [1, 16, 16] and info["resolution"] == 16 and info["latent_dim"] == 16
    assert info["limits"]["max_n"] == 64 and info["limits"]["max_steps"] == 32
    assert len(info["generator"]) == 16
    info = unconditional.get("/api/info").json()
    assert not info["conditional"] and info["class_names"] == [] and info["run"] == "dcgan-digits"
    assert info["modality"] == "image" and info["media_type"] == info["batch_media_type"] == "image/png"
    assert info["output_fields"] == {}


def test_web_page_and_static_files(conditional):
    page = conditional.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for element in ('id="generate"', 'id="seed"', 'id="label"', 'id="truncation"', 'id="grid"', 'id="interpolate"'):
        assert element in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert conditional.get(asset).status_code == 200
    assert "http" not in conditional.get("/static/app.js").text.replace("HTTP ", "")  # no CDN, nothing remote


def test_generate_grid_is_deterministic_with_provenance(conditional):
    body = {"n": 16, "seed": 7, "truncation": 0.8}
    a, b = (conditional.post("/api/generate", json=body) for _ in range(2))
    c = conditional.post("/api/generate", json={**body, "seed": 8})
    assert a.status_code == 200 and a.headers["content-type"] == "image/png"
    assert a.content == b.content != c.content
    grid = Image.open(io.BytesIO(a.content))
    assert grid.size == (10 * 18 + 2, 2 * 18 + 2)  # classes cycle: one row per 10, 16 px cells + 2 px padding
    text = grid.text
    assert text["synthetic"] == "true" and text["seed"] == "7" and text["truncation"] == "0.8"
    assert text["generator"] == conditional.get("/api/info").json()["generator"] and text["run"] == "cdcgan-digits"
    assert text["label"] == ",".join(str(i % 10) for i in range(16))


def test_generate_images_match_the_library(runs, conditional):
    response = conditional.post("/api/generate", json={"n": 4, "seed": 5, "label": "3", "format": "images"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["seeds"] == [5, 6, 7, 8] and body["labels"] == [3, 3, 3, 3] and body["truncation"] is None
    assert body["media_type"] == "image/png"
    generator = ganforge.load(runs["conditional"])
    for b64, seed in zip(body["images"], body["seeds"]):
        image = decode(b64)
        assert image.size == (16, 16) and image.text["seed"] == str(seed) and image.text["label"] == "3"
        assert image.text["synthetic"] == "true"
        # image i is Generator.sample(1, seed + i), watermarked (up to float rounding of a different batch size,
        # which the mark's own rounding can carry one grey level further)
        expected = image_grid(generator.sample(1, seed=seed, labels=3), padding=0)
        marked = watermark.embed(np.asarray(expected.convert("L")), watermark.payload(watermark.DEFAULT_KEY, generator.meta["weights_id"]))
        assert np.abs(pixels(image) - marked.astype(np.int16)).max() <= 2
        assert watermark.read(np.asarray(image.convert("L"))).intact
    by_index = conditional.post("/api/generate", json={"n": 4, "seed": 5, "label": 3, "format": "images"}).json()
    assert by_index["images"] == body["images"]


def test_generate_unconditional_grid_images_and_scale(unconditional):
    body = unconditional.post("/api/generate", json={"n": 3, "seed": 1, "format": "images", "scale": 4}).json()
    assert body["labels"] is None and body["seeds"] == [1, 2, 3]
    image = decode(body["images"][0])
    assert image.size == (64, 64) and image.text["label"] == ""
    grid = Image.open(io.BytesIO(unconditional.post("/api/generate", json={"n": 6, "nrow": 3}).content))
    assert grid.size == (3 * 18 + 2, 2 * 18 + 2)


def test_interpolate_ends_at_the_seeds_samples(conditional):
    body = {"seed_a": 3, "seed_b": 9, "steps": 6, "label": 2, "format": "images"}
    frames = conditional.post("/api/interpolate", json=body).json()["images"]
    assert len(frames) == 6
    ends = conditional.post("/api/generate", json={"n": 1, "seed": 3, "label": 2, "format": "images"}).json()["images"]
    end_b = conditional.post("/api/generate", json={"n": 1, "seed": 9, "label": 2, "format": "images"}).json()["images"]
    assert np.abs(pixels(decode(frames[0])) - pixels(decode(ends[0]))).max() <= 1  # slerp at t=0, to rounding
    assert np.array_equal(pixels(decode(frames[-1])), pixels(decode(end_b[0])))  # the walk's last latent is seed_b's
    first = decode(frames[1]).text
    assert first["seed"] == "3,9" and first["interpolation"] == "slerp" and first["frame"] == "1/5"
    assert first["label"] == "2" and first["synthetic"] == "true"
    linear = conditional.post("/api/interpolate", json={**body, "mode": "linear"}).json()["images"]
    assert np.array_equal(pixels(decode(linear[-1])), pixels(decode(frames[-1])))
    assert not np.array_equal(pixels(decode(linear[2])), pixels(decode(frames[2])))
    strip = conditional.post("/api/interpolate", json={**body, "format": "grid"})
    assert strip.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(strip.content)).size == (6 * 18 + 2, 18 + 2)


# --------------------------------------------------------------------------- an audio run: WAV files


@pytest.fixture(scope="module")
def audio(tiny_audio_run):
    """The session's tiny conditional SpecGAN on 8 kHz tones (classes high, low, mid; clips of 2,048 samples)."""
    with local(create_app(tiny_audio_run.dir)) as client:
        yield client


def wav(data: bytes, tmp_path, name: str = "clip.wav") -> tuple[np.ndarray, int, dict[str, str]]:
    """Samples, rate and provenance of WAV bytes."""
    path = tmp_path / name
    path.write_bytes(data)
    samples, rate = soundfile.read(str(path), dtype="float32")
    return samples, rate, read_provenance(path)


def test_an_audio_run_is_served_as_wav(audio, tiny_audio_run, tmp_path):
    info = audio.get("/api/info").json()
    assert info["modality"] == "audio" and info["media_type"] == "audio/wav" and info["batch_media_type"] == "audio/wav"
    assert info["output_fields"] == {"sample_rate": "8000"} and info["output_shape"] == [1, 2048]
    assert info["class_names"] == ["high", "low", "mid"]
    body = audio.post("/api/generate", json={"n": 3, "seed": 4, "label": "low", "format": "images"}).json()
    assert body["media_type"] == "audio/wav" and body["seeds"] == [4, 5, 6] and body["labels"] == [1, 1, 1]
    generator = ganforge.load(tiny_audio_run.dir)
    for i, (b64, seed) in enumerate(zip(body["images"], body["seeds"])):
        samples, rate, fields = wav(base64.b64decode(b64), tmp_path, f"{i}.wav")
        assert rate == 8000 and samples.shape == (2048,)
        assert fields["synthetic"] == "true" and fields["seed"] == str(seed) and fields["label"] == "1"
        assert fields["generator"] == info["generator"] and fields["sample_rate"] == "8000"
        expected = generator.sample(1, seed=seed, labels=1)[0, 0].numpy()  # clip i is Generator.sample(1, seed + i)
        assert np.abs(samples - expected).max() <= 2 / 32768 and np.abs(expected).max() > 0  # 16-bit rounding
    again = audio.post("/api/generate", json={"n": 3, "seed": 4, "label": 1, "format": "images"}).json()
    assert again["images"] == body["images"]  # same seed, same bytes


def test_an_audio_grid_is_one_wav_of_the_clips(audio, tmp_path):
    a, b = (audio.post("/api/generate", json={"n": 5, "seed": 2, "scale": 8}) for _ in range(2))  # scale: no effect
    assert a.status_code == 200 and a.headers["content-type"] == "audio/wav" and a.content == b.content
    assert 'filename="ganforge-seed2-n5.wav"' in a.headers["content-disposition"]
    samples, rate, fields = wav(a.content, tmp_path)
    assert rate == 8000 and len(samples) == 5 * 2048 + 4 * 2000  # 0.25 s of silence between clips
    assert not samples[2048 : 2048 + 2000].any() and samples[:2048].any()
    assert fields["clips"] == "5" and fields["label"] == "0,1,2,0,1" and fields["synthetic"] == "true"
    strip = audio.post("/api/interpolate", json={"seed_a": 1, "seed_b": 2, "steps": 3, "label": "mid"})
    assert strip.headers["content-type"] == "audio/wav"
    samples, _, fields = wav(strip.content, tmp_path, "strip.wav")
    assert len(samples) == 3 * 2048 + 2 * 2000 and fields["frames"] == "3" and fields["label"] == "2"


def test_audio_size_limits_count_samples(tiny_audio_run):
    with local(create_app(tiny_audio_run.dir, max_values=4 * 2048)) as client:
        assert client.post("/api/generate", json={"n": 4, "scale": 8}).status_code == 200  # scale does not enlarge sound
        response = client.post("/api/generate", json={"n": 5})
        assert response.status_code == 400
        assert message(response) == ("this request asks for 5 clips of 2048 samples (10240 in all); the limit is 8192: "
                                     "ask for fewer clips")
        assert client.get("/api/info").json()["limits"]["max_values"] == 8192
        schema = client.get("/openapi.json").json()
        assert "audio/wav" in schema["paths"]["/api/generate"]["post"]["responses"]["200"]["content"]


# --------------------------------------------------------------------------- a table run: CSV rows, one table on the page


@pytest.fixture(scope="module")
def table(tiny_table_run):
    """The session's tiny CTGAN on conftest's table_csv (6 columns of every kind), served."""
    with local(create_app(tiny_table_run.dir)) as client:
        yield client


def test_a_table_run_is_served_as_csv_rows(table, tiny_table_run):
    info = table.get("/api/info").json()
    assert info["modality"] == "table" and info["media_type"] == "text/csv" and info["batch_media_type"] == "text/csv"
    assert Media(info["media_type"], ".csv").element == "table"  # what the page presents such files in
    body = table.post("/api/generate", json={"n": 3, "seed": 5, "format": "images"}).json()
    assert body["media_type"] == "text/csv" and body["seeds"] == [5, 6, 7] and body["labels"] is None
    generator = ganforge.load(tiny_table_run.dir)
    kind = modalities.of(generator)
    for b64, seed in zip(body["images"], body["seeds"]):
        row = pd.read_csv(io.BytesIO(base64.b64decode(b64)))  # a header and one row
        expected = pd.read_csv(io.StringIO(kind.rows(generator.sample(1, seed=seed)).to_csv(index=False)))
        assert list(row.columns) == [c.name for c in kind.transformer.columns] and len(row) == 1
        pd.testing.assert_frame_equal(row, expected, rtol=1e-4)  # row i is Generator.sample(1, seed + i)
    grid = table.post("/api/generate", json={"n": 3, "seed": 5, "format": "grid"})  # "download all": one CSV of every row
    assert grid.headers["content-type"].startswith("text/csv")
    assert len(pd.read_csv(io.BytesIO(grid.content))) == 3


def test_the_page_shows_csv_samples_as_one_table(table):
    script = table.get("/static/app.js").text
    # the page maps text/csv to a table, as Media.element does, and builds one <table> of all the CSV samples
    assert re.search(r'const ELEMENTS = \{ "text/csv": "table",', script) and Media("text/csv", ".csv").element == "table"
    assert "function sampleTable(" in script and 'if (tag === "table")' in script
    assert "table.rows" in table.get("/static/style.css").text


# --------------------------------------------------------------------------- bad input: 4xx, never 5xx


@pytest.mark.parametrize(
    "path, body, status, text",
    [
        ("/api/generate", {"n": 10_000}, 422, "n: Input should be less than or equal to 64"),
        ("/api/generate", {"n": -1}, 422, "n: Input should be greater than or equal to 1"),
        ("/api/generate", {"n": 0}, 422, "greater than or equal to 1"),
        ("/api/generate", {"n": "many"}, 422, "n: Input should be a valid integer"),
        ("/api/generate", {"n": 2.5}, 422, "valid integer"),
        ("/api/generate", {"seed": -3}, 422, "seed: Input should be greater than or equal to 0"),
        ("/api/generate", {"seed": "7"}, 422, "seed: Input should be a valid integer"),
        ("/api/generate", {"label": "cat"}, 400, "unknown label 'cat' (classes: 0, 1, 2"),
        ("/api/generate", {"label": 10}, 400, "label 10 is out of range: this generator has classes 0..9"),
        ("/api/generate", {"label": -1}, 400, "out of range"),
        ("/api/generate", {"label": [1, 2]}, 422, "label"),
        ("/api/generate", {"truncation": 0}, 422, "truncation: Input should be greater than or equal to 0.05"),
        ("/api/generate", {"truncation": "high"}, 422, "truncation"),
        ("/api/generate", {"format": "gif"}, 422, "format: Input should be 'grid' or 'images'"),
        ("/api/generate", {"scale": 100}, 422, "scale: Input should be less than or equal to 8"),
        ("/api/generate", {"nums": 4}, 422, "nums: Extra inputs are not permitted"),
        ("/api/generate", [1, 2], 422, "valid dictionary"),
        ("/api/interpolate", {"label": 1, "steps": 33}, 422, "steps: Input should be less than or equal to 32"),
        ("/api/interpolate", {"label": 1, "steps": 1}, 422, "steps: Input should be greater than or equal to 2"),
        ("/api/interpolate", {"label": 1, "mode": "cubic"}, 422, "mode: Input should be 'slerp' or 'linear'"),
        ("/api/interpolate", {"steps": 4}, 400, "this generator is conditional: give a label"),
        ("/api/interpolate", {"label": "dog"}, 400, "unknown label 'dog'"),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(conditional, path, body, status, text):
    response = conditional.post(path, json=body)
    assert response.status_code == status, response.text
    assert text in message(response)


@pytest.mark.parametrize("path", ["/api/generate", "/api/interpolate"])
def test_label_on_an_unconditional_model_is_refused(unconditional, path):
    response = unconditional.post(path, json={"label": 3})
    assert response.status_code == 400
    assert message(response) == "this generator is unconditional: it takes no label (got 3)"


@pytest.mark.parametrize(
    "raw, status, text",
    [
        (b"{not json", 422, "JSON decode error"),
        (b"", 422, "Field required"),
        # Python's JSON parser takes NaN and Infinity; a NaN must not reach the generator (nor the error body)
        (b'{"truncation": NaN}', 422, "truncation: Input should be less than or equal to 10"),
        (b'{"n": Infinity}', 422, "n: Input should be a valid integer"),
        (b'{"n": 1e400}', 422, "n: Input should be a valid integer"),
        (b'{"label": "' + b"9" * 5000 + b'"}', 400, "label 99999999999999999999... is out of range"),
        # an integer too long for Python's JSON parser: FastAPI's own 400
        (b'{"label": ' + b"9" * 5000 + b"}", 400, "There was an error parsing the body"),
    ],
)
def test_malformed_requests(conditional, raw, status, text):
    response = conditional.post("/api/generate", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status and text in message(response)


def test_wrong_methods_and_paths(conditional):
    assert conditional.get("/api/generate").status_code == 405
    assert conditional.get("/api/nothing").status_code == 404


def test_openapi_documents_the_endpoints_and_limits(runs):
    with local(create_app(runs["conditional"], max_n=8, max_steps=5)) as client:
        schema = client.get("/openapi.json").json()
        assert {"/api/generate", "/api/interpolate", "/api/info", "/health"} <= set(schema["paths"])
        parts = schema["components"]["schemas"]
        assert parts["GenerateRequest"]["properties"]["n"]["maximum"] == 8
        assert parts["InterpolateRequest"]["properties"]["steps"]["maximum"] == 5
        assert set(parts["InterpolateRequest"]["properties"]["mode"]["enum"]) == {"slerp", "linear"}
        assert "image/png" in schema["paths"]["/api/generate"]["post"]["responses"]["200"]["content"]
        assert client.post("/api/generate", json={"n": 9}).status_code == 422
        assert client.post("/api/generate", json={"n": 8}).status_code == 200
        assert client.get("/api/info").json()["limits"]["max_n"] == 8


def test_create_app_refuses_what_it_cannot_serve(tmp_path):
    with pytest.raises(UserError, match="no generator found"):
        create_app(tmp_path)
    vectors, _ = ganforge.create_model("mlp", data_shape=(2,))
    with pytest.raises(UserError, match="serve shows audio, image, table, text and video samples; this generator makes points"):
        create_app(vectors)
    with pytest.raises(UserError, match="samples generators of latents; Linear maps images to images"):
        create_app(torch.nn.Linear(2, 2))
    with pytest.raises(UserError, match="max_n must be >= 1"):
        create_app(ganforge.create_model("dcgan", data_shape=(1, 16, 16))[0], max_n=0)


# --------------------------------------------------------------------------- body cap, Host check, nothing remote

MiB = 1 << 20


def asgi_request(app, headers: list[tuple[bytes, bytes]], chunks) -> tuple[int, dict, int]:
    """POST /api/generate straight through the ASGI interface, the body sent as ``chunks``.

    Returns the status, the JSON body, and how many chunks the app pulled (an endless
    ``chunks`` shows how far it read).
    """
    pulled, sent = 0, []
    chunks = iter(chunks)

    async def receive() -> dict:
        nonlocal pulled
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/generate", "raw_path": b"/api/generate", "root_path": "", "query_string": b"",
             "headers": headers, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), pulled


def test_a_body_over_the_cap_is_refused_before_it_is_read(runs, conditional):
    """Issue 16 defect 2: a 100 MB body was read into memory (RSS 563 -> 1,155 MB)."""
    too_large = "request body too large: the limit is 1048576 bytes"
    response = conditional.post("/api/generate", content=b" " * (MiB + 1), headers={"content-type": "application/json"})
    assert response.status_code == 413 and message(response) == too_large
    response = conditional.post("/api/generate", json={"label": "x" * (10 * MiB)})  # the 10 MB label
    assert response.status_code == 413 and len(response.content) < 100
    at_the_cap = b'{"n": 1}'.ljust(MiB)  # JSON padded with spaces to exactly the cap
    assert conditional.post("/api/generate", content=at_the_cap, headers={"content-type": "application/json"}).status_code == 200
    app = create_app(runs["conditional"])
    host = (b"host", b"localhost")

    def never():
        raise AssertionError("the body was read")
        yield b""

    status, body, _ = asgi_request(app, [host, (b"content-length", str(100 * MiB).encode())], never())
    assert (status, body["detail"]) == (413, too_large)
    # chunked (no Content-Length): an endless stream is cut off at the cap
    endless = itertools.repeat(b" " * (64 << 10))
    status, body, pulled = asgi_request(app, [host, (b"content-type", b"application/json")], endless)
    assert (status, body["detail"]) == (413, too_large)
    assert pulled == 17  # 16 chunks of 64 KiB fill the cap; the 17th passes it
    status, body, _ = asgi_request(app, [host, (b"content-length", b"12x")], [b"{}"])
    assert (status, body["detail"]) == (400, "invalid Content-Length header '12x'")


def test_errors_quote_a_short_prefix_of_the_input(runs):
    """Issue 16 defect 2: a 10 MB label came back in a 10 MB error message."""
    huge = "x" * (10 * MiB)
    with local(create_app(runs["unconditional"], max_body_bytes=64 * MiB)) as client:
        for body, status, text in [
            ({"label": huge}, 400, "this generator is unconditional: it takes no label (got 'xxxxxxxxxxxxxxxxxxx...)"),
            ({"format": huge}, 422, "format: Input should be 'grid' or 'images'"),
            ({huge: 1}, 422, "xxxxxxxxxxxxxxxxxxxx...: Extra inputs are not permitted"),
            ({f"field{i}": 1 for i in range(100_000)}, 422, "and 99990 more problems"),
        ]:
            response = client.post("/api/generate", json=body)
            assert response.status_code == status and text in message(response)
            assert len(response.content) < 2000
    with local(create_app(runs["conditional"], max_body_bytes=64 * MiB)) as client:
        response = client.post("/api/generate", json={"label": huge})
        assert response.status_code == 400 and len(response.content) < 200
        assert message(response).startswith("unknown label 'xxxxxxxxxxxxxxxxxxxx...' (classes: 0, 1")


@pytest.mark.parametrize(
    "host, status",
    [("localhost", 200), ("localhost:8000", 200), ("127.0.0.1:8000", 200), ("[::1]:8000", 200), ("LOCALHOST", 200),
     ("evil.example", 400), ("evil.example:8000", 400), ("127.0.0.1.evil.example", 400), ("localhost.", 400)],
)
def test_only_loopback_host_names_are_answered_by_default(conditional, host, status):
    """Issue 16 defect 8: any Host was accepted (a page on a rebound DNS name could drive a localhost server)."""
    response = conditional.get("/health", headers={"host": host})
    assert response.status_code == status
    if status == 400:
        assert message(response).startswith(f"Host '{host}' is not allowed (allowed: localhost, 127.0.0.1, ::1;")


def test_allowed_hosts(runs):
    generator = ganforge.load(runs["unconditional"])
    cases = {("*",): {"evil.example": 200}, ("*.example.org", "10.0.0.2"): {
        "a.example.org": 200, "example.org": 400, "10.0.0.2:80": 200, "localhost": 400}}
    for allowed, answers in cases.items():
        with TestClient(create_app(generator, allowed_hosts=allowed)) as client:
            for host, status in answers.items():
                assert client.get("/health", headers={"host": host}).status_code == status, (allowed, host)
    for bad, text in [([], "allowed hosts must be non-empty names"), (["a*b"], r"allowed host 'a\*b' is not a name")]:
        with pytest.raises(UserError, match=text):
            create_app(generator, allowed_hosts=bad)
    assert default_allowed_hosts("127.0.0.1") == default_allowed_hosts("0.0.0.0") == ("localhost", "127.0.0.1", "::1")
    assert default_allowed_hosts("::") == default_allowed_hosts("::1") == ("localhost", "127.0.0.1", "::1")
    assert default_allowed_hosts("192.168.1.5") == ("localhost", "127.0.0.1", "::1", "192.168.1.5")
    assert default_allowed_hosts("fe80::1") == ("localhost", "127.0.0.1", "::1", "fe80::1")


def test_no_page_loads_anything_remote(conditional):
    """Issue 16 defect 8: /docs loaded Swagger UI from a CDN (blank offline); there is no /docs or /redoc now."""
    for path in ("/", "/docs", "/redoc", "/static/app.js", "/static/style.css", "/openapi.json", "/api/info"):
        response = conditional.get(path)
        assert not re.search(r"https?://|//cdn|\bcdn\.", response.text), path
        assert response.status_code == (404 if path in ("/docs", "/redoc") else 200)
    assert "application/json" in conditional.get("/openapi.json").headers["content-type"]


def test_a_request_for_too_many_pixels_is_a_400(runs):
    with local(create_app(runs["unconditional"], max_pixels=64 * 64 * 4)) as client:  # four 64x64 images
        assert client.post("/api/generate", json={"n": 4, "scale": 4}).status_code == 200
        response = client.post("/api/generate", json={"n": 5, "scale": 4})
        assert response.status_code == 400
        assert message(response) == ("this request asks for 5 images of 64x64 pixels (20480 in all); the limit is 16384: "
                                     "ask for fewer images or a smaller scale")
        assert client.post("/api/interpolate", json={"steps": 17, "scale": 2}).status_code == 400
        assert client.get("/api/info").json()["limits"]["max_pixels"] == 16384
        assert client.get("/api/info").json()["limits"]["max_values"] == 16384  # max_pixels is its older name
    with local(create_app(runs["unconditional"], max_values=64 * 64 * 4)) as client:
        assert client.post("/api/generate", json={"n": 5, "scale": 4}).status_code == 400


@pytest.mark.parametrize(
    "path, raw, status, text",
    [
        ("/api/generate", b'{"seed": 18446744073709551616}', 422, "seed: Input should be less than or equal to 4294967295"),
        ("/api/generate", b'{"seed": 4294967296}', 422, "less than or equal to 4294967295"),
        ("/api/generate", b'{"seed": 4294967295, "n": 64}', 200, ""),  # seeds past 2**32 - 1 are still seeds
        ("/api/generate", b'{"truncation": -Infinity}', 422, "truncation: Input should be greater than or equal to 0.05"),
        ("/api/generate", b'{"truncation": 5e-324}', 422, "greater than or equal to 0.05"),
        ("/api/generate", b'{"truncation": 1e400}', 422, "less than or equal to 10"),
        ("/api/generate", b'{"scale": 18446744073709551616}', 422, "scale: Input should be less than or equal to 8"),
        ("/api/generate", b'{"scale": 0}', 422, "greater than or equal to 1"),
        ("/api/generate", b'{"n": true}', 422, "n: Input should be a valid integer"),
        ("/api/generate", b'{"format": null}', 422, "format: Input should be 'grid' or 'images'"),
        ("/api/generate", b'{"nrow": 0}', 422, "nrow: Input should be greater than or equal to 1"),
        ("/api/generate", b'{"label": "\xff"}', 400, "There was an error parsing the body"),  # not UTF-8
        ("/api/generate", b"null", 422, "valid dictionary"),
        ("/api/interpolate", b'{"label": 1, "steps": 18446744073709551616}', 422, "steps: Input should be less than"),
        ("/api/interpolate", b'{"label": 1, "seed_b": -1}', 422, "seed_b: Input should be greater than or equal to 0"),
        ("/api/interpolate", b'{"label": 1, "seed_a": 5, "seed_b": 5}', 200, ""),  # a walk that stays put
    ],
)
def test_edge_values_are_4xx_or_served(conditional, path, raw, status, text):
    response = conditional.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert status == 200 or text in message(response)


# --------------------------------------------------------------------------- micro-batching


def test_concurrent_requests_share_batches_and_match_unbatched(runs):
    app = create_app(runs["conditional"], batch_wait_ms=20)
    bodies = [
        {"n": 1 + i % 3, "seed": 100 + 7 * i, "format": "images",
         **({"label": i % 10} if i % 2 else {}), **({"truncation": 0.5 + 0.1 * (i % 5)} if i % 3 == 0 else {})}
        for i in range(50)
    ]

    async def post_all(parallel: bool) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            if parallel:
                return await asyncio.gather(*(client.post("/api/generate", json=b) for b in bodies))
            return [await client.post("/api/generate", json=b) for b in bodies]

    async def run() -> tuple[list[httpx.Response], int, list[httpx.Response]]:
        batched = await post_all(parallel=True)
        calls = app.state.batcher.stats.batches
        alone = await post_all(parallel=False)  # one request at a time: one generator call each
        await app.state.batcher.close()
        return batched, calls, alone

    batched, calls, alone = asyncio.run(run())
    assert all(r.status_code == 200 for r in batched), [r.text for r in batched if r.status_code != 200]
    assert calls < 50, f"the micro-batcher merged nothing: {calls} generator calls for 50 requests"
    assert calls <= 10
    stats = app.state.batcher.stats
    assert stats.requests == 100 and stats.batches == calls + 50 and stats.largest_batch <= 64
    for together, single, body in zip(batched, alone, bodies):
        assert together.json() == single.json(), f"batched result differs for {body}"  # same PNG bytes
        assert together.json()["seeds"] == list(range(body["seed"], body["seed"] + body["n"]))


def test_micro_batcher_splits_at_max_batch_and_survives_errors():
    calls: list[int] = []

    def run(z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        calls.append(len(z))
        if (z < 0).any():
            raise RuntimeError("boom")
        return z * 2

    async def scenario() -> None:
        batcher = MicroBatcher(run, max_batch=8, wait_ms=10)
        jobs = [torch.full((3, 2), float(i)) for i in range(6)]
        results = await asyncio.gather(*(batcher.submit(z) for z in jobs))
        for z, out in zip(jobs, results):
            assert torch.equal(out, z * 2)
        assert calls == [6, 6, 6]  # two 3-sample jobs per batch of at most 8
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.submit(-torch.ones(1, 2))
        assert torch.equal(await batcher.submit(torch.ones(1, 2)), 2 * torch.ones(1, 2))  # still serving
        await batcher.close()

    asyncio.run(scenario())


# --------------------------------------------------------------------------- the command line


def test_cli_serve_errors(runs, tmp_path, monkeypatch, capsys):
    assert cli.main(["serve", str(tmp_path / "nope")]) == 2
    assert "no run directory at" in capsys.readouterr().err
    assert cli.main(["serve", str(tmp_path)]) == 2
    assert "no generator found" in capsys.readouterr().err
    assert cli.main(["serve", str(runs["conditional"]), "--port", "70000"]) == 2
    assert "--port must be in 0..65535" in capsys.readouterr().err
    for option, value, text in [("--max-body-bytes", "0", "--max-body-bytes must be >= 1, got 0"),
                                ("--allowed-hosts", ",", "allowed hosts must be non-empty names"),
                                ("--allowed-hosts", "a*b", "allowed host 'a*b' is not a name")]:
        assert cli.main(["serve", str(runs["conditional"]), option, value]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {text}") and err.count("\n") == 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert cli.main(["serve", str(runs["conditional"]), "--port", str(busy.getsockname()[1])]) == 2
        assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if the extra were not installed
    assert cli.main(["serve", str(runs["conditional"])]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: ganforge serve needs fastapi: pip install 'ganforge[serve]'"


def test_cli_serve_end_to_end(runs, tmp_path):
    run, log_path = runs["unconditional"], tmp_path / "server.log"
    command = [sys.executable, "-m", "ganforge", "serve", str(run), "--port", "0", "--log-level", "warning"]
    with open(log_path, "w") as log, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True) as proc:
        try:
            line = proc.stdout.readline()
            assert line.startswith(f"serving {run} at http://127.0.0.1:"), log_path.read_text()
            url = line.split(" at ")[1].split()[0]
            for _ in range(100):  # the socket is bound before the line is printed; the app starts right after
                try:
                    health = httpx.get(url + "health", timeout=5)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert health.json() == {"status": "ok"}
            response = httpx.post(url + "api/generate", json={"n": 4, "seed": 0}, timeout=30)
            assert response.status_code == 200
            assert Image.open(io.BytesIO(response.content)).text["synthetic"] == "true"
            assert httpx.post(url + "api/generate", json={"n": 65}, timeout=30).status_code == 422
            # over the wire: a foreign Host is a 400; a body declared over the cap is a 413 before it is sent
            assert httpx.get(url + "health", headers={"host": "evil.example"}, timeout=30).status_code == 400
            port = int(url.rsplit(":", 1)[1].strip("/"))
            with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:  # headers only: no body follows
                conn.sendall(b"POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 104857600\r\n\r\n")
                answer = conn.makefile("rb").read()
            assert answer.startswith(b"HTTP/1.1 413 ") and answer.endswith(b"the limit is 1048576 bytes\"}")
        finally:
            proc.terminate()
            proc.wait(timeout=30)

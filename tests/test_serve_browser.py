"""The ``ganforge serve`` web page in a real browser (Chromium via Playwright) against a real server:
images (``<img>``, enlarge, interpolate, download), an audio run (``<audio>`` players that decode and play), a text
run (sentences), a table run (one ``<table>`` of rows) and a video run (animated GIFs that decode and move).

Skipped only where no browser exists: install one with ``apt-get install chromium``
(the tests launch ``/usr/bin/chromium``; never ``playwright install``).
"""

import base64
import csv
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile
import uvicorn
from PIL import Image

import ganforge
from ganforge.audio import read_provenance
from ganforge.serve import create_app
from tiny_configs import THREADS

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 20_000


@contextmanager
def serving(source: Path | ganforge.Generator) -> Iterator[str]:
    """``create_app(source)`` behind a real uvicorn server on a free port, in a thread; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(source), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; the browser is the system Chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def conditional_url(browser, request):  # after `browser`: no training when the tests skip
    """The session's tiny conditional digits DCGAN (20 steps: the page is under test, not the model), served."""
    run = request.getfixturevalue("tiny_cdcgan_run")
    with serving(run.dir) as url:
        yield url


@pytest.fixture
def page(browser, conditional_url):
    """The page on the conditional model, after its first grid arrived; fails the test on any script error."""
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))

    def on_console(message) -> None:
        refused = "status of 400" in message.text or "status of 422" in message.text  # bad input, shown to the user
        if message.type == "error" and not refused:
            errors.append(message.text)

    page.on("console", on_console)
    page.goto(conditional_url)
    wait_idle(page)
    yield page
    context.close()
    assert not errors, errors


def wait_idle(page) -> None:
    """Wait until the page's pending request (if any) is done."""
    page.wait_for_selector("body:not([data-busy])", state="attached")


def click(page, selector: str) -> None:
    page.click(selector)
    wait_idle(page)


def sources(page, selector: str = "#grid img") -> list[str]:
    return page.eval_on_selector_all(selector, "imgs => imgs.map(i => i.src)")


def rendered(page, selector: str = "#grid img") -> bool:
    """Every image decoded and laid out with a real size."""
    sizes = page.eval_on_selector_all(selector, "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.width])")
    return bool(sizes) and all(done and natural > 0 and shown > 0 for done, natural, shown in sizes)


def set_range(page, selector: str, value: float) -> None:
    page.eval_on_selector(
        selector, "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", value
    )


def test_generate_renders_and_changes_with_seed_label_and_truncation(page, conditional_url):
    assert page.locator("#grid img").count() == 16 and rendered(page)
    assert page.locator("#label-field").is_visible()
    assert page.locator("#label option").count() == 11  # "all classes" + 10 digits
    first = sources(page)

    page.fill("#seed", "5")
    click(page, "#generate")
    after_seed = sources(page)
    assert after_seed != first and rendered(page)

    page.select_option("#label", "7")
    click(page, "#generate")
    after_label = sources(page)
    assert after_label != after_seed and rendered(page)
    assert all("label 7" in title for title in page.eval_on_selector_all("#grid img", "imgs => imgs.map(i => i.title)"))

    set_range(page, "#truncation", 0.5)
    assert page.text_content("#truncation-value") == "0.50"
    click(page, "#generate")
    after_truncation = sources(page)
    assert after_truncation != after_label and rendered(page)
    # the page shows exactly what the API returns for the same request
    body = {"n": 16, "seed": 5, "label": 7, "truncation": 0.5, "format": "images"}
    api = httpx.post(conditional_url + "api/generate", json=body, timeout=30).json()["images"]
    assert after_truncation == [f"data:image/png;base64,{b64}" for b64 in api]


def test_enlarge_pick_two_and_interpolate(page):
    assert page.locator("#lightbox").is_hidden()
    third = page.locator("#grid img").nth(2)
    third.click()
    assert page.locator("#lightbox").is_visible()
    assert page.get_attribute("#lightbox-img", "src") == third.get_attribute("src")
    assert rendered(page, "#lightbox-img")
    assert page.get_attribute("#lightbox-download", "href") == third.get_attribute("src")
    page.keyboard.press("Escape")
    assert page.locator("#lightbox").is_hidden()

    third.click()
    page.click("#pick-a")
    page.locator("#grid img").nth(5).click()
    page.click("#pick-b")
    assert page.locator("#lightbox").is_hidden()
    assert (page.input_value("#seed-a"), page.input_value("#seed-b")) == ("2", "5")  # seed 0: image i has seed i
    assert page.locator("#grid img.picked").count() == 2
    page.fill("#steps", "6")
    click(page, "#interpolate")
    assert page.locator("#frames img").count() == 6 and rendered(page, "#frames img")
    frames = sources(page, "#frames img")
    assert len(set(frames)) > 1
    page.locator("#frames img").last.click()  # frames enlarge too
    assert page.get_attribute("#lightbox-img", "src") == frames[-1] and page.locator("#pick-a").is_hidden()


def test_download_grid_png_with_provenance(page, tmp_path):
    page.fill("#seed", "3")
    click(page, "#generate")
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "ganforge-seed3-n16.png"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    image = Image.open(path)
    assert image.size == ((10 * 18 + 2) * 4, (2 * 18 + 2) * 4)  # 16 px digits shown at 4x: 64 px cells
    assert image.text["seed"] == "3" and image.text["synthetic"] == "true"


def test_bad_input_shows_the_servers_message(page):
    before = sources(page)
    page.fill("#n", "999")
    click(page, "#generate")
    assert page.locator("#error").is_visible()
    assert "n: Input should be less than or equal to 64" in page.text_content("#error")
    assert sources(page) == before  # the last good grid stays
    page.fill("#n", "4")
    click(page, "#generate")
    assert page.locator("#error").is_hidden() and page.locator("#grid img").count() == 4


def test_unconditional_model_has_no_label_picker(browser):
    generator, _ = ganforge.create_model("dcgan", data_shape=(1, 16, 16), latent_dim=16, base_channels=8)
    with serving(generator) as url:  # an untrained generator is enough for the page
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        wait_idle(page)
        assert page.locator("#grid img").count() == 16 and rendered(page)
        assert page.locator("#label-field").is_hidden()
        assert "unconditional" in page.text_content("#info")
        click(page, "#interpolate")  # no label needed
        assert page.locator("#frames img").count() == 8 and page.locator("#error").is_hidden()
        page.close()


# --------------------------------------------------------------------------- an audio run: <audio> players


@pytest.fixture(scope="module")
def audio_url(browser, request):  # after `browser`: no training when the tests skip
    """The session's tiny conditional SpecGAN on 8 kHz tones (clips of 2,048 samples), served."""
    run = request.getfixturevalue("tiny_audio_run")
    with serving(run.dir) as url:
        yield url


PLAYERS_READY = """async (selector) => Promise.all([...document.querySelectorAll(selector)].map((a) => new Promise((resolve) => {
  const done = () => resolve({ready: a.readyState, duration: a.duration, error: a.error && a.error.code});
  if (a.readyState >= 3) done();
  else { a.addEventListener("canplay", done, {once: true}); a.addEventListener("error", done, {once: true}); }
})))"""

DECODE = """async (src) => {
  const data = await (await fetch(src)).arrayBuffer();
  const buffer = await new OfflineAudioContext(1, 1, 8000).decodeAudioData(data);
  return {length: buffer.length, rate: buffer.sampleRate, samples: Array.from(buffer.getChannelData(0))};
}"""

PLAY_TO_THE_END = """async (selector) => {
  const a = document.querySelector(selector);
  a.muted = true;  // muted playback needs no user gesture
  const ended = new Promise((resolve) => a.addEventListener("ended", resolve, {once: true}));
  await a.play();
  await ended;
  return {ended: a.ended, time: a.currentTime};
}"""


def open_page(browser, url: str):
    """``(context, page, errors)``: ``url`` loaded and idle in a new context; ``errors`` collects script and console errors."""
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(url)
    wait_idle(page)
    return context, page, errors


def test_an_audio_run_plays_in_the_page(browser, audio_url, tmp_path):
    context, page, errors = open_page(browser, audio_url)

    # the API says what a sample is, and the page shows a player per clip (no pictures)
    assert page.locator("#grid audio").count() == 16 and page.locator("#grid img").count() == 0
    assert page.eval_on_selector_all("#grid audio", "as => as.every(a => a.controls)")
    assert "sample rate 8000" in page.text_content("#info") and page.locator("#label-field").is_visible()
    clip_seconds = 2048 / 8000
    for state in page.evaluate(PLAYERS_READY, "#grid audio"):  # every player decoded enough to play
        assert state["error"] is None and state["ready"] >= 3, state
        assert abs(state["duration"] - clip_seconds) < 0.01, state

    # the browser decodes the very samples the API wrote (16-bit PCM at the clip's own rate)
    src = page.get_attribute("#grid audio >> nth=2", "src")
    assert src.startswith("data:audio/wav;base64,")
    decoded = page.evaluate(DECODE, src)
    body = {"n": 16, "seed": 0, "label": None, "truncation": None, "format": "images"}
    api = httpx.post(audio_url + "api/generate", json=body, timeout=60).json()
    assert api["media_type"] == "audio/wav" and src == "data:audio/wav;base64," + api["images"][2]
    wave, rate = soundfile.read(io.BytesIO(base64.b64decode(api["images"][2])), dtype="float32")
    assert (decoded["length"], decoded["rate"], rate) == (2048, 8000, 8000)
    assert np.abs(np.asarray(decoded["samples"]) - wave).max() < 1e-4 and np.abs(wave).max() > 0

    played = page.evaluate(PLAY_TO_THE_END, "#grid audio")
    assert played["ended"] and abs(played["time"] - clip_seconds) < 0.05

    # a label and a seed change the clips; captions say which
    before = page.eval_on_selector_all("#grid audio", "as => as.map(a => a.src)")
    page.select_option("#label", "1")
    page.fill("#n", "4")
    click(page, "#generate")
    assert page.locator("#grid audio").count() == 4
    titles = page.eval_on_selector_all("#grid audio", "as => as.map(a => a.title)")
    name = page.eval_on_selector("#label", "s => s.options[s.selectedIndex].text")
    assert all(f"label {name.split(': ')[-1]}" in title for title in titles), (titles, name)
    assert page.eval_on_selector_all("#grid audio", "as => as.map(a => a.src)") != before[:4]

    # interpolation frames are players too
    page.fill("#steps", "3")
    click(page, "#interpolate")
    assert page.locator("#frames audio").count() == 3 and page.locator("#error").is_hidden()
    assert all(s["error"] is None and s["ready"] >= 3 for s in page.evaluate(PLAYERS_READY, "#frames audio"))

    # the download is one WAV of the clips, with provenance
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "ganforge-seed0-n4.wav"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    fields = read_provenance(path)
    assert fields["synthetic"] == "true" and fields["clips"] == "4" and fields["sample_rate"] == "8000"
    assert soundfile.info(str(path)).frames == 4 * 2048 + 3 * 2000  # 0.25 s of silence between clips
    context.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def text_url(browser, tmp_path_factory):  # after `browser`: no training when the tests skip
    """A tiny MLE language model (20 steps) on generated captions, served."""
    folder = tmp_path_factory.mktemp("captions")
    words = ["a man", "two dogs", "the cat"], ["sits on", "looks at"], ["a bench.", "the street.", "a red bus."]
    lines = [f"{a} {b} {c}" for a in words[0] for b in words[1] for c in words[2]]
    (folder / "train.txt").write_text("\n".join(lines * 4) + "\n")
    overrides = {"data.name": "text-lines", "data.root": str(folder), "model.embed_dim": 8, "model.hidden_dim": 16,
                 "train.batch_size": 16, "train.steps": 20, "train.progress": False, "train.threads": THREADS,
                 "train.sample_every": 20, "train.checkpoint_every": 20}
    run = ganforge.train("mle-coco", out=folder / "run", overrides=overrides)
    with serving(run.dir) as url:
        yield url


def test_a_text_run_shows_its_sentences_in_the_page(browser, text_url):
    context, page, errors = open_page(browser, text_url)
    # one quoted sentence per sample, no pictures and no players
    assert page.locator("#grid blockquote").count() == 16
    assert page.locator("#grid img").count() == 0 and page.locator("#grid audio").count() == 0
    shown = page.eval_on_selector_all("#grid blockquote", "qs => qs.map(q => q.textContent)")
    body = {"n": 16, "seed": 0, "label": None, "truncation": None, "format": "images"}
    api = httpx.post(text_url + "api/generate", json=body, timeout=60).json()
    assert api["media_type"] == "text/plain"
    assert shown == [base64.b64decode(b).decode("utf-8").strip() for b in api["images"]] and any(shown)
    assert not errors, errors
    context.close()


# --------------------------------------------------------------------------- a table run: one <table> of rows


@pytest.fixture(scope="module")
def table_url(browser, request):  # after `browser`: no training when the tests skip
    """The session's tiny CTGAN on conftest's table_csv (6 columns, a city name with a comma), served."""
    run = request.getfixturevalue("tiny_table_run")
    with serving(run.dir) as url:
        yield url


def test_a_table_run_shows_its_rows_as_a_table(browser, table_url):
    context, page, errors = open_page(browser, table_url)
    # one table: a header (the caption column, then the table's columns) and a row per sample
    assert page.locator("#grid table").count() == 1
    assert page.locator("#grid img, #grid blockquote, #grid audio").count() == 0
    header = page.eval_on_selector_all("#grid thead th", "ths => ths.map(th => th.textContent)")
    cells = page.eval_on_selector_all("#grid tbody tr", "trs => trs.map(tr => [...tr.cells].map(c => c.textContent))")
    body = {"n": 16, "seed": 0, "label": None, "truncation": None, "format": "images"}
    api = httpx.post(table_url + "api/generate", json=body, timeout=60).json()
    assert api["media_type"] == "text/csv"
    files = [list(csv.reader(io.StringIO(base64.b64decode(b).decode("utf-8")))) for b in api["images"]]
    assert header == ["sample", *files[0][0]] and len(header) == 7
    assert cells == [[f"seed {i}", *rows[1]] for i, rows in enumerate(files)]  # quoted fields (a comma) as one cell
    assert "first column" in page.text_content("#hint")
    # interpolation frames are a table too
    page.fill("#steps", "3")
    click(page, "#interpolate")
    assert page.locator("#frames tbody tr").count() == 3 and page.locator("#error").is_hidden()
    context.close()
    assert not errors, errors


# --------------------------------------------------------------------------- a video run: animated GIFs in <img>

#: The frames the browser decodes from an <img>'s GIF (WebCodecs' ImageDecoder), as hashes of their pixels.
DECODED_FRAMES = """async (selector) => {
  const img = document.querySelector(selector);
  const data = await (await fetch(img.src)).arrayBuffer();
  const decoder = new ImageDecoder({data, type: 'image/gif'});
  await decoder.tracks.ready;
  const count = decoder.tracks.selectedTrack.frameCount;
  const hashes = [];
  for (let i = 0; i < count; i++) {
    const {image} = await decoder.decode({frameIndex: i});
    const canvas = new OffscreenCanvas(image.displayWidth, image.displayHeight);
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let hash = 0;
    for (let j = 0; j < pixels.length; j += 4) hash = (hash * 31 + pixels[j]) >>> 0;
    hashes.push(hash);
    image.close();
  }
  return hashes;
}"""


@pytest.fixture(scope="module")
def video_url(browser, request):  # after `browser`: no training when the tests skip
    run = request.getfixturevalue("tiny_video_run")
    with serving(run.dir) as url:
        yield url


def test_a_video_run_plays_in_the_page(browser, video_url):
    context, page, errors = open_page(browser, video_url)
    assert page.locator("#grid img").count() == 16 and page.locator("#grid audio").count() == 0
    src = page.get_attribute("#grid img >> nth=1", "src")
    assert src.startswith("data:image/gif;base64,")
    body = {"n": 16, "seed": 0, "label": None, "truncation": None, "format": "images"}
    api = httpx.post(video_url + "api/generate", json=body, timeout=60).json()
    assert api["media_type"] == "image/gif" and src == "data:image/gif;base64," + api["images"][1]
    assert page.eval_on_selector_all("#grid img", "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
    # the browser decodes every frame of the clip, and they differ: it moves
    frames = page.evaluate(DECODED_FRAMES, "#grid img")  # the first clip
    assert len(frames) == 8 and len(set(frames)) > 1
    # and the page animates it: two screenshots of one clip half a second apart differ
    first = page.locator("#grid img").nth(1).screenshot()
    page.wait_for_timeout(500)
    assert page.locator("#grid img").nth(1).screenshot() != first
    assert not errors, errors
    context.close()

"""The ``ganforge serve`` web page in a real browser (Chromium via Playwright) against a real server.

Skipped only where no browser exists: install one with ``apt-get install chromium``
(the tests launch ``/usr/bin/chromium``; never ``playwright install``).
"""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from PIL import Image

import ganforge
from ganforge.serve import create_app

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

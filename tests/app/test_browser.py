"""The page in a real browser: Debian's chromium, headless, driven by Playwright for Python."""

import shutil
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="chromium is not installed: `make test` installs Debian's chromium")
playwright = pytest.importorskip("playwright.sync_api")

# What the <video> element is doing: Chromium counts the audio bytes it decoded, so sound is really there.
PLAYBACK = """() => {
    const video = document.querySelector('#live video');
    return video && {time: video.currentTime, audioBytes: video.webkitAudioDecodedByteCount, paused: video.paused};
}"""


@pytest.fixture
def page(server):
    outside = []  # requests that leave this machine: there must be none
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.on("request", lambda request: None if request.url.startswith((server, "data:", "blob:")) else outside.append(request.url))
        page.goto(server, wait_until="networkidle")
        yield page
        browser.close()
    assert not outside, f"the page reached outside the machine: {outside[:3]}"


def test_generate_plays_video_with_sound_while_it_is_made(page, tmp_path):
    assert page.get_by_text("untrained weights: pictures are noise (no trained pipeline was loaded)").is_visible()
    page.locator("#seconds input").fill("6")
    page.locator("#generate").click()
    page.wait_for_function(f"() => ({PLAYBACK})()?.time > 0.5", timeout=60_000)
    playback = page.evaluate(PLAYBACK)
    assert playback["audioBytes"] > 0 and not playback["paused"]
    assert "real time" in page.locator("#status").inner_text()  # progress: chunks, seconds, speed
    page.screenshot(path=tmp_path / "playing.png", full_page=True)
    assert (tmp_path / "playing.png").stat().st_size > 0
    page.locator("#stop").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('Stopped')", timeout=30_000)
    assert page.locator("#download a").first.get_attribute("href").endswith(".mp4")


def test_a_silent_video_given_to_voice_plays_with_sound(page, tmp_path):
    from avgen.media import write_mp4
    from avgen.world.clip import sample_clip

    silent = sample_clip(4, split="held-out").render(0, 48)  # 3 s
    write_mp4(tmp_path / "silent.mp4", silent.frames, None, 16, 16000)
    page.locator("#voice input[type=file]").set_input_files(tmp_path / "silent.mp4")
    page.locator("#generate").click()
    page.wait_for_function(f"() => ({PLAYBACK})()?.time > 0.5", timeout=60_000)
    assert page.evaluate(PLAYBACK)["audioBytes"] > 0  # the given picture came back with a voice
    done = "() => document.querySelector('#status').innerText.includes('Done (voicing the given video)')"
    page.wait_for_function(done, timeout=60_000)
    assert page.locator("#download a").first.get_attribute("href").endswith(".mp4")


def test_bad_input_shows_a_message_in_the_page(page, tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    Image.new("RGB", (16, 16), "red").save(tmp_path / "tiny.png")
    prompt, seconds = page.locator("#prompt textarea"), page.locator("#seconds input")
    good_prompt = prompt.input_value()
    upload = page.locator("#reference input[type=file]").set_input_files
    steps = [
        (lambda: prompt.fill(""), True, "the prompt is empty"),
        (lambda: prompt.fill("A red dragon"), True, "unknown words in prompt: dragon"),
        (lambda: (prompt.fill(good_prompt), seconds.fill("0")), True, "length must be more than 0"),
        (lambda: seconds.fill("2"), False, None),
        (lambda: upload(tmp_path / "notes.png"), False, "the reference file is not an image"),
        (lambda: page.locator("#reference button[aria-label='Clear']").click(), False, None),
        (lambda: upload(tmp_path / "tiny.png"), False, "it must be at least 64x64"),
    ]
    for change, generate, message in steps:
        change()
        if generate:
            page.locator("#generate").click()
        if message:
            shown = "message => [...document.querySelectorAll('.toast-body')].some(t => t.innerText.includes(message))"
            page.wait_for_function(shown, arg=message, timeout=30_000)
    assert "Traceback" not in page.locator("body").inner_text()
    page.screenshot(path=tmp_path / "errors.png", full_page=True)

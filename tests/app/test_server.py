"""The app as a client sees it: `python app.py` on loopback, driven through gradio_client."""

import threading
import time

import httpx
import pytest
from PIL import Image

from avgen.media import probe

from .conftest import MAX_SECONDS, PROMPT

gradio_client = pytest.importorskip("gradio_client")


def submit(client, prompt=PROMPT, image=None, seconds=2.0, until_stopped=False, mode="fast", seed=0):
    return client.submit(prompt, image, seconds, until_stopped, mode, seed, api_name="/generate")


def wait_for_outputs(job, count: int, timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    while len(job.outputs()) < count:
        assert not job.done() or len(job.outputs()) >= count, f"job ended after {len(job.outputs())} outputs"
        assert time.monotonic() < deadline, f"fewer than {count} outputs after {timeout} s"
        time.sleep(0.05)
    return job.outputs()


def streamed(outputs) -> list[str]:
    """The playlist paths of the outputs that carried a new video segment."""
    return [video for video, _, _ in outputs if isinstance(video, str) and video.endswith(".m3u8")]


def playlist_seconds(path: str) -> float:
    with open(path) as playlist:
        return sum(float(line.split(":", 1)[1].split(",")[0]) for line in playlist if line.startswith("#EXTINF:"))


def test_page_is_served_with_the_untrained_banner(server):
    page = httpx.get(server + "config", timeout=10).text
    assert "untrained weights: pictures are noise (no trained pipeline was loaded)" in page


def test_generation_streams_segments_and_ends_with_an_h264_aac_mp4(client):
    job = submit(client, seconds=3.0)
    _, status, mp4 = job.result(timeout=120)
    outputs = job.outputs()
    playlists = streamed(outputs)
    assert len(playlists) >= 3
    assert abs(playlist_seconds(playlists[-1]) - 3.0) < 0.1  # every segment reached the page's stream
    assert all("**Generating** (of 3 s)" in status for _, status, _ in outputs[:-1])
    assert "**Done**" in status and "real time" in status
    info = probe(mp4)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert abs(info.duration - 3.0) < 0.1


def test_stop_ends_an_endless_generation_and_leaves_the_partial_mp4(client):
    job = submit(client, until_stopped=True)
    wait_for_outputs(job, 3)
    stopped_at = time.monotonic()
    client.predict(api_name="/stop")
    _, status, mp4 = job.result(timeout=60)
    assert time.monotonic() - stopped_at < 10
    assert "**Stopped** (until stopped)" in status
    assert 0.5 < probe(mp4).duration < MAX_SECONDS


def test_prompt_edited_during_playback_is_used_from_the_next_chunk(client):
    edited = "A blue square face with sleepy eyes talks in a squeaky voice on a sand background."
    job = submit(client, until_stopped=True)
    wait_for_outputs(job, 1)
    client.predict("A blue square face with wi", api_name="/edit_prompt")  # half-typed: reported, not used
    count = len(wait_for_outputs(job, len(job.outputs()) + 2))
    assert "edit not applied yet: unknown words in prompt: wi" in job.outputs()[count - 1][1]
    client.predict(edited, api_name="/edit_prompt")
    deadline = time.monotonic() + 30
    while f"Prompt in use: {edited}" not in job.outputs()[-1][1]:
        assert time.monotonic() < deadline, "the edited prompt was never used"
        time.sleep(0.05)
    client.predict(api_name="/stop")
    _, status, _ = job.result(timeout=60)
    assert f"Prompt in use: {edited}" in status and "edit not applied" not in status


def test_two_clients_at_once_both_finish_one_after_the_other(server):
    from gradio_client import Client

    finished = {}

    def run(name):
        job = submit(Client(server, verbose=False), seconds=1.5)
        _, _, mp4 = job.result(timeout=120)
        finished[name] = (time.monotonic(), probe(mp4).duration)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("first", "second")]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=150)
    assert set(finished) == {"first", "second"}
    assert all(abs(duration - 1.5) < 0.1 for _, duration in finished.values())
    # one at a time: the later one finished about a whole generation after the earlier one
    first, second = sorted(end - began for end, _ in finished.values())
    assert second - first > 0.5 * first


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    Image.new("RGB", (16, 16), "red").save(tmp_path / "tiny.png")
    return tmp_path


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"prompt": ""}, "the prompt is empty"),
        ({"prompt": "A red dragon breathes fire"}, "unknown words in prompt: breathes, dragon, fire"),
        ({"seconds": 0}, "length must be more than 0 and at most 60 seconds, got 0"),
        ({"seconds": 10_000}, "length must be more than 0 and at most 60 seconds, got 10000"),
        ({"image": "notes.png"}, "the reference file is not an image"),
        ({"image": "tiny.png"}, "the reference image is 16x16 pixels; it must be at least 64x64"),
    ],
)
def test_bad_input_is_a_one_line_error(client, bad_files, arguments, message):
    if "image" in arguments:
        arguments["image"] = gradio_client.handle_file(str(bad_files / arguments["image"]))
    with pytest.raises(gradio_client.exceptions.AppError, match=message) as caught:
        submit(client, **arguments).result(timeout=60)
    assert "Traceback" not in str(caught.value)

"""Benchmark of the app as its users meet it: how soon picture and sound arrive, and whether playback keeps up.

    python -m avgen.app.bench [--seconds 10] [--runs 3] [--model PATH] [--no-browser] [--json]

Starts the app on a free loopback port (untrained tiny components unless --model is given)
and, per run, presses Generate twice over:
- through gradio_client: seconds until the first streamed segment arrives, and the rate at
  which media reaches the client afterwards (seconds of audio + video per wall second,
  summed from the playlist's segment durations; >= 1 keeps up with playback);
- in headless Chromium (when installed): seconds from the click until the page's <video>
  plays with decoded sound, and how fast its clock then advances (1 = never stalls).
Figures are medians over the runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import time

from avgen.app.config import AppConfig
from avgen.app.server import start

PROMPT = "A red round face with glasses talks in a deep voice on a navy background."
CHROMIUM = "/usr/bin/chromium"

# Chromium's own count of decoded audio bytes: sound is really playing, not just present.
PLAYBACK = """() => {
    const video = document.querySelector('#live video');
    return video ? {time: video.currentTime, audioBytes: video.webkitAudioDecodedByteCount} : null;
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def playlist_seconds(path: str) -> float:
    """Media in a downloaded HLS playlist: the sum of its #EXTINF durations."""
    with open(path) as playlist:
        return sum(float(line.split(":", 1)[1].split(",")[0]) for line in playlist if line.startswith("#EXTINF:"))


def client_run(url: str, seconds: float) -> dict:
    """Seconds to the first streamed segment, and the media rate after it, seen by gradio_client."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    began = time.perf_counter()
    job = client.submit(PROMPT, None, seconds, False, "fast", 0, api_name="/generate")
    arrivals = []  # (wall seconds, media seconds available to the client)
    seen = 0
    while not job.done() or seen < len(job.outputs()):
        outputs = job.outputs()
        for video, _, _ in outputs[seen:]:
            if isinstance(video, str) and video.endswith(".m3u8"):
                arrivals.append((time.perf_counter() - began, playlist_seconds(video)))
        seen = len(outputs)
        time.sleep(0.01)
    job.result()
    (first_wall, first_media), (last_wall, last_media) = arrivals[0], arrivals[-1]
    rate = (last_media - first_media) / (last_wall - first_wall) if last_wall > first_wall else float("nan")
    return {"first_segment_s": first_wall, "media_rate": rate}


def browser_run(browser, url: str, seconds: float) -> dict:
    """Seconds from the click to picture + sound playing in the page, and the <video> clock's rate after it."""
    page = browser.new_page()
    try:
        page.goto(url, wait_until="networkidle")
        page.locator("#seconds input").fill(f"{seconds:g}")
        page.locator("#generate").click()
        began = time.perf_counter()
        playing = f"() => {{ const p = ({PLAYBACK})(); return p && p.time > 0 && p.audioBytes > 0; }}"
        page.wait_for_function(playing, polling=10, timeout=120_000)
        first = time.perf_counter() - began
        # Until the video has played (nearly) all of it, or a stall outlasts the generation.
        page.wait_for_function(f"() => ({PLAYBACK})().time >= {seconds - 0.5}", polling=50, timeout=int(seconds * 20_000))
        played = page.evaluate(PLAYBACK)["time"]
        return {"first_picture_and_sound_s": first, "playback_rate": played / (time.perf_counter() - began - first)}
    finally:
        page.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m avgen.app.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each generation (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="generations per measurement (default 3)")
    parser.add_argument("--model", help="pipeline folder (default: untrained components of the tiny sizes)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as the app)")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium measurement")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    config = AppConfig(model=args.model, untrained=args.model is None, port=free_port(), threads=args.threads)
    app = start(config, block=False)
    url = f"http://127.0.0.1:{config.port}/"
    try:
        client_runs = [client_run(url, args.seconds) for _ in range(args.runs)]
        browser_runs = []
        if not args.no_browser and shutil.which("chromium"):
            from playwright.sync_api import sync_playwright

            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM)
                browser_runs = [browser_run(browser, url, args.seconds) for _ in range(args.runs)]
                browser.close()
    finally:
        app.close()

    figures = {"model": args.model or "untrained tiny components", "seconds": args.seconds, "runs": args.runs, "threads": args.threads}
    for runs in (client_runs, browser_runs):
        for name in runs[0] if runs else ():
            figures[name] = round(statistics.median(run[name] for run in runs), 3)
    if not browser_runs:
        figures["browser"] = "skipped (no chromium, or --no-browser)"
    print(json.dumps(figures, indent=2) if args.json else "\n".join(f"{name:28s} {value}" for name, value in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

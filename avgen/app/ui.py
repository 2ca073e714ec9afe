"""The Gradio page: prompt, reference image, length, mode and seed in; live video with sound out.

Generate runs on Gradio's queue (`AppConfig.concurrency_limit` at once, `max_queue` waiting);
Stop and prompt edits skip the queue and reach the running generation through `Sessions`,
so they act within one chunk even while the queue is busy.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
from pathlib import Path

import gradio as gr

from avgen.app.config import AppConfig
from avgen.app.generation import Controls, Generation, Progress
from avgen.app.inputs import GenerationRequest, load_reference, parse_request
from avgen.app.model import AppModel
from avgen.media import MediaError

UNTRAINED_BANNER = "⚠️ **untrained weights: pictures are noise (no trained pipeline was loaded)**"
CSS = """
#untrained-banner { background: #fff3cd; border: 1px solid #e0a800; border-radius: 6px; padding: 4px 12px; }
#live video { image-rendering: pixelated; }  /* 64x64 frames: show the pixels, not a blur */
"""


def example_prompts(count: int = 4) -> list[str]:
    """Prompts of held-out characters (never seen in training), in different phrasings and events."""
    from avgen.world import EVENTS, Character, describe, split_ids

    ids = split_ids("held-out")
    events = [frozenset(), frozenset({EVENTS[0]}), frozenset({EVENTS[1]}), frozenset(EVENTS)]
    step = len(ids) // count
    return [describe(Character.from_id(ids[i * step]), events[i % len(events)], phrasing=i) for i in range(count)]


class Sessions:
    """The `Controls` of each browser session's generation, keyed by Gradio's session hash.

    Pressing Generate arms fresh controls before the job enters the queue, so a Stop pressed
    while it waits is not lost; the job claims them when it starts.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._armed: dict[str, Controls] = {}
        self._running: dict[str, Controls] = {}

    def arm(self, session: str) -> None:
        with self._lock:
            self._armed[session] = Controls()

    def claim(self, session: str) -> Controls:
        """The armed controls (a client calling the API directly has none: fresh ones)."""
        with self._lock:
            controls = self._armed.pop(session, None) or Controls()
            self._running[session] = controls
            return controls

    def release(self, session: str, controls: Controls) -> None:
        with self._lock:
            if self._running.get(session) is controls:
                del self._running[session]

    def stop(self, session: str) -> None:
        with self._lock:
            for controls in (self._armed.get(session), self._running.get(session)):
                if controls is not None:
                    controls.stop.set()

    def edit_prompt(self, session: str, prompt: str) -> None:
        """Pass an edit on; a job still waiting in the queue applies it after its first chunk."""
        with self._lock:
            for controls in (self._armed.get(session), self._running.get(session)):
                if controls is not None:
                    controls.edit_prompt(prompt)


def status_text(progress: Progress, state: str, request: GenerationRequest) -> str:
    """The status box: what is happening, how fast, and the prompt in use."""
    if request.video is not None:
        target = "voicing the given video"
    else:
        target = "until stopped" if request.seconds is None else f"of {request.seconds:g} s"
    lines = [f"**{state}** ({target}) · {progress.summary()}", f"Prompt in use: {progress.prompt}"]
    if progress.prompt_note:
        lines.append(f"⚠️ {progress.prompt_note}")
    if progress.request_note:
        lines.append(f"ℹ️ {progress.request_note}")
    return "\n\n".join(lines)


def build_app(model: AppModel, config: AppConfig) -> gr.Blocks:
    """The page, with its queue set up; call `.launch()` on the result (see `launch_options`)."""
    sessions = Sessions()
    work_dir = Path(tempfile.mkdtemp(prefix="avgen-app-"))
    run_numbers = itertools.count()

    def preview(path):
        if path is None:
            return None
        try:
            return load_reference(path, model.frame_size)
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from None

    def arm(request: gr.Request):
        sessions.arm(request.session_hash)

    def generate(prompt, reference, seconds, until_stopped, mode, seed, voice=None, request: gr.Request = None):
        controls = sessions.claim(request.session_hash)
        try:
            if controls.stop.is_set():
                yield None, "**Stopped** before it started.", None
                return
            try:
                parsed = parse_request(
                    prompt, reference, seconds, until_stopped, mode, seed, voice,
                    modes=config.modes, max_seconds=config.max_seconds, frame_size=model.frame_size,
                )  # fmt: skip
                folder = work_dir / f"run-{next(run_numbers)}"
                generation = Generation(model, parsed, config, controls, folder)
            except ValueError as error:
                raise gr.Error(str(error), print_exception=False) from None
            try:
                for segment in generation.segments():
                    yield str(segment.path), status_text(generation.progress, "Generating", parsed), gr.skip()
                mp4 = generation.save_mp4(folder / f"avgen-seed{parsed.seed}.mp4")
                state = "Stopped" if generation.progress.stopped else "Done"
                yield gr.skip(), status_text(generation.progress, state, parsed), None if mp4 is None else str(mp4)
            except MediaError as error:
                raise gr.Error(str(error), print_exception=False) from None
            finally:
                generation.close()
                # Gradio has copied each yielded file into its cache before asking for the next.
                shutil.rmtree(folder, ignore_errors=True)
        finally:
            sessions.release(request.session_hash, controls)

    def stop(request: gr.Request):
        sessions.stop(request.session_hash)

    def edit_prompt(prompt, request: gr.Request):
        sessions.edit_prompt(request.session_hash, prompt)

    modes = [(f"{name}: {mode.description}", name) for name, mode in config.modes.items()]
    with gr.Blocks(title="avgen", delete_cache=(3600, 3600)) as app:
        gr.Markdown("# avgen: a talking character, generated while you watch and listen")
        if not model.trained:
            gr.Markdown(UNTRAINED_BANNER, elem_id="untrained-banner")
        gr.Markdown(f"Model: `{model.source}`", elem_id="model-source")
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(
                    label="Prompt", lines=2, value=example_prompts(1)[0], elem_id="prompt",
                    info="Edit it while the video plays: the change applies from the next chunk.",
                )  # fmt: skip
                gr.Examples(examples=[[p] for p in example_prompts()], inputs=[prompt], label="Held-out characters")
                with gr.Row():
                    reference = gr.File(label="Reference character image (optional)", file_types=["image"], elem_id="reference")
                    first_frame = gr.Image(label="First frame", interactive=False, height=128)
                voice = gr.File(
                    label="Video to voice (optional): shown as it is, the model makes its sound; its length is the video's",
                    file_types=["video"], elem_id="voice",
                )  # fmt: skip
                with gr.Row():
                    seconds = gr.Number(
                        label=f"Length in seconds (up to {config.max_seconds:g})", value=config.default_seconds, elem_id="seconds"
                    )
                    until_stopped = gr.Checkbox(label="Until stopped", value=False)
                mode = gr.Radio(modes, value=next(iter(config.modes)), label="Mode")
                seed = gr.Number(label="Seed", value=0, precision=0)
                with gr.Row():
                    generate_button = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop_button = gr.Button("Stop", variant="stop", elem_id="stop")
            with gr.Column():
                video = gr.Video(label="Live", streaming=True, autoplay=True, elem_id="live")
                status = gr.Markdown("Press Generate.", elem_id="status")
                download = gr.File(label="Download mp4", elem_id="download")

        # Queued, as errors of unqueued events show no message; no limit, so it never waits behind a generation.
        reference.upload(preview, reference, first_frame, concurrency_limit=None, api_visibility="private")
        reference.clear(lambda: None, None, first_frame, queue=False, api_visibility="private")
        # .change, not .input: picking an example while it plays steers it too.
        prompt.change(edit_prompt, prompt, None, queue=False, api_name="edit_prompt", show_progress="hidden")
        stop_button.click(stop, None, None, queue=False, api_name="stop")
        generate_button.click(arm, None, None, queue=False, api_visibility="private").then(
            generate,
            [prompt, reference, seconds, until_stopped, mode, seed, voice],
            [video, status, download],
            api_name="generate",
            concurrency_limit=config.concurrency_limit,
        )
    app.queue(max_size=config.max_queue, default_concurrency_limit=config.concurrency_limit)
    return app


def launch_options(config: AppConfig) -> dict:
    """Keyword arguments of `Blocks.launch` for an offline, loopback server: no share link, no remote fonts."""
    return dict(
        server_name=config.host,
        server_port=config.port,
        share=False,
        ssr_mode=False,
        max_file_size=config.max_upload,
        css=CSS,
        theme=gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]),
    )

"""One streamed generation for the app: pipeline chunks in, segments for Gradio's streaming video and an mp4 out.

Gradio-free, so that tests and the benchmark can drive it directly. The generating thread
reads its `Controls` between chunks: a stop request ends the stream within one chunk, and a
prompt edit is applied before the next chunk (or reported, when the encoder cannot read it).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avgen.app.config import AppConfig
from avgen.app.inputs import GenerationRequest
from avgen.app.model import AppModel
from avgen.app.segments import write_segment
from avgen.media import write_mp4

_END = object()  # marks the end of the segment queue


class Controls:
    """Requests from other threads (the Stop button, prompt edits), read by the generation between chunks."""

    def __init__(self):
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._prompt_edit: str | None = None

    def edit_prompt(self, prompt: str) -> None:
        with self._lock:
            self._prompt_edit = prompt

    def take_prompt_edit(self) -> str | None:
        """The latest edit not yet taken, or None."""
        with self._lock:
            edit, self._prompt_edit = self._prompt_edit, None
            return edit


@dataclass
class Progress:
    """How far a generation has got, for the page and the benchmark."""

    prompt: str
    chunks: int = 0
    segments: int = 0
    seconds: float = 0.0  # audio + video made
    wall_seconds: float = 0.0  # since the generation was asked for
    first_segment_wall_seconds: float | None = None
    prompt_note: str = ""  # why the latest prompt edit is not in use
    request_note: str = ""  # what of the prompt in use the model cannot show
    stopped: bool = False

    @property
    def speed(self) -> float:
        """Seconds of audio + video made per second of wall time (>= 1: faster than playback)."""
        return self.seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for the page."""
        line = f"{self.chunks} chunks · {self.seconds:.2f} s made in {self.wall_seconds:.1f} s · {self.speed:.2f}× real time"
        if self.first_segment_wall_seconds is not None:
            line += f" · first segment after {self.first_segment_wall_seconds:.1f} s"
        return line


@dataclass(frozen=True)
class Segment:
    """A written segment (see avgen.app.segments) and the seconds of audio + video it holds."""

    path: Path
    seconds: float


class Generation:
    """Stream a request from the model as segments; `save_mp4` writes whatever was made.

    Starting one checks the inputs the pipeline checks (prompt words, image size) and raises
    their ValueError before any work is done.
    """

    def __init__(self, model: AppModel, request: GenerationRequest, config: AppConfig, controls: Controls, folder: Path):
        self._began = time.perf_counter()
        mode = config.modes[request.mode]
        self._pipe = model.pipelines[mode.pipeline]
        self._config = config
        self._controls = controls
        self._folder = folder
        self._closing = threading.Event()  # the consumer left: stop without counting as a user's Stop
        self._worker: threading.Thread | None = None
        self._frames: list[np.ndarray] = []  # (F, H, W, 3) uint8 per chunk, for the final mp4
        self._audio: list[np.ndarray | None] = []  # (C, S) float32 per chunk; None from a video-only model
        self.request = request
        self.progress = Progress(prompt=request.prompt, request_note=self._pipe.unsupported_requests(request.prompt) or "")
        height, width = model.frame_size
        if request.video is not None:
            seconds = None  # the video's length
        else:
            seconds = request.seconds or config.max_seconds  # "until stopped" still ends at the cap
        self._stream = self._pipe.stream(
            request.prompt,
            seconds=seconds,
            num_inference_steps=mode.num_inference_steps,
            guidance_scale=mode.guidance_scale,
            image=request.image,
            video=request.video,
            generator=torch.Generator().manual_seed(request.seed),
            height=height,
            width=width,
        )

    def segments(self) -> Iterator[Segment]:
        """Segments as they are made: the first after `first_segment_seconds`, then every `segment_seconds`.

        The model runs on a thread of its own, so that it keeps working while the caller
        muxes and sends a segment; leaving the loop early stops it within one chunk.
        """
        made: queue.SimpleQueue = queue.SimpleQueue()  # Segments, then an exception or _END
        self._worker = threading.Thread(target=self._produce, args=(made,), name="avgen-generation", daemon=True)
        self._worker.start()
        try:
            while (item := made.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def _produce(self, made: queue.SimpleQueue) -> None:
        try:
            for segment in self._cut_segments():
                made.put(segment)
        except BaseException as error:  # handed to the consumer's thread, which raises it
            made.put(error)
        finally:
            made.put(_END)

    def _cut_segments(self) -> Iterator[Segment]:
        fps, sample_rate = self._pipe.fps, self._pipe.sample_rate
        frames: list[np.ndarray] = []
        audio: list[np.ndarray] = []
        target = self._config.first_segment_seconds
        for chunk in self._stream:
            frames.append(chunk.frames[0])  # (F, H, W, 3) of batch item 0, the only one
            chunk_audio = chunk.audio[0] if chunk.audio is not None else None  # (C, S)
            audio.append(chunk_audio)
            self._record(chunk.frames[0], chunk_audio, fps)
            if self._controls.stop.is_set():
                self.progress.stopped = True
                break
            if self._closing.is_set():
                break
            self._apply_prompt_edit()
            made = sum(len(f) for f in frames) / fps
            if made >= target - 1e-9:
                yield self._write(frames, audio, fps, sample_rate)
                frames, audio = [], []
                target = self._config.segment_seconds
        self._stream.close()  # on this thread: a generator cannot be closed while another thread runs it
        if frames and not self._closing.is_set():
            yield self._write(frames, audio, fps, sample_rate)

    def recorded(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Everything made so far: frames (F, H, W, 3) uint8 and audio (C, S) float32 (None from a
        video-only model); None before the first chunk."""
        if not self._frames:
            return None
        return np.concatenate(self._frames), _joined(self._audio)

    def save_mp4(self, path: Path) -> Path | None:
        """Write all audio + video made so far as an H.264 + AAC mp4; None when nothing was made."""
        if (recorded := self.recorded()) is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_mp4(path, *recorded, self._pipe.fps, self._pipe.sample_rate, metadata={"comment": self.request.prompt})

    def close(self) -> None:
        """End the model's work within one chunk (the files written stay, in the caller's folder)."""
        self._closing.set()
        if self._worker is not None:
            self._worker.join()

    def _record(self, frames: np.ndarray, audio: np.ndarray | None, fps: int) -> None:
        self._frames.append(frames)
        self._audio.append(audio)
        self.progress.chunks += 1
        self.progress.seconds += len(frames) / fps
        self.progress.wall_seconds = time.perf_counter() - self._began

    def _apply_prompt_edit(self) -> None:
        edit = self._controls.take_prompt_edit()
        if edit is None:
            return
        if edit.strip() == self.progress.prompt:  # edited back to the prompt in use
            self.progress.prompt_note = ""
            return
        try:
            self._stream.set_prompt(edit.strip())
        except ValueError as error:  # half-typed words are common; keep the last good prompt
            self.progress.prompt_note = f"edit not applied yet: {error}"
            return
        self.progress.prompt, self.progress.prompt_note = edit.strip(), ""
        self.progress.request_note = self._pipe.unsupported_requests(edit.strip()) or ""

    def _write(self, frames: list[np.ndarray], audio: list[np.ndarray | None], fps: int, sample_rate: int | None) -> Segment:
        self._folder.mkdir(parents=True, exist_ok=True)
        path = self._folder / f"segment-{self.progress.segments:05d}.mp4"
        write_segment(path, np.concatenate(frames), _joined(audio), fps, sample_rate)
        self.progress.segments += 1
        if self.progress.first_segment_wall_seconds is None:
            self.progress.first_segment_wall_seconds = time.perf_counter() - self._began
        return Segment(path=path, seconds=sum(len(f) for f in frames) / fps)


def _joined(audio: list[np.ndarray | None]) -> np.ndarray | None:
    """Chunks' (C, S) audio joined along time; None for a video-only model's."""
    return None if audio[0] is None else np.concatenate(audio, axis=-1)

"""Settings of the Gradio app, in one dataclass that `python app.py` fills from its flags."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mode:
    """How one of the page's generation modes runs the model."""

    pipeline: str  # "rolling" (RollingForcingPipeline) or "mutual" (MutualForcingPipeline)
    num_inference_steps: int
    guidance_scale: float | None = None  # None: the folder's
    description: str = ""


def default_modes() -> dict[str, Mode]:
    return {
        # Rolling Forcing's joint window: one forward per chunk, the real-time mode.
        "fast": Mode("rolling", 4, description="rolling window, 4 steps: plays as it is made"),
        # Mutual Forcing's multi-step mode: 50 forwards per chunk, far slower than real time on a CPU.
        "quality": Mode("mutual", 50, description="50 steps per chunk: slower than real time on a CPU"),
    }


@dataclass(frozen=True)
class AppConfig:
    """Everything the app needs to know; the defaults are what `python app.py` uses.

    Args:
        model: pipeline folder; None uses weights/avgen-tiny when it holds a whole pipeline,
            and otherwise untrained components of the same sizes (the page says so).
        untrained: use the untrained components even where weights exist (tests, benchmarks).
        host, port: where the server listens; loopback only unless asked otherwise.
        device, dtype: where and in what precision the model runs (torch names: "cpu", "float32").
        threads: torch CPU threads; None leaves torch's default. One, because the tiny model's
            ops are too small to share out and ffmpeg needs a core for the segments; with both
            cores of a 2-core machine busy elsewhere, two threads streamed 30x slower than one.
        concurrency_limit: generations running at once; others wait in the queue.
        max_queue: waiting generations beyond which new ones are turned away with a message.
        max_seconds: longest generation, also the end of an "until stopped" one.
        default_seconds: the length the page starts with.
        first_segment_seconds, segment_seconds: media per streamed segment; the first is short
            so that picture and sound start soon, later ones longer to spend less on muxing.
        compile: compile the transformer's per-token stages (torch.compile; loading pays for it, see `warm_up`).
        vae_dtype: the video codec's dtype: "auto" (bf16 where the hardware computes it natively), "fp32", "bf16".
        modes: the choices of the page's mode radio.
        max_upload: largest reference image file accepted (Gradio size string).
    """

    model: str | None = None
    untrained: bool = False
    host: str = "127.0.0.1"
    port: int = 7860
    device: str = "cpu"
    dtype: str = "float32"
    threads: int | None = 1
    compile: bool = False
    vae_dtype: str = "auto"
    concurrency_limit: int = 1
    max_queue: int = 8
    max_seconds: float = 600.0
    default_seconds: float = 10.0
    first_segment_seconds: float = 0.25
    segment_seconds: float = 1.0
    modes: dict[str, Mode] = field(default_factory=default_modes)
    max_upload: str = "10mb"

    def __post_init__(self):
        if self.concurrency_limit < 1:
            raise ValueError(f"concurrency_limit must be >= 1, got {self.concurrency_limit}")
        if self.max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {self.max_queue}")
        if self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds:g}")
        if not 0 < self.default_seconds <= self.max_seconds:
            raise ValueError(f"default_seconds must be > 0 and <= max_seconds ({self.max_seconds:g}), got {self.default_seconds}")
        if self.first_segment_seconds <= 0 or self.segment_seconds <= 0:
            raise ValueError("first_segment_seconds and segment_seconds must be > 0")
        if self.untrained and self.model is not None:
            raise ValueError("give either a model folder or untrained, not both")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

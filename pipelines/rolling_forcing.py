"""RollingForcingPipeline: a window of chunks denoised jointly at rising noise levels.

Rolling Forcing (DESIGN.md): the window holds as many chunks as there are noise levels; each
forward moves every chunk one level cleaner with attention relaxed inside the window, the
oldest chunk becomes final and is emitted, its clean keys/values are written to the cache
(attention sink + ring buffer) and fresh noise enters. One forward + one refresh per chunk.
"""

from __future__ import annotations

from avgen.pipelines.streaming import AVStreamingPipeline


class RollingForcingPipeline(AVStreamingPipeline):
    """Streaming few-step generation with Rolling Forcing's joint window.

        pipe = RollingForcingPipeline.from_pretrained("weights/avgen-tiny")
        for chunk in pipe.stream("A red round face ...", seconds=30):
            ...

    `window` defaults to the folder's (a converted chunk-wise checkpoint's is 1), else to
    `num_inference_steps` (one level per chunk in the window); a window of 1 is plain
    chunk-wise few-step generation. Voicing a given video, the folder's `dub_window` comes first.
    """

    def schedule(self, num_inference_steps: int, window: int | None, dubbing: bool = False) -> tuple[int, bool]:
        if window is None:
            window = (self.config.dub_window if dubbing else None) or self.config.window or num_inference_steps
        return window, True

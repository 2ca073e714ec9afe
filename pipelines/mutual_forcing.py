"""MutualForcingPipeline: chunk-wise causal generation in few-step or multi-step mode of one model.

Mutual Forcing trains one set of weights for two modes: few-step (4-8 jumps, the network
told each jump's size d) and multi-step (~50 small Euler steps with d = 0, optionally with
classifier-free guidance). Each chunk is denoised completely, then its clean keys/values
are written to the cache and the next chunk starts.
"""

from __future__ import annotations

from avgen.pipelines.streaming import AVStreamingPipeline

FEW_STEP_MAX = 8


class MutualForcingPipeline(AVStreamingPipeline):
    """Chunk-wise generation; `num_inference_steps` <= 8 uses the few-step mode, more the multi-step mode.

        pipe = MutualForcingPipeline.from_pretrained("weights/avgen-tiny")
        quick = pipe("A red round face ...", seconds=10, num_inference_steps=4)
        careful = pipe("A red round face ...", seconds=10, num_inference_steps=50, guidance_scale=3.0)
    """

    def schedule(self, num_inference_steps: int, window: int | None, dubbing: bool = False) -> tuple[int, bool]:
        if window not in (None, 1):
            raise ValueError(f"MutualForcingPipeline generates one chunk at a time: window must be 1, got {window}")
        return 1, num_inference_steps <= FEW_STEP_MAX

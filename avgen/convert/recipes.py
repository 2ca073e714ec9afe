"""The official sampling settings of each checkpoint family `avgen convert` knows.

A recipe is what the family's own inference script does, written as avgen's folder config:
the timesteps and their shift (scheduler), the chunk size (transformer), the rollout window,
the KV cache and what each pass sees (pipeline), the default length, and which container of
the released file holds the weights that script loads. Sources (official repositories):
Self-Forcing 33593df, RollingForcing a1477d0, CausVid ca21150, LongLive v1.0 e52d9ef,
Causal-Forcing 1fc7bbc (configs/*.yaml and pipeline/*inference.py of each).

Units: chunks of `chunk_frames` latent frames. Rolling Forcing's budget of 21 latent frames
is 7 chunks of 3; LongLive's 12-frame local attention with a 3-frame sink is 4 chunks with a
sink of 1.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """One family's official inference settings (see the module docstring)."""

    name: str
    timesteps: tuple[int, ...]  # denoising_step_list, 0-1000
    warp: bool  # warp_denoising_step
    shift: float  # the training scheduler's timestep shift
    chunk_frames: int  # num_frame_per_block
    window: int  # chunks denoised jointly: len(timesteps) for Rolling Forcing, 1 chunk-wise
    sink_chunks: int
    cache_chunks: int  # ring buffer beside the sink
    attention_chunks: int  # chunks a denoising pass sees, counting its own
    refresh_attention_chunks: int  # the same for the refresh pass
    refresh_keeps_sink: bool
    sink_positions: str  # "rerotated" or "fixed"
    num_latent_frames: int  # the official default length
    weights: str = "generator_ema"  # the container the official script loads
    recache: bool = False  # rewrite the cached history under a new prompt (LongLive)
    lora_rank: int | None = None  # LoRA defaults where the family ships one (not stored in its file)
    lora_alpha: float | None = None

    def scheduler_config(self) -> dict:
        """FlowMatchShortcutScheduler's arguments: the official timesteps, their shift, the re-noise sampler."""
        return dict(shift=self.shift, sampler="renoise", timesteps=list(self.timesteps), warp=self.warp)

    def sampling_defaults(self) -> dict:
        """The pipeline's config (model_index.json): the rollout window, the cache and what each pass sees."""
        return dict(
            window=self.window,
            sink_chunks=self.sink_chunks,
            cache_chunks=self.cache_chunks,
            attention_chunks=self.attention_chunks,
            refresh_attention_chunks=self.refresh_attention_chunks,
            refresh_keeps_sink=self.refresh_keeps_sink,
            sink_positions=self.sink_positions,
            recache_on_prompt_change=self.recache,
        )


# Self-Forcing's global attention fills its 21-frame cache at frame 21 and the official
# sampler stops there; as a budget of 7 chunks it is the same up to that frame and a
# sliding 21-frame span after it (the official local_attn_size=21 setting).
_SELF_FORCING = dict(
    timesteps=(1000, 750, 500, 250), warp=True, shift=5.0, chunk_frames=3, window=1,
    sink_chunks=0, cache_chunks=6, attention_chunks=7, refresh_attention_chunks=7,
    refresh_keeps_sink=True, sink_positions="fixed", num_latent_frames=21,
)  # fmt: skip

RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe("self-forcing", **_SELF_FORCING),
        # A window of 5 chunks at rising levels; a 24-frame cache (sink + 7), 21 frames of attention
        # counting the queries: the denoising passes always see the sink (re-rotated to sit just
        # before the latest chunk), the refresh sees only the latest 21 frames.
        Recipe(
            "rolling-forcing", timesteps=(1000, 800, 600, 400, 200), warp=True, shift=5.0, chunk_frames=3, window=5,
            sink_chunks=1, cache_chunks=7, attention_chunks=7, refresh_attention_chunks=7,
            refresh_keeps_sink=False, sink_positions="rerotated", num_latent_frames=21,
        ),  # fmt: skip
        # CausVid feeds its 3 timesteps unwarped; their noise scale comes from the shift-8 table.
        Recipe(
            "causvid", **{**_SELF_FORCING, "timesteps": (1000, 757, 522), "warp": False, "shift": 8.0}, weights="generator"
        ),
        # LongLive: 12 frames of local attention including a 3-frame sink kept at its original positions;
        # a prompt change recaches the 9 frames after the sink under the new prompt.
        Recipe(
            "longlive", **{**_SELF_FORCING, "sink_chunks": 1, "cache_chunks": 3, "attention_chunks": 4,
            "refresh_attention_chunks": 4, "num_latent_frames": 120}, weights="generator", recache=True, lora_rank=256, lora_alpha=256,
        ),  # fmt: skip
        Recipe("causal-forcing", **_SELF_FORCING, weights="generator"),
        Recipe(
            "causal-forcing-framewise", **{**_SELF_FORCING, "chunk_frames": 1, "cache_chunks": 20, "attention_chunks": 21,
            "refresh_attention_chunks": 21},
        ),  # fmt: skip
    )
}


def recipe(name: str) -> Recipe:
    """The recipe of a family; a ValueError lists the known ones."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}")
    return RECIPES[name]

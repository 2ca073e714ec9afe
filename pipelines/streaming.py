"""What both avgen pipelines share: components, inputs, the streamed rollout and the outputs.

A pipeline turns a prompt into audio + video chunk by chunk:
    check inputs -> encode prompt -> noise levels -> rollout (avgen.rollout) -> streaming AV decode.
`stream()` yields `AVChunk`s as they are made (for as long as asked, or forever) and lets
the caller change the prompt between chunks; `__call__` collects the same chunks into one
output. The subclasses only choose how the rollout is scheduled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from avgen.codecs.audio import AudioCodec
from avgen.codecs.av import AVDecoder, audio_latents_per_frame, audio_lead_in
from avgen.codecs.video import VideoCodec
from avgen.models.transformer import CausalAVTransformer
from avgen.rollout import Denoiser, LatentChunk, rollout
from avgen.scheduler import FlowMatchShortcutScheduler
from avgen.text import encode_prompts

OUTPUT_TYPES = ("np", "pt", "latent")


@dataclass
class AVChunk:
    """A piece of the stream: frames (B, F, H, W, 3) uint8 and audio (B, C, S) float32 of the same span."""

    frames: np.ndarray
    audio: np.ndarray
    start_seconds: float
    index: int


@dataclass
class AVPipelineOutput(BaseOutput):
    """frames: (B, F, H, W, 3) uint8 ("np") or (B, F, 3, H, W) float in [0, 1] ("pt");
    audio: (B, C, S) float32 in [-1, 1]; for "latent", the video (B, C, f, h, w) and audio (B, C, a) latents."""

    frames: np.ndarray | torch.Tensor
    audio: np.ndarray | torch.Tensor
    fps: int
    sample_rate: int


class AVStream:
    """An ongoing generation: iterate for `AVChunk`s; `set_prompt` takes effect at the next chunk."""

    def __init__(self, chunks: Iterator[AVChunk], set_prompt: Callable[[str], None]):
        self._chunks = chunks
        self._set_prompt = set_prompt

    def __iter__(self) -> AVStream:
        return self

    def __next__(self) -> AVChunk:
        return next(self._chunks)

    def set_prompt(self, prompt: str) -> None:
        self._set_prompt(prompt)

    def close(self) -> None:
        self._chunks.close()


class AVStreamingPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->transformer->vae->audio_codec"
    _optional_components = ["tokenizer"]

    def __init__(
        self,
        transformer: CausalAVTransformer,
        vae: VideoCodec,
        audio_codec: AudioCodec,
        text_encoder,
        scheduler: FlowMatchShortcutScheduler,
        tokenizer=None,
        fps: int = 16,
    ):
        super().__init__()
        self.register_modules(
            transformer=transformer, vae=vae, audio_codec=audio_codec, text_encoder=text_encoder, scheduler=scheduler, tokenizer=tokenizer
        )
        self.register_to_config(fps=fps)

    # ------------------------------------------------------------------ derived sizes

    @property
    def fps(self) -> int:
        return self.config.fps

    @property
    def sample_rate(self) -> int:
        return self.audio_codec.config.sampling_rate

    def chunk_frames(self, index: int) -> int:
        """Pixel frames of chunk `index` (the VAE's first latent frame is a single frame)."""
        latent_frames = self.transformer.config.chunk_frames
        t = self.vae.temporal_compression
        return 1 + t * (latent_frames - 1) if index == 0 else t * latent_frames

    def num_chunks_for(self, seconds: float) -> int:
        frames = round(seconds * self.fps)
        per_chunk = self.chunk_frames(1)
        return 1 + max(0, math.ceil((frames - self.chunk_frames(0)) / per_chunk))

    # ------------------------------------------------------------------ steps of a generation

    @staticmethod
    def prompt_list(prompt: str | list[str]) -> list[str]:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
            raise ValueError("prompt must be a non-empty string (or a list of them): describe the character")
        return prompts

    def check_inputs(self, prompt, seconds, num_inference_steps, height, width, output_type, window) -> list[str]:
        prompts = self.prompt_list(prompt)
        if seconds is not None and not (isinstance(seconds, (int, float)) and seconds > 0):
            raise ValueError(f"seconds must be > 0 (or None to stream forever), got {seconds}")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if window < 1 or num_inference_steps % window:
            raise ValueError(f"window ({window}) must divide num_inference_steps ({num_inference_steps})")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")
        spatial = self.vae.spatial_compression
        if height % spatial or width % spatial:
            raise ValueError(f"height and width must be multiples of {spatial}, got {height}x{width}")
        return prompts

    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        """(B, Lt, text_dim) text embeddings."""
        return encode_prompts(self.text_encoder, self.tokenizer, prompts, self._execution_device, self.transformer.dtype)

    def prepare_image(self, image, height: int, width: int, batch: int) -> LatentChunk:
        """A reference image as clean chunk 0: its latent frame and the latents of silence."""
        if self.transformer.config.chunk_frames != 1:
            raise ValueError("a reference image needs a model with chunk_frames=1 (one latent frame per chunk)")
        if hasattr(image, "mode"):
            if image.mode != "RGB":
                raise ValueError(f"image must be RGB, got mode {image.mode!r}; convert it with image.convert('RGB')")
            image = np.asarray(image)
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be an RGB uint8 array (H, W, 3) or a PIL image, got {image.dtype} {image.shape}")
        if image.shape[:2] != (height, width):
            raise ValueError(f"image must be {width}x{height} pixels, got {image.shape[1]}x{image.shape[0]}")
        device, dtype = self._execution_device, self.vae.dtype
        pixels = torch.from_numpy(image).to(device=device, dtype=dtype).permute(2, 0, 1)[None, :, None] / 127.5 - 1.0
        video = self.vae.encode_latents(pixels).expand(batch, -1, -1, -1, -1)  # (B, C, 1, h, w)
        samples = audio_lead_in(self.vae, self.fps, self.sample_rate) + self.chunk_frames(0) * self.sample_rate // self.fps
        silence = torch.zeros(1, self.audio_codec.config.audio_channels, samples, device=device, dtype=dtype)
        audio = self.audio_codec.encode_latents(silence).expand(batch, -1, -1)
        dtype = self.transformer.dtype
        return LatentChunk(0, video.to(dtype), audio.to(dtype), level=0)

    def prepare_given_audio(self, audio, batch: int, total_frames: int | None) -> Callable[[int], torch.Tensor]:
        """Clean audio latents per chunk from a waveform (C, S) that drives the video (as long as it lasts)."""
        if not self.transformer.config.audio_conditioning:
            raise ValueError("this model was not trained to follow given audio (transformer.config.audio_conditioning is False)")
        waveform = torch.as_tensor(np.asarray(audio), dtype=self.audio_codec.dtype, device=self._execution_device)
        if waveform.ndim == 1:
            waveform = waveform[None]
        samples_per_frame = self.sample_rate // self.fps
        if total_frames is not None and waveform.shape[-1] < total_frames * samples_per_frame:
            seconds = waveform.shape[-1] / self.sample_rate
            raise ValueError(f"the given audio lasts {seconds:.2f} s, shorter than the video asked for; ask for fewer seconds")
        lead_in = audio_lead_in(self.vae, self.fps, self.sample_rate)
        # Silence after the end fills the last chunk, whose extra frames are cut from the output.
        tail = self.chunk_frames(1) * samples_per_frame
        padded = torch.nn.functional.pad(waveform[None], (lead_in, tail + (-(waveform.shape[-1] + lead_in + tail)) % self.audio_codec.hop_length))
        latents = self.audio_codec.encode_latents(padded).to(self.transformer.dtype)  # (1, C, A)
        per_chunk = self.transformer.config.chunk_frames * audio_latents_per_frame(self.vae, self.audio_codec, self.fps, self.sample_rate)

        def chunk(index: int) -> torch.Tensor:
            piece = latents[:, :, index * per_chunk : (index + 1) * per_chunk]
            if piece.shape[-1] < per_chunk:
                raise ValueError("the given audio has ended; a stream driven by audio lasts as long as the audio")
            return piece.expand(batch, -1, -1)

        return chunk

    def noise_for(self, generator, batch: int, height: int, width: int):
        """Chunk index -> fresh noise latents, drawn in chunk order from `generator`."""
        cfg = self.transformer.config
        spatial = self.vae.spatial_compression
        video_shape = (batch, cfg.video_in_channels, cfg.chunk_frames, height // spatial, width // spatial)
        audio_shape = (batch, cfg.audio_in_channels, cfg.chunk_frames * cfg.audio_latents_per_frame)
        device, dtype = self._execution_device, self.transformer.dtype

        def noise(index: int) -> tuple[torch.Tensor, torch.Tensor]:
            return (
                randn_tensor(video_shape, generator=generator, device=device, dtype=dtype),
                randn_tensor(audio_shape, generator=generator, device=device, dtype=dtype),
            )

        return noise

    # ------------------------------------------------------------------ entry points

    def schedule(self, num_inference_steps: int, window: int | None) -> tuple[int, bool]:
        """(window, few_step) of this pipeline's rollout; each pipeline decides."""
        raise NotImplementedError(f"{type(self).__name__} must define its schedule")

    @torch.no_grad()
    def stream(
        self,
        prompt: str | list[str],
        seconds: float | None = None,
        num_inference_steps: int = 4,
        guidance_scale: float = 1.0,
        negative_prompt: str = "",
        image=None,
        audio=None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        height: int = 64,
        width: int = 64,
        window: int | None = None,
        sink_chunks: int = 1,
        cache_chunks: int = 4,
        output_type: str = "np",
        callback_on_step_end: Callable | None = None,
    ) -> AVStream:
        """Start a generation and return its `AVStream` of chunks (see the module docstring).

        Args:
            seconds: length; None streams until the caller stops iterating.
            num_inference_steps: noise levels each chunk passes (4-8 few-step, ~50 multi-step).
            guidance_scale: > 1 enables classifier-free guidance against `negative_prompt`.
            image: reference character (PIL RGB or (H, W, 3) uint8), becomes the clean first chunk.
            audio: (C, S) or (S,) waveform that drives the video, for models trained for it.
            window: chunks denoised jointly (default: the pipeline's choice).
            sink_chunks, cache_chunks: KV cache layout (attention sink + ring buffer).
            callback_on_step_end: called after every forward as fn(pipe, tick, levels, {"chunks": [...]}).
        """
        window, few_step = self.schedule(num_inference_steps, window)
        prompts = self.check_inputs(prompt, seconds, num_inference_steps, height, width, output_type, window)
        batch = len(prompts)
        denoiser = Denoiser(
            self.transformer,
            self.encode_prompt(prompts),
            self.encode_prompt([negative_prompt] * batch) if guidance_scale > 1 else None,
            guidance_scale,
            sink=sink_chunks,
            cache_window=cache_chunks,
        )
        first = self.prepare_image(image, height, width, batch) if image is not None else None
        num_chunks = self.num_chunks_for(seconds) if seconds is not None else None
        total_frames = round(seconds * self.fps) if seconds is not None else None
        given_audio = self.prepare_given_audio(audio, batch, total_frames) if audio is not None else None
        levels = self.scheduler.levels(num_inference_steps, device=self._execution_device)

        def on_tick(tick: int, chunks: list[LatentChunk], new_levels: torch.Tensor) -> None:
            if callback_on_step_end is not None:
                callback_on_step_end(self, tick, new_levels, {"chunks": chunks})

        latent_chunks = rollout(
            denoiser, self.noise_for(generator, batch, height, width), levels, window, few_step,
            num_chunks=num_chunks, first=first, given_audio=given_audio, on_tick=on_tick,
        )  # fmt: skip

        def set_prompt(new_prompt: str) -> None:
            denoiser.set_prompt(self.encode_prompt(self.prompt_list(new_prompt) * batch))

        chunks = self._decoded(latent_chunks, total_frames, num_chunks, output_type)
        return AVStream(chunks, set_prompt)

    @torch.no_grad()  # on a generator, torch switches grad off only while it runs, not between chunks
    def _decoded(self, latent_chunks, total_frames, num_chunks, output_type) -> Iterator[AVChunk]:
        decoder = AVDecoder(self.vae, self.audio_codec, self.fps, self.sample_rate)
        samples_per_frame = self.sample_rate // self.fps
        emitted = 0
        # diffusers' progress_bar needs a total; an endless stream only counts chunks.
        settings = {"desc": "chunks", "unit": "chunk", **getattr(self, "_progress_bar_config", {})}
        with tqdm(total=num_chunks, **settings) as bar:
            for chunk in latent_chunks:
                if output_type == "latent":
                    frames, audio = chunk.video, chunk.audio
                else:
                    frames, audio = decoder.decode(chunk.video, chunk.audio)
                    if total_frames is not None:  # the last chunk may run past the length asked for
                        keep = min(frames.shape[1], total_frames - emitted)
                        frames, audio = frames[:, :keep], audio[..., : keep * samples_per_frame]
                yield AVChunk(frames=frames, audio=audio, start_seconds=emitted / self.fps, index=chunk.index)
                emitted += self.chunk_frames(chunk.index)
                bar.update()

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], seconds: float = 10.0, output_type: str = "np", return_dict: bool = True, **kwargs):
        """Generate `seconds` of audio + video; the arguments are those of `stream`.

        Returns:
            AVPipelineOutput (or a tuple (frames, audio) when return_dict=False).
        """
        if seconds is None:
            raise ValueError("seconds must be > 0 for __call__; use stream() to generate without end")
        chunks = list(self.stream(prompt, seconds=seconds, output_type=output_type, **kwargs))
        if output_type == "latent":
            frames = torch.cat([c.frames for c in chunks], dim=2)
            audio = torch.cat([c.audio for c in chunks], dim=2)
        else:
            frames = np.concatenate([c.frames for c in chunks], axis=1)
            audio = np.concatenate([c.audio for c in chunks], axis=-1)
            if output_type == "pt":
                frames = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float() / 255.0
                audio = torch.from_numpy(audio)
        output = AVPipelineOutput(frames=frames, audio=audio, fps=self.fps, sample_rate=self.sample_rate)
        return output if return_dict else (output.frames, output.audio)

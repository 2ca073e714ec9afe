"""What both avgen pipelines share: components, inputs, the streamed rollout and the outputs.

A pipeline turns a prompt into audio + video chunk by chunk:
    check inputs -> encode prompt -> noise levels -> rollout (avgen.rollout) -> streaming AV decode.
`stream()` yields `AVChunk`s as they are made (for as long as asked, or forever) and lets
the caller change the prompt between chunks; `__call__` collects the same chunks into one
output. The subclasses only choose how the rollout is scheduled.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput, logging
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from avgen.codecs.audio import AudioCodec
from avgen.codecs.av import AVDecoder, audio_latents_per_frame, audio_lead_in
from avgen.codecs.video import VideoCodec
from avgen.media import fit_image, read_video
from avgen.models.kv_cache import Reach
from avgen.models.transformer import CausalAVTransformer
from avgen.rollout import Denoiser, LatentChunk, rollout
from avgen.scheduler import FlowMatchShortcutScheduler
from avgen.text import SentenceTextEncoder, WorldTextEncoder, encode_prompts
from avgen.world.requests import unsupported_requests

OUTPUT_TYPES = ("np", "pt", "latent")
DEFAULT_STEPS = 4  # few-step mode, for schedulers that do not fix their own count
DEFAULT_SECONDS = 10.0  # __call__'s length when neither the call nor the folder gives one

logger = logging.get_logger(__name__)


@dataclass
class AVChunk:
    """A piece of the stream: frames (B, F, H, W, 3) uint8 and audio (B, C, S) float32 of the same span
    (None for a video-only model)."""

    frames: np.ndarray
    audio: np.ndarray | None
    start_seconds: float
    index: int


@dataclass
class AVPipelineOutput(BaseOutput):
    """frames: (B, F, H, W, 3) uint8 ("np") or (B, F, 3, H, W) float in [0, 1] ("pt");
    audio: (B, C, S) float32 in [-1, 1]; for "latent", the video (B, C, f, h, w) and audio (B, C, a) latents.
    A video-only model gives audio None and sample_rate None."""

    frames: np.ndarray | torch.Tensor
    audio: np.ndarray | torch.Tensor | None
    fps: int
    sample_rate: int | None


class AVStream:
    """An ongoing generation: iterate for `AVChunk`s; `set_prompt` takes effect at the next chunk
    (the chunk after next when the pipeline decodes ahead)."""

    def __init__(self, chunks: Iterator[AVChunk], set_prompt: Callable[[str | None, torch.Tensor | None], None], decoder: AVDecoder):
        self._chunks = chunks
        self._set_prompt = set_prompt
        self._decoder = decoder

    @property
    def decoding_seconds(self) -> float:
        """Time the stream has spent decoding latents or waiting for decoded frames, so far."""
        return self._decoder.seconds

    def __iter__(self) -> AVStream:
        return self

    def __next__(self) -> AVChunk:
        return next(self._chunks)

    def set_prompt(self, prompt: str | None = None, prompt_embeds: torch.Tensor | None = None) -> None:
        """A new prompt (text, or (B, Lt, text_dim) embeddings) from the next chunk on (after next, decoding ahead)."""
        self._set_prompt(prompt, prompt_embeds)

    def close(self) -> None:
        self._chunks.close()


class AVStreamingPipeline(DiffusionPipeline):
    """Components, and the folder's sampling defaults (its config, in model_index.json).

    The defaults are what `from_pretrained(folder)` samples with when a call does not say:
    avgen's own folders keep the constructor's defaults; `avgen convert` writes a converted
    checkpoint's official settings (size, frame count, cache layout and attention budgets).

    Args:
        audio_codec: None for a video-only model (every converted checkpoint).
        height, width: default output size in pixels.
        num_frames: default length of `__call__` in pixel frames (None: 10 seconds).
        window: chunks denoised jointly (None: the pipeline's choice; a converted chunk-wise
            checkpoint's folder says 1).
        dub_window: chunks denoised jointly while a given video is voiced (`video=`; None: as
            `window`). avgen-tiny's 1: in its rolling window the voice comes a frame before the
            given mouth on 20 of 50 validation clips, chunk by chunk on 4.
        sink_chunks, cache_chunks: KV cache layout (attention sink + ring buffer).
        attention_chunks: chunks one denoising pass may see, counting its own (None: all cached).
        refresh_attention_chunks: the same for the refresh pass (None: as attention_chunks).
        refresh_keeps_sink: whether the refresh pass sees the sink once it is outside its budget.
        sink_positions: "rerotated" (the sink sits just before what follows it) or "fixed".
        text_length: prompts are padded to this many tokens (None: the encoder's own length).
        recache_on_prompt_change: a prompt change rewrites the cached history under the new prompt
            (LongLive's KV recache, see `Denoiser`); otherwise the history stays as written.
        window_attention: "joint" (every chunk of a window sees every other, Rolling Forcing's),
            "fusion-causal" (each modality jointly, the other one up to the chunk's own) or
            "causal" (each chunk the ones before it); see `Denoiser`.
        guidance_scale: > 1 guides by the prompt (classifier-free guidance against the empty or
            negative prompt; see `Denoiser`): the default of the call's own argument.
        guidance_from_level: that guidance applies to chunks at this noise level or above (1:
            pure noise; 0, every level, as classifier-free guidance is published; see `Denoiser`):
            the same noise at any step count, a few steps' first or a 50-step mode's first several.
        guidance_area_below_level: below that level the picture is still guided at this share
            of each frame's latent positions, where the guidance is largest (0: not at all).
        audio_guidance_scale: != 1 guides the picture by the voice (a model with an audio tower;
            see `Denoiser`): the default of the call's own argument.
        audio_guidance_area: that guidance pushes only this share of each frame's latent
            positions, where the voice changes the picture most (the mouth; 1: everywhere).
    """

    model_cpu_offload_seq = "text_encoder->transformer->vae->audio_codec"
    _optional_components = ["tokenizer", "audio_codec"]
    _decode_ahead = False

    def __init__(
        self,
        transformer: CausalAVTransformer,
        vae: VideoCodec,
        text_encoder,
        scheduler: FlowMatchShortcutScheduler,
        audio_codec: AudioCodec | None = None,
        tokenizer=None,
        fps: int = 16,
        height: int = 64,
        width: int = 64,
        num_frames: int | None = None,
        window: int | None = None,
        dub_window: int | None = None,
        sink_chunks: int = 1,
        cache_chunks: int = 4,
        attention_chunks: int | None = None,
        refresh_attention_chunks: int | None = None,
        refresh_keeps_sink: bool = True,
        sink_positions: str = "rerotated",
        text_length: int | None = None,
        recache_on_prompt_change: bool = False,
        window_attention: str = "joint",
        guidance_scale: float = 1.0,
        guidance_from_level: float = 0.0,
        guidance_area_below_level: float = 0.0,
        audio_guidance_scale: float = 1.0,
        audio_guidance_area: float = 1.0,
    ):
        super().__init__()
        if ("audio" in transformer.modalities) != (audio_codec is not None):
            raise ValueError(
                "the transformer's audio tower and the audio codec come together: "
                f"modalities {transformer.modalities}, audio codec {'given' if audio_codec is not None else 'missing'}"
            )
        self.register_modules(
            transformer=transformer, vae=vae, audio_codec=audio_codec, text_encoder=text_encoder, scheduler=scheduler, tokenizer=tokenizer
        )
        self.register_to_config(
            fps=fps,
            height=height,
            width=width,
            num_frames=num_frames,
            window=window,
            dub_window=dub_window,
            sink_chunks=sink_chunks,
            cache_chunks=cache_chunks,
            attention_chunks=attention_chunks,
            refresh_attention_chunks=refresh_attention_chunks,
            refresh_keeps_sink=refresh_keeps_sink,
            sink_positions=sink_positions,
            text_length=text_length,
            recache_on_prompt_change=recache_on_prompt_change,
            window_attention=window_attention,
            guidance_scale=guidance_scale,
            guidance_from_level=guidance_from_level,
            guidance_area_below_level=guidance_area_below_level,
            audio_guidance_scale=audio_guidance_scale,
            audio_guidance_area=audio_guidance_area,
        )

    # ------------------------------------------------------------------ derived sizes

    @property
    def fps(self) -> int:
        return self.config.fps

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    @property
    def sample_rate(self) -> int | None:
        """Audio samples per second; None for a video-only model."""
        return self.audio_codec.config.sampling_rate if self.has_audio else None

    def chunk_frames(self, index: int) -> int:
        """Pixel frames of chunk `index` (the VAE's first latent frame is a single frame)."""
        latent_frames = self.transformer.config.chunk_frames
        t = self.vae.temporal_compression
        return 1 + t * (latent_frames - 1) if index == 0 else t * latent_frames

    def chunks_covering(self, frames: int) -> int:
        """Chunks that cover `frames` pixel frames."""
        per_chunk = self.chunk_frames(1)
        return 1 + max(0, math.ceil((frames - self.chunk_frames(0)) / per_chunk))

    def num_chunks_for(self, seconds: float) -> int:
        return self.chunks_covering(round(seconds * self.fps))

    def frames_of(self, num_chunks: int) -> int:
        """Pixel frames of the first `num_chunks` chunks."""
        return self.chunk_frames(0) + (num_chunks - 1) * self.chunk_frames(1)

    # ------------------------------------------------------------------ steps of a generation

    @staticmethod
    def prompt_list(prompt: str | list[str]) -> list[str]:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
            raise ValueError("prompt must be a non-empty string (or a list of them): describe the character")
        return prompts

    def check_inputs(self, seconds, num_frames, num_inference_steps, height, width, output_type, window) -> None:
        if seconds is not None and not (isinstance(seconds, (int, float)) and seconds > 0):
            raise ValueError(f"seconds must be > 0 (or None to stream forever), got {seconds}")
        if num_frames is not None and not (isinstance(num_frames, int) and num_frames > 0):
            raise ValueError(f"num_frames must be a positive number of pixel frames, got {num_frames}")
        if seconds is not None and num_frames is not None:
            raise ValueError("give seconds or num_frames, not both")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if window < 1 or num_inference_steps % window:
            raise ValueError(f"window ({window}) must divide num_inference_steps ({num_inference_steps})")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")
        spatial = self.vae.spatial_compression
        if height % spatial or width % spatial:
            raise ValueError(f"height and width must be multiples of {spatial}, got {height}x{width}")

    def unsupported_requests(self, prompt: str) -> str | None:
        """One line on what of `prompt` this model cannot show and what it can (models of avgen's
        world, whose characters come from fixed vocabularies: those with avgen's own text
        encoders); None when it can show it all."""
        if not isinstance(self.text_encoder, (WorldTextEncoder, SentenceTextEncoder)):
            return None
        return unsupported_requests(prompt)

    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        """(B, Lt, text_dim) text embeddings."""
        length = self.config.text_length
        embeds = encode_prompts(
            self.text_encoder, self.tokenizer, prompts, self._execution_device, self.transformer.dtype, **({"max_length": length} if length else {})
        )
        return self.pad_prompt_embeds(embeds)

    def pad_prompt_embeds(self, embeds: torch.Tensor) -> torch.Tensor:
        """Zero-pad (B, Lt, text_dim) embeddings to the folder's text_length, as Wan pads its context."""
        text_dim = self.transformer.config.text_dim
        if embeds.ndim != 3 or embeds.shape[-1] != text_dim:
            raise ValueError(f"prompt embeddings must be (B, tokens, {text_dim}), got {tuple(embeds.shape)}")
        length = self.config.text_length
        if length is None or embeds.shape[1] >= length:
            return embeds
        return torch.nn.functional.pad(embeds, (0, 0, 0, length - embeds.shape[1]))

    def enable_decode_ahead(self) -> None:
        """Decode each chunk's frames on a thread of their own while the next chunk is denoised.

        Pays where denoising and decoding each have cores of their own: give torch half of them
        (`torch.set_num_threads`), as the two threads share its setting. avgen-tiny on 2 cores,
        one thread each: about a fifth more chunks per second than both threads on every op in
        turn (`avgen bench stream`). Every chunk after the first then comes out once the next
        one is denoised, so a prompt change reaches the chunk after next. Not with model CPU
        offload, where the transformer and the codecs take turns on the device.
        """
        self._decode_ahead = True

    def disable_decode_ahead(self) -> None:
        self._decode_ahead = False

    @property
    def decodes_ahead(self) -> bool:
        return self._decode_ahead

    def warm_up(self, prompt: str | None = "A face talks.", prompt_embeds: torch.Tensor | None = None, height: int | None = None, width: int | None = None) -> float:
        """Stream two chunks and drop them, so that the first chunk a user waits for finds its kernels ready.

        oneDNN compiles a CPU kernel per shape on first use, and a text encoder's first prompt is
        slow: on avgen-tiny the codecs' first chunk took 45 ms cold against 15 warm. A server
        calls this once after loading, with the settings it will stream with. Returns its seconds.
        """
        began = time.perf_counter()
        if prompt_embeds is not None:
            prompt = None
        stream = self.stream(prompt, prompt_embeds=prompt_embeds, num_frames=self.frames_of(2), height=height, width=width,
                             generator=torch.Generator().manual_seed(0))  # fmt: skip
        for _ in stream:
            pass
        return time.perf_counter() - began

    @staticmethod
    def onload(module) -> None:
        """Move a model to the execution device under `enable_model_cpu_offload()`.

        Offload hooks act on `forward`; the rollout and the streaming codecs call other methods
        (`forward_chunks`, `stream().decode`), so the pipeline triggers the hook itself.
        """
        hook = getattr(module, "_hf_hook", None)  # None too for an absent module (no audio codec)
        if hook is not None:
            hook.pre_forward(module)

    def prompt_embeddings(self, prompt, prompt_embeds, negative_prompt, negative_prompt_embeds, guided: bool):
        """(prompt embeddings, negative ones or None) from text or from given embeddings."""
        if (prompt is None) == (prompt_embeds is None):
            raise ValueError("give a prompt or prompt_embeds (not both)")
        device, dtype = self._execution_device, self.transformer.dtype
        if prompt_embeds is not None:
            positive = self.pad_prompt_embeds(prompt_embeds.to(device=device, dtype=dtype))
        else:
            positive = self.encode_prompt(self.prompt_list(prompt))
        if not guided:
            return positive, None
        if negative_prompt_embeds is not None:
            negative = self.pad_prompt_embeds(negative_prompt_embeds.to(device=device, dtype=dtype))
        else:
            negative = self.encode_prompt([negative_prompt] * positive.shape[0])
        if negative.shape[0] != positive.shape[0]:
            raise ValueError(f"negative_prompt_embeds has batch {negative.shape[0]}, the prompt {positive.shape[0]}")
        return positive, negative

    def prepare_image(self, image, height: int, width: int, batch: int) -> LatentChunk:
        """A reference image as clean chunk 0: the image held still over the chunk's frames (and silence).

        Any size is taken: it is resized to cover height x width and centre-cropped, with a note in the log.
        """
        if hasattr(image, "mode"):
            if image.mode != "RGB":
                raise ValueError(f"image must be RGB, got mode {image.mode!r}; convert it with image.convert('RGB')")
            image = np.asarray(image)
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be an RGB uint8 array (H, W, 3) or a PIL image, got {image.dtype} {image.shape}")
        if image.shape[:2] != (height, width):
            logger.warning(
                f"image is {image.shape[1]}x{image.shape[0]} pixels; resized and centre-cropped to the video's {width}x{height}"
            )
            image = fit_image(image, height, width)
        device, dtype = self._execution_device, self.vae.dtype
        pixels = torch.as_tensor(np.array(image), device=device, dtype=dtype).permute(2, 0, 1)[None, :, None] / 127.5 - 1.0
        still = pixels.expand(-1, -1, self.chunk_frames(0), -1, -1)  # (1, 3, frames of chunk 0, H, W)
        video = self.vae.encode_latents(still).expand(batch, -1, -1, -1, -1)  # (B, C, chunk_frames, h, w)
        audio = None
        if self.has_audio:
            samples = audio_lead_in(self.vae, self.fps, self.sample_rate) + self.chunk_frames(0) * self.sample_rate // self.fps
            silence = torch.zeros(1, self.audio_codec.config.audio_channels, samples, device=device, dtype=self.audio_codec.dtype)
            audio = self.audio_codec.encode_latents(silence).expand(batch, -1, -1).to(self.transformer.dtype)
        return LatentChunk(0, video.to(self.transformer.dtype), audio, level=0)

    def prepare_given_audio(self, audio, batch: int, total_frames: int | None) -> Callable[[int], torch.Tensor]:
        """Clean audio latents per chunk from a waveform (C, S) that drives the video (as long as it lasts)."""
        if not self.has_audio:
            raise ValueError("this model makes video only; it cannot follow given audio")
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

    def prepare_given_video(self, video, batch: int, height: int, width: int, total_frames: int | None):
        """A video to voice (dubbing): (clean latents per chunk, its frames (F, H, W, 3) uint8 as shown).

        `video`: frames (F, H, W, 3) uint8 at the pipeline's fps, or a media file's path (any fps:
        the nearest frames are taken). Frames of another size are fitted as `image=` is.
        """
        if not self.has_audio:
            raise ValueError("this model makes video only; it cannot voice a given video")
        if not self.transformer.config.video_conditioning:
            raise ValueError("this model was not trained to voice a given video (transformer.config.video_conditioning is False)")
        if isinstance(video, (str, os.PathLike)):
            frames, fps = read_video(video)
            if abs(fps - self.fps) > 1e-3:
                logger.warning(f"the video runs at {fps:g} fps; its nearest frames are taken at the model's {self.fps}")
                picked = np.round(np.arange(int(len(frames) * self.fps / fps)) * fps / self.fps).astype(int)
                frames = frames[np.minimum(picked, len(frames) - 1)]
        else:
            frames = np.asarray(video)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise ValueError(f"video must be RGB uint8 frames (F, H, W, 3) or a media file, got {frames.dtype} {frames.shape}")
        if frames.shape[1:3] != (height, width):
            logger.warning(f"the video is {frames.shape[2]}x{frames.shape[1]} pixels; resized and centre-cropped to {width}x{height}")
            frames = np.stack([fit_image(frame, height, width) for frame in frames])
        if total_frames is not None and len(frames) < total_frames:
            raise ValueError(f"the given video lasts {len(frames) / self.fps:.2f} s, shorter than asked for; ask for fewer seconds")
        # The last chunk may run past the video: it is padded with its last frame and cut from the output.
        num_chunks = self.chunks_covering(total_frames or len(frames))
        padded = np.concatenate([frames, np.repeat(frames[-1:], max(0, self.frames_of(num_chunks) - len(frames)), 0)])
        device, dtype = self._execution_device, self.vae.dtype
        pixels = torch.from_numpy(padded[: self.frames_of(num_chunks)]).to(device=device, dtype=dtype)
        latents = self.vae.encode_latents(pixels.permute(3, 0, 1, 2)[None] / 127.5 - 1.0).to(self.transformer.dtype)  # (1, C, F, h, w)
        per_chunk = self.transformer.config.chunk_frames

        def chunk(index: int) -> torch.Tensor:
            piece = latents[:, :, index * per_chunk : (index + 1) * per_chunk]
            if piece.shape[2] < per_chunk:
                raise ValueError("the given video has ended; a stream voicing a video lasts as long as the video")
            return piece.expand(batch, -1, -1, -1, -1)

        return chunk, frames

    def check_latents(self, latents: torch.Tensor, batch: int) -> tuple[int, int, int]:
        """(chunks, height, width) that given initial video latents (B, C, F, h, w) fix."""
        cfg = self.transformer.config
        spatial = self.vae.spatial_compression
        if latents.ndim != 5 or latents.shape[0] != batch or latents.shape[1] != cfg.video_in_channels:
            raise ValueError(f"latents must be ({batch}, {cfg.video_in_channels}, F, h, w) video noise, got {tuple(latents.shape)}")
        if latents.shape[2] % cfg.chunk_frames:
            raise ValueError(f"latents must have a multiple of {cfg.chunk_frames} latent frames (whole chunks), got {latents.shape[2]}")
        return latents.shape[2] // cfg.chunk_frames, latents.shape[3] * spatial, latents.shape[4] * spatial

    def noise_for(self, generator, batch: int, height: int, width: int, latents: torch.Tensor | None = None):
        """Chunk index -> fresh noise latents (video, audio or None), drawn in chunk order from `generator`.

        Given initial video `latents`, chunk i's video noise is their frames of chunk i.
        """
        cfg = self.transformer.config
        spatial = self.vae.spatial_compression
        video_shape = (batch, cfg.video_in_channels, cfg.chunk_frames, height // spatial, width // spatial)
        audio_shape = (batch, cfg.audio_in_channels, cfg.chunk_frames * cfg.audio_latents_per_frame)
        device, dtype = self._execution_device, self.transformer.dtype
        if latents is not None:
            latents = latents.to(device=device, dtype=dtype)

        def noise(index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
            if latents is None:
                video = randn_tensor(video_shape, generator=generator, device=device, dtype=dtype)
            else:
                video = latents[:, :, index * cfg.chunk_frames : (index + 1) * cfg.chunk_frames]
                if video.shape[2] == 0:
                    raise ValueError(f"the given latents cover {latents.shape[2]} latent frames; the stream has gone past them")
            audio = randn_tensor(audio_shape, generator=generator, device=device, dtype=dtype) if self.has_audio else None
            return video, audio

        return noise

    @staticmethod
    def renoise_for(generator) -> Callable[[str, torch.Tensor], torch.Tensor]:
        """Fresh noise like a window's latents, drawn as the official samplers draw it.

        `torch.randn_like` of their (B, F, C, H, W) latents, so the same generator gives the same
        values: drawn in that layout and moved to avgen's (B, C, F, H, W); audio (B, T, C) likewise.
        """

        def renoise(kind: str, like: torch.Tensor) -> torch.Tensor:
            drawn = randn_tensor(like.movedim(1, 2).shape, generator=generator, device=like.device, dtype=like.dtype)
            return drawn.movedim(1, 2)

        return renoise
    # ------------------------------------------------------------------ entry points

    def schedule(self, num_inference_steps: int, window: int | None, dubbing: bool = False) -> tuple[int, bool]:
        """(window, few_step) of this pipeline's rollout; each pipeline decides (`dubbing`: a given video is voiced)."""
        raise NotImplementedError(f"{type(self).__name__} must define its schedule")

    @torch.no_grad()
    def stream(
        self,
        prompt: str | list[str] | None = None,
        seconds: float | None = None,
        num_frames: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        audio_guidance_scale: float | None = None,
        negative_prompt: str = "",
        image=None,
        audio=None,
        video=None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        height: int | None = None,
        width: int | None = None,
        window: int | None = None,
        sink_chunks: int | None = None,
        cache_chunks: int | None = None,
        attention_chunks: int | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "np",
        callback_on_step_end: Callable | None = None,
    ) -> AVStream:
        """Start a generation and return its `AVStream` of chunks (see the module docstring).

        Arguments left None take the folder's defaults (see the class docstring).

        Args:
            prompt: text, or a list of texts (a batch); or give `prompt_embeds` instead.
            seconds, num_frames: length, in seconds or pixel frames; neither streams until the caller stops.
            num_inference_steps: noise levels each chunk passes (4-8 few-step, ~50 multi-step; a
                converted checkpoint's own count by default).
            guidance_scale: > 1 enables classifier-free guidance against `negative_prompt` (for the
                chunks at the folder's `guidance_from_level` or above), its branch run as more
                batch rows of each forward; 1 is off.
            audio_guidance_scale: != 1 pushes the picture further the way the voice moves it (the
                mouth), at the cost of one video-tower forward more per forward; 1 is off. A
                model with an audio tower only.
            image: reference character or first frame (PIL RGB or (H, W, 3) uint8, any size),
                held still as the clean first chunk.
            audio: (C, S) or (S,) waveform that drives the video, for models trained for it.
            video: frames (F, H, W, 3) uint8 or a media file to voice (dubbing), for models trained
                for it: the video is held clean and shown as it is, the model makes its sound; the
                length defaults to the video's.
            window: chunks denoised jointly (default: the pipeline's choice, from the folder's
                `dub_window` when voicing a `video`).
            sink_chunks, cache_chunks, attention_chunks: KV cache layout (attention sink + ring buffer)
                and the chunks one denoising pass may see, counting its own.
            prompt_embeds, negative_prompt_embeds: (B, Lt, text_dim) text embeddings, as in diffusers.
            latents: (B, C, F, h, w) initial video noise; fixes the size and the length (F latent frames).
            callback_on_step_end: called after every forward as fn(pipe, tick, levels, {"chunks": [...]}).
        """
        cfg = self.config
        num_inference_steps = num_inference_steps or self.scheduler.default_steps or DEFAULT_STEPS
        window, few_step = self.schedule(num_inference_steps, window, dubbing=video is not None)
        height, width = height or cfg.height, width or cfg.width
        guidance_scale = cfg.guidance_scale if guidance_scale is None else guidance_scale
        self.check_inputs(seconds, num_frames, num_inference_steps, height, width, output_type, window)
        if self._decode_ahead and any(getattr(m, "_hf_hook", None) is not None for m in (self.transformer, self.vae)):
            raise ValueError("decoding ahead needs the transformer and the codecs on the device at once: "
                             "call pipe.disable_decode_ahead() or drop model CPU offload")  # fmt: skip
        positive, negative = self.prompt_embeddings(prompt, prompt_embeds, negative_prompt, negative_prompt_embeds, guidance_scale > 1)
        batch = positive.shape[0]
        num_chunks, total_frames = None, None
        if audio is not None and video is not None:
            raise ValueError("give audio (to make its video) or video (to make its audio), not both")
        if latents is not None:
            if seconds is not None or num_frames is not None:
                raise ValueError("latents fix the length; do not give seconds or num_frames with them")
            num_chunks, height, width = self.check_latents(latents, batch)
            total_frames = self.frames_of(num_chunks)
        elif seconds is not None or num_frames is not None:
            total_frames = num_frames if num_frames is not None else round(seconds * self.fps)
            num_chunks = self.chunks_covering(total_frames)
        given, shown = {}, None
        if video is not None:
            self.onload(self.vae)
            given["video"], shown = self.prepare_given_video(video, batch, height, width, total_frames)
            if total_frames is None:  # as long as the video
                total_frames = len(shown)
                num_chunks = self.chunks_covering(total_frames)
        attention_chunks = attention_chunks if attention_chunks is not None else cfg.attention_chunks
        audio_guidance_scale = cfg.audio_guidance_scale if audio_guidance_scale is None else audio_guidance_scale
        if audio_guidance_scale != 1.0 and not self.has_audio:
            raise ValueError(f"audio_guidance_scale={audio_guidance_scale} needs a model with an audio tower; this one is video-only: use 1")
        refresh_attention = cfg.refresh_attention_chunks if cfg.refresh_attention_chunks is not None else attention_chunks
        denoiser = Denoiser(
            self.transformer,
            positive,
            negative,
            guidance_scale=guidance_scale,
            guidance_from_level=cfg.guidance_from_level,
            guidance_area_below_level=cfg.guidance_area_below_level,
            audio_guidance_scale=audio_guidance_scale,
            audio_guidance_area=cfg.audio_guidance_area,
            sink=cfg.sink_chunks if sink_chunks is None else sink_chunks,
            cache_window=cfg.cache_chunks if cache_chunks is None else cache_chunks,
            reach=Reach(attention_chunks, keep_sink=True),
            refresh_reach=Reach(refresh_attention, keep_sink=cfg.refresh_keeps_sink),
            sink_positions=cfg.sink_positions,
            recache=cfg.recache_on_prompt_change,
            window_attention=cfg.window_attention,
        )
        self.onload(self.vae)
        first = self.prepare_image(image, height, width, batch) if image is not None else None
        self.onload(self.audio_codec)
        if audio is not None:
            given["audio"] = self.prepare_given_audio(audio, batch, total_frames)
        device = positive.device
        levels = self.scheduler.levels(num_inference_steps, device=device)
        renoise = self.renoise_for(generator) if self.scheduler.renoises else None

        def on_tick(tick: int, chunks: list[LatentChunk], new_levels: torch.Tensor) -> None:
            if callback_on_step_end is not None:
                callback_on_step_end(self, tick, new_levels, {"chunks": chunks})

        latent_chunks = rollout(
            denoiser, self.noise_for(generator, batch, height, width, latents), levels, window, few_step,
            num_chunks=num_chunks, first=first, given=given, renoise=renoise,
            sigmas=self.scheduler.sigmas(levels), on_tick=on_tick,
        )  # fmt: skip

        def set_prompt(new_prompt: str | None, new_embeds: torch.Tensor | None) -> None:
            if (new_prompt is None) == (new_embeds is None):
                raise ValueError("give the new prompt as text or as prompt_embeds (one of them)")
            if new_embeds is not None:
                embeds = self.pad_prompt_embeds(new_embeds.to(device=device, dtype=self.transformer.dtype))
            else:
                embeds = self.encode_prompt(self.prompt_list(new_prompt) * batch)
            denoiser.set_prompt(embeds)

        decoder = AVDecoder(self.vae, self.audio_codec, self.fps, self.sample_rate, ahead=self._decode_ahead and output_type != "latent")
        chunks = self._decoded(latent_chunks, decoder, total_frames, num_chunks, output_type, shown)
        return AVStream(chunks, set_prompt, decoder)

    @torch.no_grad()  # on a generator, torch switches grad off only while it runs, not between chunks
    def _decoded(self, latent_chunks, decoder, total_frames, num_chunks, output_type, shown: np.ndarray | None = None) -> Iterator[AVChunk]:
        """AV chunks from latent chunks; with `shown` (a given video's (F, H, W, 3) frames) those frames
        are the picture, as they are, and only the sound is decoded. Decoding ahead, every chunk
        after the first is given out once the next one is denoised, its frames decoded meanwhile."""
        samples_per_frame = self.sample_rate // self.fps if self.has_audio else 0
        emitted = 0
        # diffusers' progress_bar needs a total; an endless stream only counts chunks.
        settings = {"desc": "chunks", "unit": "chunk", **getattr(self, "_progress_bar_config", {})}

        def finished(chunk: LatentChunk, result) -> AVChunk:
            nonlocal emitted
            frames, audio = result()
            if output_type != "latent" and shown is not None:
                span = shown[emitted : emitted + self.chunk_frames(chunk.index)]
                frames = np.broadcast_to(span, (chunk.audio.shape[0], *span.shape))
            if output_type != "latent" and total_frames is not None:  # the last chunk may run past the length asked for
                keep = min(frames.shape[1], total_frames - emitted)
                frames = frames[:, :keep]
                audio = audio[..., : keep * samples_per_frame] if audio is not None else None
            start, emitted = emitted, emitted + self.chunk_frames(chunk.index)
            bar.update()
            return AVChunk(frames=frames, audio=audio, start_seconds=start / self.fps, index=chunk.index)

        pending = None  # (chunk, result): the chunk whose frames decode while the next one is denoised
        with tqdm(total=num_chunks, **settings) as bar:
            try:
                while True:
                    self.onload(self.transformer)
                    chunk = next(latent_chunks, None)
                    started = None
                    if chunk is not None and output_type == "latent":
                        started = chunk, lambda chunk=chunk: (chunk.video, chunk.audio)
                    elif chunk is not None:
                        self.onload(self.vae)
                        self.onload(self.audio_codec)
                        started = chunk, decoder.submit(chunk.video if shown is None else None, chunk.audio)
                    if pending is not None:
                        yield finished(*pending)
                        pending = None
                    if started is None:
                        return
                    if decoder.ahead and chunk.index > 0:
                        pending = started
                    else:  # the first chunk waits for no other: time to first frame
                        yield finished(*started)
            finally:
                decoder.close()

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        seconds: float | None = None,
        num_frames: int | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        **kwargs,
    ):
        """Generate a video (with its audio, when the model has an audio tower); the arguments are those of `stream`.

        Without `seconds`, `num_frames`, `latents` or `video`, the length is the folder's `num_frames`, or 10 seconds.

        Returns:
            AVPipelineOutput (or a tuple (frames, audio) when return_dict=False); audio is None for a video-only model.
        """
        if seconds is None and num_frames is None and kwargs.get("latents") is None and kwargs.get("video") is None:
            num_frames = self.config.num_frames
            seconds = None if num_frames is not None else DEFAULT_SECONDS
        chunks = list(self.stream(prompt, seconds=seconds, num_frames=num_frames, output_type=output_type, **kwargs))
        audio = None
        if output_type == "latent":
            frames = torch.cat([c.frames for c in chunks], dim=2)
            if self.has_audio:
                audio = torch.cat([c.audio for c in chunks], dim=2)
        else:
            frames = np.concatenate([c.frames for c in chunks], axis=1)
            if self.has_audio:
                audio = np.concatenate([c.audio for c in chunks], axis=-1)
            if output_type == "pt":
                frames = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float() / 255.0
                audio = torch.from_numpy(audio) if audio is not None else None
        output = AVPipelineOutput(frames=frames, audio=audio, fps=self.fps, sample_rate=self.sample_rate)
        return output if return_dict else (output.frames, output.audio)

"""One documented configuration for the four training stages, read from YAML with strict keys.

    config = load_config("train/configs/pretrain.yaml", stage="pretrain", overrides=["steps=200"])

Every field has a default; a config file names only what it changes. A key that is not a
field (a typo) is an error that names the key and the closest field.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from avgen.models.presets import PRESETS
from avgen.rollout import WINDOW_ATTENTION

STAGES = ("pretrain", "couple", "mutual_forcing", "rolling", "text_encoder")
TEXT_ENCODERS = ("world", "sentence")
MODALITIES = ("video", "audio")


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key or path."""


@dataclass
class TrainingConfig:
    # ---- what to train
    stage: str = "pretrain"  # pretrain | couple | mutual_forcing | rolling | text_encoder (set by the entry point)
    # Model size (avgen.models.presets) of a fresh start; None: "tiny". With `init` the model has
    # init's size, and a preset named here must match it.
    preset: str | None = None
    init: str | None = None  # start from a run folder, checkpoint or pipeline folder (the previous stage)
    output_dir: str = "runs/pretrain"  # checkpoints/, metrics.jsonl and config.yaml go here
    # The text encoder of a fresh start, and the one the text_encoder stage swaps in: "world"
    # (the world's words, trained with the generator) or "sentence" (frozen all-MiniLM-L6-v2
    # and a trained projection; any text).
    text_encoder: str = "world"

    # ---- data: world clips (or a footage folder's) encoded once by the codecs, cached on disk
    data: str | None = None  # a folder of videos with captions (avgen footage check); None: the world
    codecs: str = "weights/avgen-tiny"  # folder with the trained codecs: vae/ and audio_codec/
    clips: int = 1024  # distinct training clips of the world (training-split characters); footage uses all of its own
    clip_chunks: int = 8  # chunks per clip (latent frames with the tiny preset's one-frame chunks)
    cache_dir: str | None = None  # latent cache (default: the world's cache folder)

    # ---- optimisation
    steps: int = 2000
    # Stop (with a checkpoint) at this step while the learning rate still follows `steps`, so a
    # long schedule can run in parts, each continued with --resume; 0 trains to `steps`.
    stop_at: int = 0
    batch_size: int = 8  # global: split evenly over the processes of a torchrun job
    learning_rate: float = 3e-4
    warmup_steps: int = 100  # linear warm-up, then cosine decay to a tenth
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.0  # 0 keeps no EMA; e.g. 0.999 keeps one, saved beside the weights
    bf16: bool = True  # bf16 autocast when training on CUDA (CPU always trains in fp32)
    gradient_checkpointing: bool = False  # recompute each transformer layer in backward: less memory
    seed: int = 0
    device: str = "cpu"  # "cpu" or "cuda" (a torchrun job on CUDA takes cuda:LOCAL_RANK)
    threads: int = 0  # torch threads per process; 0 leaves torch's default
    parallel: str = "ddp"  # under torchrun: "ddp" (replicated weights) or "fsdp" (FSDP2, sharded)
    checkpoint_every: int = 250
    keep_checkpoints: int = 3  # the newest N checkpoints are kept

    # ---- all stages: the video loss
    # Video positions weigh 1 + motion_weight * the clean latents' change over time
    # (avgen/training/motion.py): the mouth is a latent position or two of each frame.
    motion_weight: float = 0.0
    # ---- all stages: the prompt
    # Share of samples trained with the empty prompt, so that the model has the unconditional
    # mode classifier-free guidance reads (`guidance_scale > 1` at inference).
    prompt_dropout: float = 0.0

    # ---- stage 1 (pretrain): each tower alone
    modalities: list[str] = field(default_factory=lambda: list(MODALITIES))

    # ---- stage 2 (couple): both towers + fusion
    condition_probability: float = 0.0  # share of samples with one modality given clean (half audio, half video)

    # ---- stages 3 and 4 (mutual_forcing, rolling): self-generated history and self-distillation
    few_steps: int = 4  # steps of the few-step mode that rolls out the history (and the rolling window)
    real_history_probability: float = 0.25  # stage 3: share of steps whose history is the real clip
    # Stage 4: share of steps rolled out chunk by chunk (window 1) instead of with the rolling
    # window, so that the few-step weights keep serving both samplers.
    chunkwise_probability: float = 0.0
    # Stage 4: share of steps whose loss is taken at one of the first few_steps ticks, while
    # chunk 0 is denoised from the prompt alone (empty cache): full windows never see chunk 0
    # above its last level, so without these steps nothing after stage 2 trains the prompt's
    # hold on the picture.
    opening_probability: float = 0.0
    # Stage 4: share of steps rolled out with the real video given clean (t = 0) and only the audio
    # denoised, whose losses are the audio's alone: the model learns to voice a given video
    # (dubbing: `video=` in the pipelines), and records so in its config (video_conditioning).
    dub_probability: float = 0.0
    # Stage 4: its mirror, share of steps rolled out with the real audio given clean and only the
    # video denoised, whose losses are the video's alone: the mouth made for a given voice, the
    # path that carries the voice into the lips (audio_conditioning).
    drive_probability: float = 0.0
    distill_weight: float = 1.0  # weight of the few-step self-distillation loss beside flow matching
    # Weight of flow matching on the self-generated window (the multi-step mode's loss). 0 trains the
    # few-step jumps alone against a teacher the run leaves as it found it (with ema_target).
    flow_weight: float = 1.0
    # Weight of a loss holding the multi-step mode (step input 0) on the window where the target
    # weights have it (with ema_target: where the run began), so that distilling the few-step jumps
    # against that mode does not move the teacher through the weights they share. 0: off.
    keep_weight: float = 0.0
    distill_min_step: float = 0.0625  # smallest jump taught by self-distillation (below it: d = 0 halves)
    # The target of a few-step jump d: 0, two half jumps of the few-step mode (the shortcut
    # ladder, each jump size taught by the next smaller one); s > 0, Euler steps of at most s of
    # the multi-step mode, which then teaches every jump size directly (d / s forwards per target).
    distill_teacher_step: float = 0.0
    ema_target: bool = False  # distillation targets from the EMA weights instead of the online ones
    # Stage 4: how a window's chunks see each other, as the pipeline will sample: "joint" (Rolling
    # Forcing's), "fusion-causal" or "causal" (avgen.rollout.Denoiser); export the run with the same.
    window_attention: str = "joint"
    # Stages 3 and 4: the voice's guidance the few-step mode samples with (avgen.rollout.Denoiser's
    # audio_guidance_scale and audio_guidance_area; 1: off). Otherwise the model is rolled out and
    # distilled unguided while the pipeline samples it guided: its one jump pushes the mouth once
    # where the half jumps that teach it push it twice. Above 1, the history is rolled out so
    # guided and self-distillation matches the guided jump to the guided moves of its target: the
    # few-step mode is trained as it samples. Export the run with the same settings.
    audio_guidance_scale: float = 1.0
    audio_guidance_area: float = 1.0
    sink_chunks: int = 1  # KV cache while rolling out: attention sink ...
    cache_chunks: int = 4  # ... and ring buffer, as at inference

    # ---- text_encoder stage: another text encoder for a trained model, by distillation
    # The model of `init`, prompted with the world's phrasings, is the teacher; the same model
    # with `text_encoder` swapped in learns to match its predictions (video and audio, at random
    # noise levels and step sizes) from prompts that are, with this probability, paraphrases
    # (avgen/world/paraphrase.py) instead of the world's own phrasings. Only the text path is
    # trained: the encoder's projection, each tower's text embedder and text keys/values.
    paraphrase_probability: float = 0.75

    # ---- starting from a pretrained video model (a folder written by avgen convert)
    # A video-only `init` gets an audio tower of this preset's audio width (its depth is the
    # video tower's), fusion in every block and step-size inputs. Each new part starts at zero
    # output, so the video tower predicts exactly as it did. The init's text encoder, when it is
    # not one avgen trains (umT5), is replaced by a new `text_encoder`.
    audio_tower: str | None = None
    # The video tower's learning rate as a share of learning_rate: 0 freezes it (coupling onto a
    # pretrained video model), 0.1 lets it move slowly; fusion and the rest train at the full rate.
    video_learning_rate_scale: float = 1.0

    def __post_init__(self):
        checks = [
            (self.stage in STAGES, "stage", f"one of {', '.join(STAGES)}"),
            (self.steps >= 1, "steps", ">= 1"),
            (0 <= self.stop_at <= self.steps, "stop_at", "in [0, steps] (0: train to steps)"),
            (self.batch_size >= 1, "batch_size", ">= 1"),
            (self.clips >= 1, "clips", ">= 1"),
            (self.clip_chunks >= 2, "clip_chunks", ">= 2 (a history and a chunk after it)"),
            (self.checkpoint_every >= 1, "checkpoint_every", ">= 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints", ">= 1"),
            (0 <= self.ema_decay < 1, "ema_decay", "in [0, 1)"),
            (0 <= self.condition_probability <= 1, "condition_probability", "in [0, 1]"),
            (0 <= self.real_history_probability <= 1, "real_history_probability", "in [0, 1]"),
            (0 <= self.chunkwise_probability <= 1, "chunkwise_probability", "in [0, 1]"),
            (0 <= self.opening_probability <= 1, "opening_probability", "in [0, 1]"),
            (0 <= self.dub_probability <= 1, "dub_probability", "in [0, 1]"),
            (0 <= self.drive_probability <= 1 - self.dub_probability, "drive_probability", "in [0, 1 - dub_probability]"),
            (self.few_steps >= 1, "few_steps", ">= 1"),
            (self.motion_weight >= 0, "motion_weight", ">= 0"),
            (0 <= self.prompt_dropout < 1, "prompt_dropout", "in [0, 1)"),
            (self.flow_weight >= 0, "flow_weight", ">= 0"),
            (self.keep_weight >= 0, "keep_weight", ">= 0"),
            (0 < self.distill_min_step <= 1, "distill_min_step", "in (0, 1]"),
            (0 <= self.distill_teacher_step <= 1, "distill_teacher_step", "in [0, 1] (0: two half jumps)"),
            (0 < self.audio_guidance_area <= 1, "audio_guidance_area", "in (0, 1]: a share of each frame's positions"),
            (self.window_attention in WINDOW_ATTENTION, "window_attention", f"one of {', '.join(WINDOW_ATTENTION)}"),
            (self.parallel in ("ddp", "fsdp"), "parallel", "'ddp' or 'fsdp'"),
            (self.text_encoder in TEXT_ENCODERS, "text_encoder", f"one of {', '.join(TEXT_ENCODERS)}"),
            (0 <= self.paraphrase_probability <= 1, "paraphrase_probability", "in [0, 1]"),
            (self.video_learning_rate_scale >= 0, "video_learning_rate_scale", ">= 0"),
            (self.preset is None or self.preset in PRESETS, "preset", f"one of {', '.join(PRESETS)}"),
            (self.audio_tower is None or self.audio_tower in PRESETS, "audio_tower", f"one of {', '.join(PRESETS)}"),
            (self.stage != "text_encoder" or self.init is not None, "init", "the trained model whose text encoder is swapped"),
            (bool(self.modalities) and set(self.modalities) <= set(MODALITIES), "modalities", "a non-empty list of video, audio"),
            (not (self.ema_target and self.ema_decay == 0), "ema_target", "false when ema_decay is 0 (there is no EMA)"),
        ]
        for ok, key, expected in checks:
            if not ok:
                raise ConfigError(f"config key {key!r} must be {expected}, got {getattr(self, key)!r}")
        if self.stage == "rolling" and self.clip_chunks <= self.few_steps:
            raise ConfigError(f"config key 'clip_chunks' must exceed few_steps ({self.few_steps}) for rolling windows")

    def to_yaml(self) -> str:
        return yaml.safe_dump(dataclasses.asdict(self), sort_keys=False)


def _parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} must be key=value, e.g. steps=100")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def _check_keys(values: dict, source: str) -> None:
    names = [f.name for f in dataclasses.fields(TrainingConfig)]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(names)}"
            raise ConfigError(f"unknown config key {key!r} in {source}{hint}")


def _check_types(values: dict) -> None:
    defaults = TrainingConfig()
    for key, value in values.items():
        default = getattr(defaults, key)
        if default is None or value is None:
            continue
        expected = type(default)
        if expected is float and not isinstance(value, bool):
            try:  # YAML reads 1e-3 (no dot) as a string
                values[key] = float(value)
                continue
            except (TypeError, ValueError):
                pass
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"config key {key!r} must be a {expected.__name__}, got {value!r}")


def load_config(path: str | Path | None = None, stage: str | None = None, overrides: list[str] = ()) -> TrainingConfig:
    """Defaults <- the YAML file <- `key=value` overrides <- the entry point's stage."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} not found")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {str(path)!r} must be a mapping of key: value")
        _check_keys(loaded, str(path))
        values.update(loaded)
    for text in overrides:
        key, value = _parse_override(text)
        _check_keys({key: value}, "--set")
        values[key] = value
    if stage is not None:
        if values.get("stage", stage) != stage:
            raise ConfigError(f"config key 'stage' is {values['stage']!r} but this entry point trains {stage!r}")
        values["stage"] = stage
    _check_types(values)
    return TrainingConfig(**values)

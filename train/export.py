"""Export a training run (or one checkpoint) with the codecs as a pipeline folder.

    python train/export.py runs/rolling --codecs weights/avgen-tiny --out weights/avgen-tiny

Both pipelines load the result: RollingForcingPipeline.from_pretrained(OUT) and
MutualForcingPipeline.from_pretrained(OUT).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from avgen.rollout import WINDOW_ATTENTION  # noqa: E402
from avgen.training.config import ConfigError  # noqa: E402
from avgen.training.export import export_pipeline  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", help="run folder (newest checkpoint) or checkpoint folder")
    parser.add_argument("--codecs", default="weights/avgen-tiny", help="folder with vae/ and audio_codec/")
    parser.add_argument("--out", required=True, help="pipeline folder to write")
    parser.add_argument("--no-ema", action="store_true", help="export the online weights even when an EMA exists")
    parser.add_argument(
        "--window-attention", choices=WINDOW_ATTENTION, default="joint",
        help="the rolling window's attention, as stage 4 trained it (its window_attention; default joint)",
    )  # fmt: skip
    parser.add_argument(
        "--dub-window", type=int, default=None,
        help="chunks denoised jointly while voicing a given video, a sampler setting chosen on validation seeds (default: the generation's)",
    )  # fmt: skip
    parser.add_argument(
        "--guidance-scale", type=float, default=1.0,
        help="the folder's classifier-free guidance by the prompt, a sampler setting chosen on validation seeds (default 1: off)",
    )  # fmt: skip
    parser.add_argument(
        "--guidance-from-level", type=float, default=0.0,
        help="the noise level from which the prompt guides (1: the pure-noise chunk only; default 0: every level)",
    )  # fmt: skip
    parser.add_argument(
        "--guidance-area-below-level", type=float, default=0.0,
        help="below that level, the share of each frame's latent positions the prompt still guides, where it guides most (default 0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--audio-guidance-scale", type=float, default=1.0,
        help="the folder's guidance of the picture by the voice, a sampler setting chosen on validation seeds (default 1: off)",
    )  # fmt: skip
    parser.add_argument(
        "--audio-guidance-area", type=float, default=1.0,
        help="the share of each frame's latent positions the voice's guidance pushes, where it is largest (the mouth; default 1: all)",
    )  # fmt: skip
    args = parser.parse_args()
    try:
        out = export_pipeline(
            args.weights, args.codecs, args.out, use_ema=not args.no_ema, window_attention=args.window_attention,
            dub_window=args.dub_window, guidance_scale=args.guidance_scale, guidance_from_level=args.guidance_from_level,
            guidance_area_below_level=args.guidance_area_below_level,
            audio_guidance_scale=args.audio_guidance_scale, audio_guidance_area=args.audio_guidance_area,
        )  # fmt: skip
        print(f"saved {out}")
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)

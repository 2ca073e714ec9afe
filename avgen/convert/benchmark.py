"""Benchmark: convert a synthetic full-size (Wan2.1-T2V-1.3B) Self-Forcing checkpoint; print time and peak memory.

    python -m avgen.convert.benchmark [--dtype bf16] [--workdir DIR] [--json]

Writes, once, into `workdir`: a Self-Forcing-format file with random `generator` and
`generator_ema` of the real shapes (30 blocks of 1536 channels, 1.3B parameters each, bf16,
keys under `model.`), and a Wan2.1 base folder in diffusers layout with a random VAE of the
real size and a one-layer umT5 of the real width (4096): the text encoder is hard-linked by
the conversion, so its size changes neither figure. Then runs `avgen convert` in a child
process and reports its wall time and peak resident memory (getrusage of the child).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

WAN_13B = dict(dim=1536, ffn_dim=8960, num_layers=30, text_dim=4096, freq_dim=256, in_dim=16, patch=(1, 2, 2))


def wan_state(generator: torch.Generator, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """A random Wan2.1-T2V-1.3B generator under the official names (the `model.` prefix of the released files)."""
    d, f, t, q = WAN_13B["dim"], WAN_13B["ffn_dim"], WAN_13B["text_dim"], WAN_13B["freq_dim"]
    c, patch = WAN_13B["in_dim"], WAN_13B["patch"]
    shapes = {
        "patch_embedding.weight": (d, c, *patch), "patch_embedding.bias": (d,),
        "text_embedding.0.weight": (d, t), "text_embedding.0.bias": (d,),
        "text_embedding.2.weight": (d, d), "text_embedding.2.bias": (d,),
        "time_embedding.0.weight": (d, q), "time_embedding.0.bias": (d,),
        "time_embedding.2.weight": (d, d), "time_embedding.2.bias": (d,),
        "time_projection.1.weight": (6 * d, d), "time_projection.1.bias": (6 * d,),
        "head.head.weight": (c * 4, d), "head.head.bias": (c * 4,), "head.modulation": (1, 2, d),
    }  # fmt: skip
    for i in range(WAN_13B["num_layers"]):
        block = f"blocks.{i}"
        shapes[f"{block}.modulation"] = (1, 6, d)
        for attn in ("self_attn", "cross_attn"):
            for proj in "qkvo":
                shapes[f"{block}.{attn}.{proj}.weight"] = (d, d)
                shapes[f"{block}.{attn}.{proj}.bias"] = (d,)
            shapes[f"{block}.{attn}.norm_q.weight"] = (d,)
            shapes[f"{block}.{attn}.norm_k.weight"] = (d,)
        shapes.update({f"{block}.norm3.weight": (d,), f"{block}.norm3.bias": (d,)})
        shapes.update({f"{block}.ffn.0.weight": (f, d), f"{block}.ffn.0.bias": (f,)})
        shapes.update({f"{block}.ffn.2.weight": (d, f), f"{block}.ffn.2.bias": (d,)})
    return {f"model.{name}": (torch.randn(shape, generator=generator) * 0.02).to(dtype) for name, shape in shapes.items()}


def write_inputs(workdir: Path) -> tuple[Path, Path]:
    """(checkpoint, base folder), written unless already there."""
    from diffusers import AutoencoderKLWan
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel
    from tokenizers import Tokenizer, models, pre_tokenizers

    checkpoint, base = workdir / "self_forcing_13b.pt", workdir / "wan-base"
    if not checkpoint.is_file():
        generator = torch.Generator().manual_seed(0)
        torch.save({"generator": wan_state(generator, torch.bfloat16), "generator_ema": wan_state(generator, torch.bfloat16)}, checkpoint)
    if not (base / "tokenizer").is_dir():
        AutoencoderKLWan().save_pretrained(base / "vae")  # diffusers' defaults are Wan2.1's VAE
        config = UMT5Config(d_model=WAN_13B["text_dim"], d_kv=64, num_heads=64, d_ff=10240, num_layers=1, vocab_size=64, feed_forward_proj="gated-gelu")
        UMT5EncoderModel(config).to(torch.bfloat16).save_pretrained(base / "text_encoder")
        words = {"<pad>": 0, "</s>": 1, "<unk>": 2}
        tokenizer = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>").save_pretrained(base / "tokenizer")
    return checkpoint, base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16", help="weights of the converted folder")
    parser.add_argument("--workdir", default="runs/convert-bench", help="where the synthetic inputs and the output go")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint, base = write_inputs(workdir)
    out = workdir / f"converted-{args.dtype}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    started = time.perf_counter()
    command = [sys.executable, "-m", "avgen", "convert", str(checkpoint), "--base", str(base), "--recipe", "rolling-forcing", "-o", str(out), "--dtype", args.dtype]
    subprocess.run(command, check=True, capture_output=True)
    figures = {
        "checkpoint_gb": round(checkpoint.stat().st_size / 1e9, 2),
        "dtype": args.dtype,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 2),  # ru_maxrss is in KiB
        "transformer_gb": round(sum(f.stat().st_size for f in (out / "transformer").iterdir()) / 1e9, 2),
    }
    print(json.dumps(figures, indent=2) if args.json else "\n".join(f"{k:20s} {v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

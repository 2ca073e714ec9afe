"""avgen's Gradio app: type a character, press Generate, watch and hear it while it is made.

    python app.py                          # http://127.0.0.1:7860, weights/avgen-tiny or untrained components
    python app.py --model PATH --port 8000 # another pipeline folder, another port
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=8000 python app.py   # as for any Gradio app (flags win)

Mistakes in the flags or the model folder print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from avgen.app.config import AppConfig


def parse_args(argv: list[str] | None = None) -> AppConfig:
    parser = argparse.ArgumentParser(prog="python app.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="pipeline folder (default: weights/avgen-tiny if complete, else untrained tiny components)")
    parser.add_argument("--untrained", action="store_true", help="untrained tiny components even where weights exist (tests, benchmarks)")
    parser.add_argument("--host", default=None, help="address to listen on (default: $GRADIO_SERVER_NAME, else 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT, else 7860)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--dtype", default="float32", help="torch dtype of the model (default float32)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the tiny model's ops are small)")
    parser.add_argument("--compile", action="store_true", help="compile the transformer with torch.compile (loading pays for it)")
    parser.add_argument("--vae-dtype", default="auto", help="video codec dtype: auto (bf16 where the hardware computes it natively), fp32, bf16")
    parser.add_argument("--concurrency", type=int, default=1, help="generations running at once; others queue (default 1)")
    parser.add_argument("--max-queue", type=int, default=8, help="generations allowed to wait (default 8)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="longest generation, the end of 'until stopped' (default 600)")
    args = parser.parse_args(argv)
    host = args.host or os.environ.get("GRADIO_SERVER_NAME") or AppConfig.host
    port = args.port if args.port is not None else _environment_port()
    return AppConfig(
        model=args.model, untrained=args.untrained, host=host, port=port,
        device=args.device, dtype=args.dtype, threads=args.threads, compile=args.compile, vae_dtype=args.vae_dtype,
        concurrency_limit=args.concurrency, max_queue=args.max_queue, max_seconds=args.max_seconds,
        default_seconds=min(AppConfig.default_seconds, args.max_seconds),
    )  # fmt: skip


def _environment_port() -> int:
    """$GRADIO_SERVER_PORT, Gradio's own setting, when no --port is given; else the default."""
    value = os.environ.get("GRADIO_SERVER_PORT")
    if not value:
        return AppConfig.port
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"GRADIO_SERVER_PORT must be a port number (1-65535), got {value!r}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    from avgen.app.server import start

    try:
        start(parse_args(argv))
    except ValueError as error:
        print(f"python app.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

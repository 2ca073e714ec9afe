"""avgen's Gradio app: type a character, press Generate, watch and hear it while it is made.

    python app.py                          # http://127.0.0.1:7860, weights/avgen-tiny or untrained components
    python app.py --model PATH --port 8000 # another pipeline folder, another port

Mistakes in the flags or the model folder print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys

from avgen.app.config import AppConfig


def parse_args(argv: list[str] | None = None) -> AppConfig:
    parser = argparse.ArgumentParser(prog="python app.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="pipeline folder (default: weights/avgen-tiny if complete, else untrained tiny components)")
    parser.add_argument("--untrained", action="store_true", help="untrained tiny components even where weights exist (tests, benchmarks)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--dtype", default="float32", help="torch dtype of the model (default float32)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the tiny model's ops are small)")
    parser.add_argument("--concurrency", type=int, default=1, help="generations running at once; others queue (default 1)")
    parser.add_argument("--max-queue", type=int, default=8, help="generations allowed to wait (default 8)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="longest generation, the end of 'until stopped' (default 600)")
    args = parser.parse_args(argv)
    return AppConfig(
        model=args.model, untrained=args.untrained, host=args.host, port=args.port,
        device=args.device, dtype=args.dtype, threads=args.threads,
        concurrency_limit=args.concurrency, max_queue=args.max_queue, max_seconds=args.max_seconds,
        default_seconds=min(AppConfig.default_seconds, args.max_seconds),
    )  # fmt: skip


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

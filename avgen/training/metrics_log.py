"""metrics.jsonl: one JSON record per training step, each with its "step"."""

from __future__ import annotations

import json
from pathlib import Path


def truncate_after(path: Path, step: int) -> None:
    """Drop the records a killed run logged after its last checkpoint (`step`): a resumed run redoes them."""
    if path.is_file():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))

"""Load a pipeline folder by name, with errors that say what is missing."""

from __future__ import annotations

import json
from pathlib import Path

PIPELINES = ("rolling", "mutual")
REQUIRED = ("transformer", "vae", "audio_codec", "text_encoder", "scheduler")
OPTIONAL = ("audio_codec",)  # a video-only folder lists it as [null, null]


def load_pipeline(path: str | Path, pipeline: str = "rolling"):
    """RollingForcingPipeline or MutualForcingPipeline from a folder in diffusers layout."""
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}: choose one of {', '.join(PIPELINES)}")
    path = Path(path)
    index = path / "model_index.json"
    if not index.is_file():
        raise ValueError(f"{str(path)!r} is not a pipeline folder (no model_index.json); train and export one first")
    components = json.loads(index.read_text())
    for name in REQUIRED:
        if name in OPTIONAL and components.get(name) == [None, None]:
            continue
        if name not in components or not (path / name).is_dir():
            raise ValueError(f"weights folder {str(path)!r} lacks its {name}/ component; re-export the pipeline")
    from avgen.pipelines.mutual_forcing import MutualForcingPipeline
    from avgen.pipelines.rolling_forcing import RollingForcingPipeline

    cls = RollingForcingPipeline if pipeline == "rolling" else MutualForcingPipeline
    return cls.from_pretrained(path)

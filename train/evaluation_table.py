"""Print the model card's evaluation tables from the JSON files `train/avgen_tiny_eval.sh` wrote.

    python train/evaluation_table.py weights/avgen-tiny/evaluation
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from avgen.metrics.attributes import READ_ATTRIBUTES

COLUMNS = [
    ("sync ±1 frame", "sync_within_1_frame", "{:.0%}"),
    ("sync offset 0", "sync_offset_0", "{:.0%}"),
    ("sync confidence (median)", "sync_confidence_median", "{:.2f}"),
    ("mouth motion, px (median)", "mouth_motion_median", "{:.2f}"),
    ("attribute adherence", "attribute_adherence", "{:.1%}"),
    ("ΔDrift (8-bit levels)", "delta_drift_mean", "{:.2f}"),
    ("speed (x real time)", "realtime_factor_median", "{:.2f}"),
]
WORST_SECONDS = "background seconds (worst clip)"


def worst_background(figures: dict) -> str:
    worst = (figures.get("seconds_matching_worst_clip") or {}).get("background")  # older rows lack it
    return f"{worst:.0%}" if worst is not None else "n/a"
BY_ATTRIBUTE = "adherence: " + " / ".join(name.replace("_", " ") for name in READ_ATTRIBUTES)


def by_attribute(figures: dict) -> str:
    shares = figures.get("attribute_adherence_by_name")
    return " / ".join(f"{shares[name]:.0%}" for name in READ_ATTRIBUTES) if shares else "n/a"


def describe(figures: dict) -> str:
    # Rows before session 34 record the window asked for, None for the pipeline's default.
    default_window = figures["steps"] if figures["pipeline"].startswith("Rolling") else 1
    window = figures["window"] or default_window
    if window > 1 and figures.get("window_attention", "joint") != "joint":  # older rows lack it: joint
        window = f"{window} ({figures['window_attention']})"
    sink = f"sink {figures['sink_chunks']} + window {figures['cache_chunks']}"
    # Older rows lack the guidance settings: unguided, at every level and position.
    if figures.get("audio_guidance_scale", 1.0) != 1.0:
        sink += f", audio guidance {figures['audio_guidance_scale']:g}"
        if figures.get("audio_guidance_area", 1.0) < 1.0:
            sink += f" at {figures['audio_guidance_area']:g} of the positions"
    if figures.get("guidance_scale", 1.0) != 1.0:
        sink += f", text guidance {figures['guidance_scale']:g}"
        if figures["guidance_scale"] > 1.0 and figures.get("guidance_from_level", 0.0) > 0.0:
            sink += f" from level {figures['guidance_from_level']:g}"
            if figures.get("guidance_area_below_level", 0.0) > 0.0:
                sink += f" (below it at {figures['guidance_area_below_level']:g} of the positions)"
    source = figures.get("source", "generated")
    if source != "generated":  # the world's own clips: no sampler was involved
        return f"held-out clips, {'as the world renders them' if source == 'world' else 'through the codecs of ' + figures['model']}"
    asked = f"{figures.get('phrasing', 'world')} phrasing"
    if figures.get("dub"):
        asked = "dubbing the given video"
    if figures.get("drive"):
        asked += ", driven by the clip's own voice"
    return f"{figures['model']}: {figures['pipeline']}, {figures['steps']} steps, window {window}, {sink}, {asked}"


def seeds(figures: dict) -> str:
    numbers = [row["seed"] for row in figures["rows"]]
    return f"{min(numbers)}-{max(numbers)}"


def table(folder: Path) -> str:
    header = [name for name, _, _ in COLUMNS] + [WORST_SECONDS, BY_ATTRIBUTE]
    lines = ["| run | weights and sampler | seeds | clips x seconds | " + " | ".join(header) + " |"]
    lines.append("|" + " --- |" * (4 + len(header)))
    for path in sorted(folder.glob("*.json")):
        figures = json.loads(path.read_text())
        cells = [fmt.format(figures[key]) if figures.get(key) is not None else "n/a" for _, key, fmt in COLUMNS]
        cells += [worst_background(figures), by_attribute(figures)]
        lines.append(
            f"| {path.stem} | {describe(figures)} | {seeds(figures)} | {figures['clips']} x {figures['seconds']:g} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1] if len(sys.argv) > 1 else "weights/avgen-tiny/evaluation")))

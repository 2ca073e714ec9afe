import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AVGEN = [sys.executable, "-m", "avgen"]


def run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*AVGEN, *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_render_world_then_eval_media(tmp_path):
    rendered = run("render-world", "--seed", "3", "--seconds", "6", "-o", "clip.mp4", "--held-out", cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    summary = json.loads(rendered.stdout)
    assert summary["split"] == "held-out" and summary["seconds"] == 6.0
    assert (tmp_path / "clip.mp4").is_file()

    evaluated = run("eval-media", "clip.mp4", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["prompt"] == summary["prompt"]  # read from the file itself
    assert report["sync"]["offset_frames"] == 0
    assert report["adherence"]["score"] == 1.0
    assert report["attributes"]["shape"] == summary["character"]["shape"]

    judged = run("eval-media", "clip.mp4", "--prompt", "a green square face on a navy background", cwd=tmp_path)
    assert json.loads(judged.stdout)["prompt"].startswith("a green square")


def test_render_world_honours_attributes_and_events(tmp_path):
    result = run(
        "render-world", "--seconds", "1", "--shape", "diamond", "--face-colour", "pink",
        "--events", "jump,chime", "-o", "x.mp4", cwd=tmp_path,
    )  # fmt: skip
    summary = json.loads(result.stdout)
    assert summary["character"]["shape"] == "diamond" and summary["character"]["face_colour"] == "pink"
    assert summary["events"] == ["chime", "jump"]
    assert "hops" in summary["prompt"] and "chime" in summary["prompt"]


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["render-world", "--seconds", "-1", "-o", "out.mp4"], {}, "--seconds: must be > 0"),
        (["render-world", "--seconds", "ten", "-o", "out.mp4"], {}, "must be a number of seconds"),
        (["render-world", "--shape", "blob", "-o", "out.mp4"], {}, "unknown shape 'blob'"),
        (["render-world", "--events", "fly", "-o", "out.mp4"], {}, "unknown event"),
        (["render-world", "-o", "missing/out.mp4"], {}, "does not exist"),
        (["render-world", "-o", "out.mp4"], {"IMAGEIO_FFMPEG_EXE": "/nonexistent/ffmpeg"}, "ffmpeg not found"),
        (["eval-media", "nothing.mp4"], {}, "no such media file"),
        (["eval-media", "corrupt.mp4"], {}, "cannot read"),
        (["render-world"], {}, "required: -o/--output"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_file(tmp_path, args, env, message):
    (tmp_path / "corrupt.mp4").write_bytes(b"not a video at all")
    before = set(tmp_path.iterdir())
    result = run(*args, cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert set(tmp_path.iterdir()) == before


def test_bench_model_reports_speed_memory_cache_and_exactness(tmp_path):
    result = run("bench", "model", "--preset", "tiny", "--chunks", "12", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["ms_per_chunk_median"] > 0 and figures["peak_memory_bytes"] > 0
    assert figures["cache_bytes"]["10"] == figures["cache_bytes"]["12"] > 0
    assert figures["max_abs_diff_incremental_vs_full"] <= 1e-4


def test_bench_model_bad_preset_is_one_line(tmp_path):
    result = run("bench", "model", "--preset", "huge", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "unknown model preset 'huge': choose one of tiny, wan-1.3b" in result.stderr

import subprocess
import sys

from .conftest import ROOT


def run(*flags, path=None):
    env = None if path is None else {"PATH": path}
    return subprocess.run([sys.executable, "app.py", *flags], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


def test_a_missing_model_folder_is_one_line_and_status_2():
    result = run("--model", "/nonexistent/avgen-tiny")
    assert result.returncode == 2
    assert result.stderr.startswith("python app.py: error: '/nonexistent/avgen-tiny' is not a pipeline folder (no model_index.json)")
    assert result.stderr.count("\n") == 1


def test_missing_ffmpeg_says_how_to_install_it(tmp_path):
    result = run("--untrained", path=str(tmp_path))
    assert result.returncode == 2
    assert "ffmpeg and ffprobe not found on PATH: run `make app`" in result.stderr and result.stderr.count("\n") == 1

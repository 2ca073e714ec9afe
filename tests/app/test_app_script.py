import os
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


def test_gradio_server_name_and_port_are_honoured_unless_a_flag_says_otherwise(monkeypatch):
    sys.path.insert(0, str(ROOT))
    try:
        from app import parse_args
    finally:
        sys.path.remove(str(ROOT))
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8123")
    config = parse_args([])
    assert (config.host, config.port) == ("0.0.0.0", 8123)
    config = parse_args(["--host", "127.0.0.1", "--port", "9000"])
    assert (config.host, config.port) == ("127.0.0.1", 9000)
    monkeypatch.delenv("GRADIO_SERVER_NAME")
    monkeypatch.delenv("GRADIO_SERVER_PORT")
    assert (parse_args([]).host, parse_args([]).port) == ("127.0.0.1", 7860)


def test_compile_is_off_unless_asked():
    sys.path.insert(0, str(ROOT))
    try:
        from app import parse_args
    finally:
        sys.path.remove(str(ROOT))
    assert (parse_args([]).compile, parse_args(["--compile"]).compile) == (False, True)


def test_a_bad_gradio_server_port_is_one_line_and_status_2(monkeypatch):
    result = subprocess.run(
        [sys.executable, "app.py", "--untrained"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "GRADIO_SERVER_PORT": "http"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == "python app.py: error: GRADIO_SERVER_PORT must be a port number (1-65535), got 'http'\n"

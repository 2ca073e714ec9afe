import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_pipelines_folder_is_installed_as_avgen_pipelines():
    import avgen.pipelines

    assert Path(avgen.pipelines.__file__).resolve().parent == ROOT / "pipelines"


def test_console_script_runs():
    script = Path(sys.executable).parent / "avgen"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "render-world" in result.stdout and "eval-media" in result.stdout


def test_gpu_kernels_are_an_extra_and_torch_is_pinned():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    assert "xformers" not in core and "flash-attn" not in core
    assert {"app", "train", "gpu", "dev"} <= set(project["optional-dependencies"])
    pins = (ROOT / "constraints.txt").read_text().split()
    assert "torch==2.13.0" in pins


def test_world_metrics_and_media_start_without_torch():
    # The CLI's render/eval commands should start in well under a second.
    code = "import avgen.world, avgen.metrics, avgen.media, avgen.cli, avgen.models.presets, sys; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

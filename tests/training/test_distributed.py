"""torchrun on CPU (gloo): the same loss curve as one process with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import overrides

ROOT = Path(__file__).resolve().parents[2]
# Per-sample noise and data are drawn from (seed, step, place in the global batch), and DDP
# averages gradients of equal local batches, so the curves agree to float rounding.
TOLERANCE = 1e-5


def run(config, processes: int, *extra: str) -> list[dict]:
    script = str(ROOT / "train" / f"{config.stage}.py")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else [sys.executable]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([*launcher, script, "--no-progress", *overrides(config), *extra], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in (Path(config.output_dir) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    "stage, parallel",
    [("pretrain", "ddp"), ("mutual_forcing", "ddp"), ("couple", "fsdp")],
)
def test_two_processes_match_one(small_config, tmp_path, stage, parallel):
    changes = dict(steps=3, batch_size=4, learning_rate=1e-3, parallel=parallel)
    one = run(small_config(stage, output_dir=str(tmp_path / "one"), **changes), 1)
    two = run(small_config(stage, output_dir=str(tmp_path / "two"), **changes), 2)
    assert [r["step"] for r in two] == [1, 2, 3]
    for a, b in zip(one, two):
        assert abs(a["loss"] - b["loss"]) <= TOLERANCE * max(1.0, abs(a["loss"])), (a, b)

"""torchrun with 2 CPU processes (gloo): ranks stay in sync, rank 0 alone writes, resume is exact."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def _torchrun(out: Path, pipeline: str, mode: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(WORKER), str(out), pipeline, mode]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


@pytest.mark.parametrize("pipeline", ["memory", "loader"])
def test_ddp_two_processes_sync_and_resume(tmp_path: Path, pipeline: str) -> None:
    full, cut = tmp_path / "full", tmp_path / "cut"
    _torchrun(full, pipeline, "full")
    ranks = [torch.load(full / f"rank{r}-full.pt", weights_only=True) for r in (0, 1)]
    buffers = {n for n in ranks[0] if "running_" in n or n.endswith("num_batches_tracked")}
    for name, tensor in ranks[0].items():  # BN statistics are per rank between DDP's broadcasts from rank 0
        if name not in buffers:
            assert torch.equal(tensor, ranks[1][name]), f"{name} differs between ranks"
    rows = list(csv.DictReader((full / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]  # one writer: no duplicated rows
    assert json.loads((full / "env.json").read_text())["world_size"] == 2
    assert sorted(p.name for p in full.glob("*.pt")) == ["best.pt", "last.pt", "rank0-full.pt", "rank1-full.pt"]

    _torchrun(cut, pipeline, "stop")
    _torchrun(cut, pipeline, "resume")
    resumed = torch.load(cut / "rank0-resume.pt", weights_only=True)
    for name, tensor in ranks[0].items():
        assert torch.equal(tensor, resumed[name]), f"{name} differs after a DDP resume"

"""`vae-audio separate` under `torchrun --nproc-per-node 2`: the ranks split the inputs
(every WORLD_SIZE-th input each) and together separate every input exactly once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch

from .conftest import FAST, write_cut

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available",
)


def test_torchrun_ranks_separate_each_input_once(tmp_path):
    inputs = [write_cut(tmp_path / "in" / f"m{k}.wav", offset=3000 * k) for k in range(5)]
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS"):
        env.pop(var, None)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command = ["--nproc-per-node", "2", "-m", "vae_audio", "separate"]
    proc = subprocess.run(
        [*launcher, *command, *map(str, inputs), "-o", str(out), *FAST],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries = dict(re.findall(r"rank (\d)/2: (\d+) separated, 0 skipped", proc.stdout))
    assert summaries == {"0": "3", "1": "2"}, proc.stdout  # inputs 0, 2, 4 and 1, 3

    records = [json.loads((out / f"m{k}" / "separation.json").read_text()) for k in range(5)]
    assert [r["input"] for r in records] == [str(p.resolve()) for p in inputs]
    assert sorted(p.name for p in out.iterdir()) == [f"m{k}" for k in range(5)]

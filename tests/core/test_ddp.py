"""Training under Lightning DDP: 2 CPU processes (gloo), 2 steps, identical weights on both
ranks, and the ResumableLoader's rank split covering the epoch once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vae_audio.core.checkpoint import load_model_file

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available",
)


def test_ddp_ranks_train_on_disjoint_shares_and_hold_the_same_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(
        [sys.executable, str(HERE / "_ddp_train.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert [(r["rank"], r["world"]) for r in ranks] == [(0, 2), (1, 2)]

    # Same start (seeded construction), then gradients averaged across ranks at every step.
    for name, value in ranks[0]["final"].items():
        assert torch.equal(ranks[0]["initial"][name], ranks[1]["initial"][name]), name
        assert torch.equal(value, ranks[1]["final"][name]), name
    moved = [n for n, v in ranks[0]["final"].items() if not torch.equal(v, ranks[0]["initial"][n])]
    assert moved, "training changed no weight"

    # 16 rows, batch 4, 2 ranks: 2 steps are one epoch, each row on exactly one rank.
    rows = [sorted(int(v) for v in r["rows"]) for r in ranks]
    assert len(rows[0]) == len(rows[1]) == 8
    assert sorted(rows[0] + rows[1]) == list(range(16))

    # Rank 0 exported the weights both ranks hold.
    exported = load_model_file(tmp_path / "run" / "model.pt", kind="tiny-vae")["state_dict"]
    for name, value in exported.items():
        assert torch.equal(value, ranks[1]["final"][name]), name

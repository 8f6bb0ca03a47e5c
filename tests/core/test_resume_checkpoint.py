"""`vae-audio train --resume` with a bad `last.ckpt`: one line naming the file and the fix,
exit code 2, no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from vae_audio import cli

pytestmark = pytest.mark.usefixtures("one_thread")


def _config(out: Path, hidden: int = 16) -> dict:
    return {
        "data": {"name": "dsprites", "num_train": 64, "num_val": 16, "batch_size": 32},
        "model": {"network": "mlp", "hidden": [hidden], "latent_dim": 2},
        "objective": {"kind": "vae"},
        "eval": {"metrics": []},
        "plots": {"num_images": 2, "traversal_steps": 2},
        "trainer": {
            "out_dir": str(out),
            "max_steps": 1,
            "max_epochs": -1,
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
            "tensorboard": False,
        },
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run folder after one training step (real last.ckpt and model.pt)."""
    root = tmp_path_factory.mktemp("resume_bad")
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(_config(root / "run")))
    assert cli.main(["train", "image-vae", "--config", str(recipe)]) == 0
    return root / "run"


def _bad_run(trained: Path, tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """A copy of the run whose last.ckpt is broken in the way ``kind`` says; its recipe."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    last = run / "checkpoints" / "last.ckpt"
    good = last.read_bytes()
    if kind == "text":
        last.write_text("not a checkpoint\n")
    elif kind == "empty":
        last.write_bytes(b"")
    elif kind == "truncated":
        last.write_bytes(good[: len(good) // 2])
    elif kind == "model_file":
        shutil.copy(run / "model.pt", last)
    elif kind == "needs_code":
        torch.save({"state_dict": {}, "path": Path("x")}, last)  # a pickled class: not weights
    elif kind == "plain_tensors":
        torch.save({"weight": torch.zeros(3)}, last)
    recipe = tmp_path / "recipe.yaml"
    hidden = 8 if kind == "other_model" else 16
    recipe.write_text(yaml.safe_dump(_config(run, hidden=hidden)))
    return recipe, last


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("text", "corrupt, truncated or not a PyTorch training checkpoint"),
        ("empty", "corrupt, truncated or not a PyTorch training checkpoint"),
        ("truncated", "corrupt, truncated or not a PyTorch training checkpoint"),
        ("needs_code", "holds pickled objects that only code could rebuild"),
        ("model_file", "holds exported model weights"),
        ("plain_tensors", "not a Lightning training checkpoint"),
        ("other_model", "weights do not fit this recipe's model"),
    ],
)
def test_bad_last_checkpoint_is_one_line_and_exit_2(trained, tmp_path, capsys, kind, reason):
    recipe, last = _bad_run(trained, tmp_path, kind)
    capsys.readouterr()
    code = cli.main(["train", "image-vae", "--config", str(recipe), "--resume"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("vae-audio: error: cannot resume from ")
    assert str(last) in lines[0] and reason in lines[0]
    fix = "config.yaml" if kind == "other_model" else "trainer.overwrite=true"
    assert fix in lines[0]


def test_bad_last_checkpoint_from_the_command_line(trained, tmp_path):
    recipe, last = _bad_run(trained, tmp_path, "truncated")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "vae_audio", "train", "image-vae", "--config", str(recipe)]
    proc = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(last) in lines[0] and "--resume" in lines[0]

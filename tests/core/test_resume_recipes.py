"""Exact resume of every recipe: a run interrupted mid-epoch and resumed from its `last.ckpt`
ends with bitwise the same weights and optimiser state as an uninterrupted run.

speech-vae and neural-fca are interrupted for real: `vae-audio train` runs in a subprocess
that is killed with SIGKILL after a mid-epoch checkpoint was written (``_freezing_train.py``
holds it at a known step). image-vae stops cleanly in-process, on ``max_steps`` mid-epoch
(and is continued by raising ``max_steps``: Lightning closes the epoch of a run stopped by
``max_steps``, so an epoch-based continuation would skip its rest) and on ``max_epochs``.
The killed child also proves that two processes with the same seed train alike: its first
steps are the reference run's first steps, or the final weights would differ.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from vae_audio import cli

pytestmark = pytest.mark.usefixtures("one_thread")

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures"
CHILD = HERE / "_freezing_train.py"

TRAINER = {
    "accelerator": "cpu",
    "devices": 1,
    "enable_progress_bar": False,
    "log_every_n_steps": 1,
    "tensorboard": False,
    "export": "last",
}


def _write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def _train(recipe: str, config: Path, out: Path, *extra: str) -> None:
    code = cli.main(["train", recipe, "--config", str(config), f"trainer.out_dir={out}", *extra])
    assert code == 0


def _train_and_kill(recipe: str, config: Path, out: Path, step: int) -> None:
    """Run `vae-audio train` in a subprocess and SIGKILL it once step ``step`` is saved."""
    marker = out.parent / f"{out.name}.frozen"
    log = out.parent / f"{out.name}.log"
    args = [sys.executable, str(CHILD), str(step), str(marker)]
    args += ["train", recipe, "--config", str(config), f"trainer.out_dir={out}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with log.open("w") as sink:
        proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 120
            while not marker.exists():
                assert proc.poll() is None, f"training ended early:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, "training did not reach the checkpoint"
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def _loader_state(ckpt: dict) -> dict:
    """The training loader's recorded position (epoch, batches read, batches per epoch)."""
    (state,) = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    return state


def _assert_same_training_state(a: Path, b: Path) -> None:
    """Bitwise equal weights, optimiser states and step counts of two runs' last.ckpt."""
    ca, cb = _checkpoint(a), _checkpoint(b)
    assert ca["global_step"] == cb["global_step"] and ca["epoch"] == cb["epoch"]
    assert ca["state_dict"].keys() == cb["state_dict"].keys()
    for name, value in ca["state_dict"].items():
        assert torch.equal(value, cb["state_dict"][name]), name
    for oa, ob in zip(ca["optimizer_states"], cb["optimizer_states"], strict=True):
        for key, state in oa["state"].items():
            for name, value in state.items():
                assert torch.equal(value, ob["state"][key][name]), (key, name)
    ma = torch.load(a / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
    mb = torch.load(b / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(v, mb[k]) for k, v in ma.items())


def test_speech_vae_killed_mid_epoch_resumes_exactly(tmp_path):
    # 6 utterances, batch 2: 3 steps per epoch; checkpoints every 2 steps; 2 epochs.
    config = _write_config(
        tmp_path / "speech.yaml",
        {
            "data": {
                "train_manifest": str(FIXTURES / "corpus" / "train.jsonl"),
                "valid_manifest": str(FIXTURES / "corpus" / "valid.jsonl"),
                "segment_seconds": 0.5,
                "batch_size": 2,
                "report_utterances": 2,
                "report_examples": 1,
            },
            "model": {"arch": "mlp", "latent_dim": 4, "hidden": 16, "layers": 1},
            "optim": {"lr": 1e-2},
            "trainer": {**TRAINER, "max_epochs": 2, "checkpoint_every_n_steps": 2},
        },
    )
    _train_and_kill("speech-vae", config, tmp_path / "killed", step=4)
    ckpt = _checkpoint(tmp_path / "killed")
    assert ckpt["global_step"] == 4
    assert _loader_state(ckpt) == {"epoch": 1, "batches": 1, "length": 3}  # mid-epoch

    _train("speech-vae", config, tmp_path / "killed", "--resume")
    _train("speech-vae", config, tmp_path / "full")
    assert _checkpoint(tmp_path / "full")["global_step"] == 6
    _assert_same_training_state(tmp_path / "killed", tmp_path / "full")


def _mixture_manifest(path: Path, copies: int) -> Path:
    """``copies`` entries naming the fixture mixture (absolute paths): one 2-s mixture,
    cropped at random, stands for a training set."""
    (entry,) = [json.loads(line) for line in (FIXTURES / "mixture" / "manifest.jsonl").open()]
    root = FIXTURES / "mixture"
    lines = []
    for k in range(copies):
        e = dict(entry, id=f"copy{k}")
        e.update(
            mix=str(root / entry["mix"]),
            sources=[str(root / s) for s in entry["sources"]],
            noise=str(root / entry["noise"]),
        )
        e.pop("meta", None)
        lines.append(json.dumps(e))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_neural_fca_killed_mid_epoch_resumes_exactly(tmp_path):
    # 4 mixtures, batch 1: 4 steps per epoch; checkpoints every 3 steps; 2 epochs.
    manifest = _mixture_manifest(tmp_path / "train.jsonl", 4)
    config = _write_config(
        tmp_path / "nfca.yaml",
        {
            "data": {
                "train_manifest": str(manifest),
                "valid_manifest": str(FIXTURES / "mixture" / "manifest.jsonl"),
                "segment_seconds": 0.25,
                "batch_size": 1,
            },
            "stft": {"sample_rate": 16000, "n_fft": 64, "hop_length": 16},
            "model": {
                "n_speakers": 2,
                "em_iterations": 1,
                "noise_latent_dim": 2,
                "noise_hidden": 8,
                "encoder": {"io_channels": 8, "mid_channels": 8, "n_blocks": 1, "n_layers": 2},
                "decoder": {"latent_dim": 4, "hidden": 8},
            },
            "validation": {"examples": 0},
            "optim": {"lr": 1e-2},
            "trainer": {**TRAINER, "max_epochs": 2, "checkpoint_every_n_steps": 3},
        },
    )
    _train_and_kill("neural-fca", config, tmp_path / "killed", step=3)
    ckpt = _checkpoint(tmp_path / "killed")
    assert ckpt["global_step"] == 3
    assert _loader_state(ckpt) == {"epoch": 0, "batches": 3, "length": 4}  # mid-epoch

    _train("neural-fca", config, tmp_path / "killed", "--resume")
    _train("neural-fca", config, tmp_path / "full")
    assert _checkpoint(tmp_path / "full")["global_step"] == 8
    _assert_same_training_state(tmp_path / "killed", tmp_path / "full")


@pytest.mark.parametrize(
    "limit, total, stop",
    [("max_steps", 12, 6), ("max_epochs", 3, 2)],  # 4 steps per epoch: mid-epoch, epoch end
)
def test_image_vae_stopped_and_resumed_matches_uninterrupted(tmp_path, limit, total, stop):
    limits = {"max_steps": -1, "max_epochs": -1, limit: total}
    config = _write_config(
        tmp_path / "image.yaml",
        {
            "data": {"name": "dsprites", "num_train": 128, "num_val": 32, "batch_size": 32},
            "model": {"network": "mlp", "hidden": [32], "latent_dim": 3},
            "objective": {"kind": "beta_h", "beta": 4.0},
            "eval": {"metrics": []},
            "plots": {"num_images": 4, "traversal_steps": 3},
            "optim": {"lr": 1e-3},
            "trainer": {**TRAINER, **limits},
        },
    )
    _train("image-vae", config, tmp_path / "split", f"trainer.{limit}={stop}")
    steps = stop if limit == "max_steps" else 4 * stop
    assert _loader_state(_checkpoint(tmp_path / "split"))["batches"] == (steps % 4 or 4)
    _train("image-vae", config, tmp_path / "split", "--resume")
    _train("image-vae", config, tmp_path / "full")
    assert _checkpoint(tmp_path / "full")["global_step"] == 12
    _assert_same_training_state(tmp_path / "split", tmp_path / "full")

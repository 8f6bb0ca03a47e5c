"""Two training steps of a tiny VAE with ``strategy="ddp"`` on 2 CPU processes (gloo).

Usage: ``python _ddp_train.py OUT``; Lightning starts the second rank by running this file
again. Each rank writes ``OUT/rank<r>.pt``: its initial and final weights and the rows of
the data it trained on.
"""

import copy
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from vae_audio.core.likelihoods import GaussianLikelihood
from vae_audio.core.loader import ResumableLoader
from vae_audio.core.training import LossOutput, VAETask, train
from vae_audio.core.vae import VAE

torch.set_num_threads(1)
OUT = Path(sys.argv[1])
X_DIM, LATENT, ROWS = 8, 2, 16


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(X_DIM, 16), nn.Tanh(), nn.Linear(16, 2 * LATENT))

    def forward(self, x):
        mean, logvar = self.net(x).chunk(2, dim=-1)  # [B, 2D] -> 2 x [B, D]
        return mean, logvar


class _RecordingTask(VAETask):
    kind = "tiny-vae"

    def __init__(self, config):
        super().__init__(config)
        decoder = nn.Sequential(nn.Linear(LATENT, 16), nn.Tanh(), nn.Linear(16, X_DIM))
        self.model = VAE(_Encoder(), decoder, GaussianLikelihood(logvar=-2.0))
        self.initial = copy.deepcopy(self.model.state_dict())
        self.rows = []

    def compute_loss(self, batch, stage):
        (x,) = batch
        self.rows += x[:, 0].tolist()  # column 0 holds the row number
        return LossOutput(self.model(x).loss())

    def on_train_end(self):
        torch.save(
            {
                "rank": self.global_rank,
                "world": self.trainer.world_size,
                "initial": self.initial,
                "final": copy.deepcopy(self.model.state_dict()),
                "rows": self.rows,
            },
            OUT / f"rank{self.global_rank}.pt",
        )


config = {
    "optim": {"lr": 1e-2},
    "trainer": {
        "out_dir": str(OUT / "run"),
        "accelerator": "cpu",
        "devices": 2,
        "strategy": "ddp",
        "max_steps": 2,
        "export": "last",
        "enable_progress_bar": False,
        "num_sanity_val_steps": 0,
        "tensorboard": False,
    },
}
x = torch.randn(ROWS, X_DIM, generator=torch.Generator().manual_seed(0))
x[:, 0] = torch.arange(ROWS)
task = _RecordingTask(config)
train(task, ResumableLoader(TensorDataset(x), batch_size=4, seed=0), config)

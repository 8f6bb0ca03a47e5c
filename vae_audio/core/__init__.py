"""Shared VAE machinery for the speech prior and the image VAEs.

Distributions and likelihoods, the VAE composition, objectives (β, capacity, total
correlation, MMD), schedules, configs, checkpoints, the resumable training loader and the
Lightning training base.

The training names (``VAETask``, ``train``, ...) import Lightning, which takes seconds, so
they load on first use.
"""

import importlib

from vae_audio.core.checkpoint import check_kind, load_model_file, save_model
from vae_audio.core.config import apply_overrides, load_config, save_config
from vae_audio.core.curves import plot_curves, read_metrics
from vae_audio.core.distributions import DiagonalGaussian, log_density_gaussian
from vae_audio.core.draws import DrawKey, current_draw, epoch_rng
from vae_audio.core.likelihoods import (
    BernoulliLikelihood,
    ComplexGaussianLikelihood,
    GaussianLikelihood,
    Likelihood,
    bernoulli_nll,
    build_likelihood,
    complex_gaussian_nll,
    gaussian_nll,
    is_divergence,
)
from vae_audio.core.loader import EpochSampler, ResumableLoader
from vae_audio.core.objectives import (
    TCDecomposition,
    beta_kl,
    capacity_kl,
    mmd,
    tc_decomposition,
    total_correlation,
)
from vae_audio.core.schedules import Schedule, constant, cyclic, linear_warmup
from vae_audio.core.vae import VAE, VAEOutput, elbo

__all__ = [
    "TRAINER_DEFAULTS",
    "VAE",
    "LossOutput",
    "TrainResult",
    "VAETask",
    "check_kind",
    "load_model_file",
    "plot_curves",
    "read_metrics",
    "save_model",
    "train",
    "with_training_defaults",
    "BernoulliLikelihood",
    "ComplexGaussianLikelihood",
    "DiagonalGaussian",
    "DrawKey",
    "EpochSampler",
    "GaussianLikelihood",
    "Likelihood",
    "ResumableLoader",
    "Schedule",
    "TCDecomposition",
    "VAEOutput",
    "apply_overrides",
    "bernoulli_nll",
    "beta_kl",
    "build_likelihood",
    "capacity_kl",
    "complex_gaussian_nll",
    "constant",
    "current_draw",
    "cyclic",
    "elbo",
    "epoch_rng",
    "gaussian_nll",
    "is_divergence",
    "linear_warmup",
    "load_config",
    "log_density_gaussian",
    "mmd",
    "save_config",
    "tc_decomposition",
    "total_correlation",
]

_LAZY = {
    "TRAINER_DEFAULTS": "vae_audio.core.training",
    "LossOutput": "vae_audio.core.training",
    "TrainResult": "vae_audio.core.training",
    "VAETask": "vae_audio.core.training",
    "train": "vae_audio.core.training",
    "with_training_defaults": "vae_audio.core.training",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Disentanglement metrics on ground-truth data (disentanglement_lib protocols).

Every metric takes ``(data, representation_fn, random_state, **params)`` where ``data`` is a
:class:`~vae_audio.image.datasets.GroundTruthData`, ``representation_fn`` maps observations
``[B, ...]`` to codes ``[B, D]`` (the encoder means) and ``random_state`` is a
``numpy.random.RandomState``; :func:`compute_chen_mig` takes the posterior
``(mean, logvar)`` instead. Results are dataclasses with ``as_dict()``.

Also here: clustering accuracy of discrete assignments (:mod:`.clustering`) and the
sample-quality scores (:mod:`.sample_quality`: Fréchet distance, k-NN precision/recall).
"""

from vae_audio.image.metrics.beta_vae import BetaVAEScore, compute_beta_vae
from vae_audio.image.metrics.clustering import ClusteringScore, clustering_accuracy
from vae_audio.image.metrics.dci import (
    DCIScore,
    completeness,
    compute_dci,
    dci_from_codes,
    disentanglement,
)
from vae_audio.image.metrics.factor_vae import FactorVAEScore, compute_factor_vae
from vae_audio.image.metrics.mig import MIGScore, compute_mig, mig_from_codes
from vae_audio.image.metrics.mig_sampled import SampledMIGScore, compute_chen_mig, mixture_entropy
from vae_audio.image.metrics.sample_quality import (
    PrecisionRecall,
    frechet_distance,
    gaussian_frechet_distance,
    precision_recall,
)

__all__ = [
    "BetaVAEScore",
    "ClusteringScore",
    "DCIScore",
    "FactorVAEScore",
    "MIGScore",
    "PrecisionRecall",
    "SampledMIGScore",
    "clustering_accuracy",
    "completeness",
    "compute_beta_vae",
    "compute_chen_mig",
    "compute_dci",
    "compute_factor_vae",
    "compute_mig",
    "dci_from_codes",
    "disentanglement",
    "frechet_distance",
    "gaussian_frechet_distance",
    "mig_from_codes",
    "mixture_entropy",
    "precision_recall",
]

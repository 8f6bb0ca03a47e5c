"""Statistical multichannel source separation: FCA, MNMF, FastMNMF/FastMNMF2, Wiener filters,
chunked processing and the ``separate()`` entry point with its method registry."""

from vae_audio.separation.api import (
    METHODS,
    MethodSpec,
    SeparationResult,
    register_method,
    separate,
)
from vae_audio.separation.covariance import fca_covariance
from vae_audio.separation.fastmnmf import FastMnmfResult, fit_fastmnmf
from vae_audio.separation.fca import (
    FcaResult,
    em_update_scm,
    fca_log_likelihood,
    fit_fca,
    fit_free_fca,
)
from vae_audio.separation.mnmf import fit_mnmf
from vae_audio.separation.source_model import FreePsd, NmfPsd, PsdStats, SourceModel
from vae_audio.separation.vae_fca import VaeFcaResult, fit_vae_fca, refit_vae_fca
from vae_audio.separation.vae_nmf import fit_vae_nmf
from vae_audio.separation.vae_source import VaeSourceModel
from vae_audio.separation.wiener import wiener_full_rank, wiener_jd

__all__ = [
    "METHODS",
    "FastMnmfResult",
    "FcaResult",
    "FreePsd",
    "MethodSpec",
    "NmfPsd",
    "PsdStats",
    "SeparationResult",
    "SourceModel",
    "VaeFcaResult",
    "VaeSourceModel",
    "em_update_scm",
    "fca_covariance",
    "fca_log_likelihood",
    "fit_fastmnmf",
    "fit_fca",
    "fit_free_fca",
    "fit_mnmf",
    "fit_vae_fca",
    "fit_vae_nmf",
    "refit_vae_fca",
    "register_method",
    "separate",
    "wiener_full_rank",
    "wiener_jd",
]

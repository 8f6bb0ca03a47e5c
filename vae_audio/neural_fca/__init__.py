"""Neural FCA (Bando et al., IEEE SPL 2021) and Neural FastFCA (Bando et al., EUSIPCO 2023).

A multichannel encoder trained on unlabelled mixtures infers, for every slot (speakers and one
noise slot), the latents of a VAE speech prior; the spatial model is FCA with SCMs
re-estimated by EM inside every forward pass (``spatial: full``) or a jointly diagonalisable
model updated by iterative source steering (``spatial: jd``). With ``encoder.kind: tac`` and
``n_mics: null`` one Neural FastFCA model takes any number of microphones, equivariant to
their order (:mod:`vae_audio.neural_fca.tac_encoder`).

The separation methods ``"neural-fca"`` and ``"neural-fastfca"``
(:func:`vae_audio.separation.separate` with ``model=PATH``) join the registry through the
package's ``vae_audio.methods`` entry point (:func:`register`). Training
(``vae-audio train neural-fca``) lives in :mod:`vae_audio.neural_fca.recipe`, loaded on use
because it imports Lightning; the blind-teacher warm start (``vae-audio teacher-set``,
``loss.teacher``) in :mod:`vae_audio.neural_fca.teacher`. The shipped default model is
``vae_audio.pretrained("neural-fca")``.
"""

from vae_audio.neural_fca.em import estimate_scm, identity_scm
from vae_audio.neural_fca.encoder import EncoderConfig, NeuralFCAEncoder
from vae_audio.neural_fca.inference import (
    NeuralFcaFit,
    fit_neural_fca,
    merge_inactive_slots,
    register,
    separate_with_model,
)
from vae_audio.neural_fca.iss import iss_sweep, weighted_covariance
from vae_audio.neural_fca.jd_encoder import NeuralFastFCAEncoder
from vae_audio.neural_fca.model import NeuralFCA, NeuralFCAConfig, NeuralFCAOutput
from vae_audio.neural_fca.modelfile import (
    KIND,
    build_neural_fca,
    load_neural_fca,
    save_neural_fca,
)
from vae_audio.neural_fca.objective import NeuralFCALoss, full_nll, jd_nll, neural_fca_loss
from vae_audio.neural_fca.tac_encoder import TACFastFCAEncoder

__all__ = [
    "KIND",
    "EncoderConfig",
    "NeuralFCA",
    "NeuralFCAConfig",
    "NeuralFCAEncoder",
    "NeuralFCALoss",
    "NeuralFCAOutput",
    "NeuralFastFCAEncoder",
    "NeuralFcaFit",
    "TACFastFCAEncoder",
    "build_neural_fca",
    "estimate_scm",
    "fit_neural_fca",
    "full_nll",
    "identity_scm",
    "iss_sweep",
    "jd_nll",
    "load_neural_fca",
    "merge_inactive_slots",
    "neural_fca_loss",
    "register",
    "save_neural_fca",
    "separate_with_model",
    "weighted_covariance",
]

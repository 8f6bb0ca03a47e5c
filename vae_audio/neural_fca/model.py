"""Neural FCA and Neural FastFCA: amortised variational inference for FCA (DESIGN §4).

Generative model (Bando et al., IEEE SPL 2021, Eqs. (1)-(4)), for N = speakers + 1 slots:

    z_nt ~ N(0, I_D),   λ_nft = a_nt · g_f(z_nt),   x_ft ~ N_C(0, Σ_n λ_nft H_nf + ε I),

with ``g`` the speech prior's decoder (:class:`~vae_audio.speech.model.SpeechVAE`) for the
speaker slots, and for the **dedicated noise slot** (the last one) either a small learned
decoder reading only the first ``noise_latent_dim`` latent dimensions (``noise_model:
decoder``, as the ``dim_latent_noi`` option of the published code) or the speech decoder
(``noise_model: prior``: exchangeable slots). ``a_nt`` is an optional per-slot, per-frame
gain predicted by the encoder (``gain: true``): the decoder of a speech prior trained on
loudness-normalised speech cannot reach every level by itself. ``freq_gain: true`` adds a
per-slot frequency response ``u_nf`` (``λ_nft = u_nf a_nt g_f(z_nt)``, the source model of
VAE-FastFCA), which absorbs the colouring of the room, the array and the voice.

Spatial models (``spatial``):

* ``"full"`` — Neural FCA: ``H_nf`` from ``em_iterations`` EM updates started at the identity
  inside every forward (:mod:`vae_audio.neural_fca.em`), gradients flowing through them.
* ``"jd"`` — Neural FastFCA (Bando et al., EUSIPCO 2023): ``Y_ft = Q_f⁻¹ diag(ŷ_ft) Q_f⁻ᴴ``,
  ``ŷ_fmt = Σ_n g_nfm λ_nft + ε``, with ``Q_f`` and ``g`` estimated by the encoder through
  ISS updates (:mod:`vae_audio.neural_fca.jd_encoder`), then optionally refined by
  ``jd_iterations`` MM updates (ISS + MU) driven by the decoder's PSDs.

Inputs are mixtures normalised to unit mean power (:meth:`NeuralFCA.normalise`), as in the
published code, so ``ε`` is relative to the mixture power. ``M`` is fixed per model, except
with ``encoder.kind: tac`` (``spatial: jd`` only): shared per-microphone layers mixed by
transform-average-concatenate (:mod:`vae_audio.neural_fca.tac_encoder`), equivariant to the
order of the microphones, so that ``n_mics: null`` gives one model for any ``M >= 2``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from vae_audio.audio.stft import StftConfig
from vae_audio.core.distributions import DiagonalGaussian
from vae_audio.core.precision import full_precision
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca.em import estimate_scm
from vae_audio.neural_fca.encoder import EncoderConfig, NeuralFCAEncoder
from vae_audio.neural_fca.iss import jd_spatial_updates
from vae_audio.neural_fca.jd_encoder import NeuralFastFCAEncoder
from vae_audio.neural_fca.tac_encoder import TACFastFCAEncoder
from vae_audio.speech.model import SpeechVAE, SpeechVAEConfig

SPATIAL_MODELS = ("full", "jd")
NOISE_MODELS = ("decoder", "prior")


def default_talker_count(counts: tuple[int, ...]) -> int:
    """The talker count a model serving ``counts`` separates when none is given: 2 (every
    method's default) when it serves 2, else its largest count."""
    return 2 if 2 in counts else max(counts)


@dataclass(frozen=True)
class NeuralFCAConfig:
    """Architecture of a :class:`NeuralFCA` (the ``model`` section of a recipe).

    Attributes:
        n_mics: ``M``, fixed per model; None (only with ``encoder.kind: tac``): any
            ``M >= 2``.
        n_speakers: speaker slots; ``N = n_speakers + 1`` with the noise slot last.
        spatial: ``"full"`` (Neural FCA, EM) or ``"jd"`` (Neural FastFCA, ISS).
        em_iterations: ``K`` EM updates of ``H`` per forward (``full``).
        iss_sweeps: ISS sweeps per ISS step of the encoder (``jd``).
        jd_iterations: MM updates of ``Q`` (ISS) and ``g`` (MU) with the decoder's PSDs
            after the encoder, inside every forward (``jd``;
            :func:`~vae_audio.neural_fca.iss.jd_spatial_updates`).
        iss_load: diagonal loading of the ISS covariances (``jd``).
        eps: isotropic floor ``ε`` of ``Y`` (or ``ŷ``), relative to the mixture power.
        gain: predict a per-slot, per-frame gain ``a_nt``.
        freq_gain: predict a per-slot frequency response ``u_nf``.
        noise_model: ``"decoder"`` (dedicated noise decoder) or ``"prior"``.
        noise_latent_dim: latent dimensions the noise decoder reads (the rest are unused).
        noise_hidden: hidden width of the noise decoder.
        freeze_decoder: keep the speech decoder's weights fixed.
        encoder: :class:`EncoderConfig` (``kind: tac`` needs ``spatial: jd``).
        decoder: the speech prior's :class:`SpeechVAEConfig` (``n_freq`` follows the STFT).
        wpe: WPE dereverberation of the mixture before the STFT, in training and wherever the
            model separates (``True`` or a dict of
            :class:`~vae_audio.separation.frontend.WpeConfig` fields; None: none), as the
            published Neural FCA does.
        talkers: the talker counts the model was trained to separate, each in
            ``1..n_speakers`` (the recipe records those of its training data); ``vae-audio
            separate --method auto`` runs the model for these counts only. None: ``n_speakers``
            alone (models trained before the counts were recorded).
    """

    n_mics: int | None
    n_speakers: int = 2
    spatial: str = "full"
    em_iterations: int = 5
    iss_sweeps: int = 1
    jd_iterations: int = 0
    iss_load: float = 1e-4
    eps: float = 1e-6
    gain: bool = True
    freq_gain: bool = False
    noise_model: str = "decoder"
    noise_latent_dim: int = 8
    noise_hidden: int = 128
    freeze_decoder: bool = False
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: SpeechVAEConfig = field(default_factory=SpeechVAEConfig)
    wpe: bool | dict | None = None
    talkers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        m, tac = self.n_mics, self.encoder.kind == "tac"
        if m is None and not tac:
            raise VaeAudioError(
                "model.n_mics=null (any M) needs the TAC encoder: set model.encoder.kind=tac "
                "(with model.spatial=jd) or give the number of microphones"
            )
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 2):
            what = "an integer >= 2 or null" if tac else "an integer >= 2"
            raise VaeAudioError(f"model.n_mics must be {what}, got {m!r}")
        if tac and self.spatial != "jd":
            raise VaeAudioError(
                f"model.encoder.kind=tac is a Neural FastFCA encoder: it needs model.spatial=jd, "
                f"got {self.spatial!r}"
            )
        if self.n_speakers < 1:
            raise VaeAudioError(f"model.n_speakers must be >= 1, got {self.n_speakers}")
        if self.spatial not in SPATIAL_MODELS:
            raise VaeAudioError(
                f"model.spatial={self.spatial!r}; use one of {', '.join(SPATIAL_MODELS)}"
            )
        if self.noise_model not in NOISE_MODELS:
            raise VaeAudioError(
                f"model.noise_model={self.noise_model!r}; use one of {', '.join(NOISE_MODELS)}"
            )
        if self.em_iterations < 0 or self.jd_iterations < 0 or self.iss_sweeps < 1:
            raise VaeAudioError(
                f"model.em_iterations={self.em_iterations} and model.jd_iterations="
                f"{self.jd_iterations} must be >= 0 and model.iss_sweeps={self.iss_sweeps} >= 1"
            )
        if self.talkers is not None:
            counts = self.talkers
            if (
                not isinstance(counts, (tuple, list))
                or not counts
                or any(
                    isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.n_speakers
                    for k in counts
                )
            ):
                raise VaeAudioError(
                    f"model.talkers={counts!r} must be a non-empty list of talker counts in "
                    f"1..{self.n_speakers} (model.n_speakers), or null"
                )
            object.__setattr__(self, "talkers", tuple(sorted(set(counts))))
        if self.noise_model == "decoder" and not 1 <= self.noise_latent_dim <= self.latent_dim:
            raise VaeAudioError(
                f"model.noise_latent_dim={self.noise_latent_dim} must lie in 1..{self.latent_dim} "
                "(the speech prior's latent_dim)"
            )

    @property
    def n_src(self) -> int:
        """``N``: speaker slots plus the noise slot."""
        return self.n_speakers + 1

    @property
    def latent_dim(self) -> int:
        return self.decoder.latent_dim

    @property
    def talker_counts(self) -> tuple[int, ...]:
        """The talker counts the model serves (``talkers``, else ``n_speakers`` alone)."""
        return self.talkers if self.talkers is not None else (self.n_speakers,)

    @property
    def default_talkers(self) -> int:
        """The talker count to separate when none is given (:func:`default_talker_count`)."""
        return default_talker_count(self.talker_counts)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["encoder"], d["decoder"] = self.encoder.to_dict(), self.decoder.to_dict()
        if self.talkers is not None:
            d["talkers"] = list(self.talkers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> NeuralFCAConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise VaeAudioError(f"unknown model key(s) {unknown}; known: {sorted(known)}")
        d = dict(d)
        d["encoder"] = EncoderConfig.from_dict(dict(d.get("encoder") or {}))
        d["decoder"] = SpeechVAEConfig.from_dict(dict(d.get("decoder") or {}))
        return cls(**d)


@dataclass
class NeuralFCAOutput:
    """Result of :meth:`NeuralFCA.forward` (all for the normalised mixture).

    ``posterior`` over ``z [B, N, T, D]``; ``z`` the latents used; ``lam [B, N, F, T]`` the
    PSDs; ``kl [B]`` ``KL(q ‖ N(0, I))`` summed over N, T and the used latent dimensions
    (nats). Full model: ``H [B, N, F, M, M]``. JD model: ``Q [B, F, M, M]``,
    ``g [B, N, F, M]``, ``xt [B, F, M, T]`` (``|Q x|²``).
    """

    posterior: DiagonalGaussian
    z: Tensor
    lam: Tensor
    kl: Tensor
    log_gain: Tensor | None = None
    log_freq_gain: Tensor | None = None
    H: Tensor | None = None
    Q: Tensor | None = None
    g: Tensor | None = None
    xt: Tensor | None = None


class _NoiseDecoder(nn.Module):
    """``z [..., T, Dn] -> exp(MLP(z)) + floor`` ``[..., F, T]`` (tanh MLP, log-domain output)."""

    def __init__(self, latent_dim: int, hidden: int, n_freq: int, floor: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.Tanh(), nn.Linear(hidden, n_freq)
        )
        self.floor = floor

    def forward(self, z: Tensor) -> Tensor:
        return torch.exp(self.net(z).clamp(max=30.0)).transpose(-1, -2) + self.floor


class NeuralFCA(nn.Module):
    """Neural FCA / Neural FastFCA (module docstring).

    Args:
        config: architecture.
        stft: analysis settings; must match the speech prior's.
        prior: speech prior whose decoder is used (deep-copied by the caller if needed);
            None builds a randomly initialised one from ``config.decoder``.
    """

    def __init__(
        self, config: NeuralFCAConfig, stft: StftConfig, prior: SpeechVAE | None = None
    ) -> None:
        super().__init__()
        self.config, self.stft_config = config, stft
        self.prior = prior if prior is not None else SpeechVAE(config.decoder, stft)
        self.prior.check_stft(stft, "the speech prior of this Neural FCA model")
        for p in self.prior.encoder.parameters():  # unused: only the decoder is part of the model
            p.requires_grad_(False)
        for p in self.prior.decoder.parameters():
            p.requires_grad_(not config.freeze_decoder)
        n_freq, c = stft.n_freq, config
        args = (c.encoder, c.n_mics, n_freq, c.n_src, c.latent_dim, c.gain)
        if c.spatial == "full":
            self.encoder = NeuralFCAEncoder(*args, freq_gain=c.freq_gain)
        elif c.encoder.kind == "tac":
            jd = (c.iss_sweeps, c.iss_load)
            self.encoder = TACFastFCAEncoder(
                c.encoder, n_freq, c.n_src, c.latent_dim, c.gain, *jd, freq_gain=c.freq_gain
            )
        else:
            self.encoder = NeuralFastFCAEncoder(
                *args, c.iss_sweeps, c.iss_load, freq_gain=c.freq_gain
            )
        self.noise_decoder = None
        mask = torch.ones(c.n_src, c.latent_dim)
        if c.noise_model == "decoder":
            floor = c.decoder.psd_floor
            self.noise_decoder = _NoiseDecoder(c.noise_latent_dim, c.noise_hidden, n_freq, floor)
            mask[-1, c.noise_latent_dim :] = 0
        self.register_buffer("latent_mask", mask, persistent=False)  # [N, D]

    @property
    def n_mics(self) -> int | None:
        """``M`` the model takes; None: any ``M >= 2``."""
        return self.config.n_mics

    @property
    def mic_equivariant(self) -> bool:
        """Whether the model is equivariant to the order of the microphones (TAC encoder; its
        JD updates then sweep in the data's order, :func:`~.iss.power_order`)."""
        return self.config.encoder.kind == "tac"

    def takes_mics(self, M: int) -> bool:
        """Whether the model separates ``M``-channel mixtures."""
        return M >= 2 if self.n_mics is None else M == self.n_mics

    @property
    def n_src(self) -> int:
        return self.config.n_src

    @staticmethod
    def normalise(x: Tensor) -> tuple[Tensor, Tensor]:
        """``x [B, M, F, T]`` -> (``x / s``, ``s [B]``) with ``s² = mean_{M,F,T} |x|²``
        (floored at 1e-6, so silent inputs stay finite)."""
        power = (x.real.square() + x.imag.square()).clamp_min(1e-6).mean((1, 2, 3))  # [B]
        scale = power.sqrt()
        return x / scale[:, None, None, None].to(x.dtype), scale

    def encode(self, x: Tensor):
        """Encoder output for the normalised mixture ``x [B, M, F, T]``."""
        M, F = x.shape[1], x.shape[2]
        if not self.takes_mics(M) or F != self.stft_config.n_freq:
            mics = "multichannel (M >= 2)" if self.n_mics is None else f"{self.n_mics}-channel"
            raise VaeAudioError(
                f"this Neural FCA model takes {mics} STFTs with "
                f"{self.stft_config.n_freq} bins, got M = {M}, F = {F}"
            )
        return self.encoder(x)

    def psd(
        self, z: Tensor, log_gain: Tensor | None = None, log_freq_gain: Tensor | None = None
    ) -> Tensor:
        """PSDs ``λ [B, N, F, T]`` of latents ``z [B, N, T, D]``, log-gains ``[B, N, T]`` and
        log frequency responses ``[B, N, F]``."""
        if self.noise_decoder is None:
            lam = self.prior.decode(z)  # [B, N, F, T]
        else:
            speech = self.prior.decode(z[:, :-1])  # [B, N-1, F, T]
            noise = self.noise_decoder(z[:, -1:, :, : self.config.noise_latent_dim])  # [B, 1, F, T]
            lam = torch.cat([speech, noise], dim=1)
        if log_gain is not None:
            lam = lam * torch.exp(log_gain.clamp(-30.0, 30.0))[:, :, None, :]
        if log_freq_gain is not None:
            lam = lam * torch.exp(log_freq_gain.clamp(-30.0, 30.0))[..., None]
        return lam

    def kl(self, posterior: DiagonalGaussian) -> Tensor:
        """``KL(q ‖ N(0, I))`` over the used latent dimensions, summed over N, T, D -> ``[B]``."""
        return (posterior.kl_per_dim() * self.latent_mask[:, None]).sum((1, 2, 3))

    def forward(
        self,
        x: Tensor,
        sample: bool = True,
        em_iterations: int | None = None,
        jd_iterations: int | None = None,
    ):
        """One pass on the normalised mixture ``x [B, M, F, T]`` complex.

        Args:
            x: power-normalised mixture STFT (:meth:`normalise`).
            sample: draw ``z`` by reparameterisation (training) or use the posterior mean.
            em_iterations: override ``config.em_iterations`` (full model).
            jd_iterations: override ``config.jd_iterations`` (JD model).

        Returns:
            :class:`NeuralFCAOutput`.
        """
        enc = self.encode(x)  # the networks run under autocast if it is on; from here float32
        with full_precision(x.device):
            return self._complete(x, enc, sample, em_iterations, jd_iterations)

    def _complete(
        self, x: Tensor, enc, sample: bool, em_iterations: int | None, jd_iterations: int | None
    ):
        """The latents, PSDs, KL and spatial model of :meth:`forward` from the encoder's
        output ``enc`` (float32 statistics: :mod:`vae_audio.core.precision`)."""
        z = enc.posterior.rsample() if sample else enc.posterior.mean  # [B, N, T, D]
        z = z * self.latent_mask[:, None]
        lam = self.psd(z, enc.log_gain, enc.log_freq_gain)  # [B, N, F, T]
        kl = self.kl(enc.posterior)
        out = NeuralFCAOutput(enc.posterior, z, lam, kl, enc.log_gain, enc.log_freq_gain)
        if self.config.spatial == "full":
            n_iter = self.config.em_iterations if em_iterations is None else em_iterations
            out.H = estimate_scm(x, lam, n_iter, self.config.eps)
        else:
            Q, g = enc.Q, enc.g
            n_iter = self.config.jd_iterations if jd_iterations is None else jd_iterations
            if n_iter:
                xf = x.transpose(1, 2)  # [B, F, M, T]
                Q, g, out.xt = jd_spatial_updates(
                    xf, lam, Q, g, self.config.eps, n_iter, ordered=self.mic_equivariant
                )
            else:
                out.xt = enc.xt
            out.Q, out.g = Q, g
        return out

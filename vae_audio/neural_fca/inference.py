"""Separation with a trained Neural FCA / Neural FastFCA model.

Pipeline (Bando et al., IEEE SPL 2021, Sec. 3.4; the published ``separate.py``):

1. normalise the mixture to unit mean power; encoder means ``z = E[q(z | x)]`` and gains;
2. spatial model: full — ``em_iterations`` EM updates of ``H`` from the identity (0 keeps
   ``H = I``); JD — the encoder's ``Q`` and ``g``;
3. optional refinement, ``n_iter`` iterations of: one EM update of ``H`` (full) or one ISS
   sweep of ``Q`` with weights ``1/ŷ`` and one MU update of ``g`` (JD; MM steps on the
   likelihood), then one Adam step (``lr``, published 0.2 for 200 iterations) on ``z`` and
   the log-gains (per frame, and per frequency with ``freq_gain``) that lowers the FCA
   negative log-likelihood with the spatial model fixed (no KL term, as published).
   ``n_iter = 0`` is purely amortised;
4. multichannel Wiener filter ``ĉ_nft = λ_nft H_nf Y_ft⁻¹ x_ft`` (or its JD form) on the
   raw mixture. The noise image is the model's dedicated last slot.

**Fewer talkers than slots.** A model with ``n_speakers`` talker slots separates any
``n_src = k`` in ``1..n_speakers``: it fits all its slots as usual, then the ``k`` speaker
slots whose images carry the most energy are the talkers and the images of the other speaker
slots are added to the noise image (:func:`merge_inactive_slots`), so that talkers plus noise
still sum to the Wiener decomposition of the mixture. On a mixture of fewer talkers than the
model has slots, the slots left over are (nearly) silent or hold noise.

Registered as separation methods ``"neural-fca"`` (full-rank SCMs by EM; on a model trained
with ``spatial: jd`` this keeps its latents and replaces ``Q``, ``g`` by EM from the
identity) and ``"neural-fastfca"`` (``spatial: jd`` models only):
``separate(mix, method="neural-fca", model=PATH, n_src=2, stft=<the model's STFT>)`` (``n_src``
from 1 to the model's ``n_speakers``, with ``noise_slot=True``), with chunking for long
inputs handled by :func:`vae_audio.separation.separate`. :func:`separate_with_model` fills
in the model's STFT, sample rate and speaker count.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vae_audio.audio.stft import StftConfig
from vae_audio.errors import VaeAudioError
from vae_audio.neural_fca.em import estimate_scm
from vae_audio.neural_fca.iss import jd_spatial_updates
from vae_audio.neural_fca.model import NeuralFCA
from vae_audio.neural_fca.modelfile import check_spectrogram, load_neural_fca
from vae_audio.neural_fca.objective import full_nll, jd_nll
from vae_audio.separation.api import separate
from vae_audio.separation.fastmnmf import jd_scm
from vae_audio.separation.fca import em_update_scm
from vae_audio.separation.linalg import outer_hermitian
from vae_audio.separation.priors import check_made_for
from vae_audio.separation.registry import METHODS, MethodSpec, register_method
from vae_audio.separation.wiener import wiener_full_rank, wiener_jd


@dataclass
class NeuralFcaFit:
    """A fitted Neural FCA model, in the power units of the raw mixture.

    ``lam [B, N, F, T]`` PSDs, ``eps [B]`` the floor, ``z [B, N, T, D]`` latents; full
    model ``H [B, N, F, M, M]``, JD model ``Q [B, F, M, M]`` and ``g [B, N, F, M]``;
    ``log_likelihood [B, I + 1]`` (nats, summed over F and T, constant included) after the
    amortised estimate and after each refinement iteration, of the model with all its slots;
    ``noise_index [B]`` the noise slot of :meth:`images` (the last); ``n_talkers`` the
    talkers :meth:`images` returns (None: every speaker slot; :meth:`with_talkers`).
    """

    lam: torch.Tensor
    eps: torch.Tensor
    z: torch.Tensor
    log_likelihood: torch.Tensor
    noise_index: torch.Tensor
    H: torch.Tensor | None = None
    Q: torch.Tensor | None = None
    g: torch.Tensor | None = None
    n_talkers: int | None = None

    @property
    def merges_slots(self) -> bool:
        """Whether :meth:`images` returns fewer talkers than the model has speaker slots."""
        return self.n_talkers is not None and self.n_talkers < self.lam.shape[1] - 1

    def with_talkers(self, n_talkers: int) -> NeuralFcaFit:
        """This fit returning ``n_talkers`` talkers (1 to the speaker slots ``N - 1``) and the
        noise from :meth:`images` (:func:`merge_inactive_slots`); ``noise_index`` follows."""
        n_speakers = self.lam.shape[1] - 1
        if not 1 <= n_talkers <= n_speakers:
            raise VaeAudioError(
                f"the model separates 1 to {n_speakers} talker(s), got n_talkers={n_talkers}"
            )
        index = torch.full_like(self.noise_index, n_talkers)  # [B], the last returned slot
        return dataclasses.replace(self, n_talkers=n_talkers, noise_index=index)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Wiener-filtered images ``[B, N, M, F, T]`` of the raw mixture ``x [B, M, F, T]``;
        ``[B, n_talkers + 1, M, F, T]`` (talkers, then the noise) after :meth:`with_talkers`."""
        if self.H is not None:
            images = wiener_full_rank(x, self.lam, self.H, self.eps)  # [B, N, M, F, T]
        else:
            eps = self.eps[:, None].expand(-1, x.shape[2])  # [B, F]
            images = wiener_jd(x, self.lam, self.g, self.Q, eps)  # [B, N, M, F, T]
        if self.merges_slots:
            return merge_inactive_slots(images, self.n_talkers)
        return images

    def scm(self) -> torch.Tensor | None:
        """SCMs ``[B, N, F, M, M]`` (``Q⁻¹ diag(g_n) Q⁻ᴴ`` for the JD model); None once
        :meth:`with_talkers` merges slots (the merged noise image has no single SCM)."""
        if self.merges_slots:
            return None
        return self.H if self.H is not None else jd_scm(self.Q, self.g)


def merge_inactive_slots(images: torch.Tensor, n_talkers: int) -> torch.Tensor:
    """The ``n_talkers`` most energetic speaker slots of ``images [B, N, M, F, T]`` (speaker
    slots first, the noise slot last) and the noise slot plus every other speaker slot:
    ``[B, n_talkers + 1, M, F, T]``, the kept talkers in slot order, the noise last.

    Energy per batch item: ``Σ_{m,f,t} |ĉ_nmft|²`` (sum over mics, frequencies and frames of
    the image power). The returned slots sum to the same total as ``images``.
    """
    B, N = images.shape[:2]
    if not 1 <= n_talkers <= N - 1:
        raise VaeAudioError(f"n_talkers must lie in 1..{N - 1}, got {n_talkers}")
    speech = images[:, :-1]  # [B, N - 1, M, F, T]
    energy = (speech.real.square() + speech.imag.square()).sum((2, 3, 4))  # [B, N - 1]
    kept = energy.topk(n_talkers, dim=1).indices.sort(dim=1).values  # [B, k]
    batch = torch.arange(B, device=images.device)[:, None]  # [B, 1]
    inactive = torch.ones(B, N - 1, dtype=torch.bool, device=images.device)
    inactive[batch, kept] = False
    rest = (speech * inactive[:, :, None, None, None]).sum(1)  # [B, M, F, T]
    noise = images[:, -1] + rest  # [B, M, F, T]
    return torch.cat([speech[batch, kept], noise[:, None]], dim=1)  # [B, k + 1, M, F, T]


def fit_neural_fca(
    x: torch.Tensor,
    model: NeuralFCA,
    n_iter: int = 0,
    em_iterations: int | None = None,
    lr: float = 0.2,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    spatial: str | None = None,
    jd_iterations: int | None = None,
) -> NeuralFcaFit:
    """Fit ``model`` to the mixture STFT ``x [B, M, F, T]`` (module docstring, steps 1-3).

    Args:
        x: complex mixture STFT with the model's ``M`` and STFT settings.
        model: the network (put in eval mode here; its weights are not changed).
        n_iter: refinement iterations (0: amortised).
        em_iterations: EM updates of ``H`` before refinement (default: the training value).
        lr: Adam step size on ``z`` during refinement.
        callback: ``callback(it, log_likelihood [B])`` after every refinement iteration.
        spatial: None uses the model's spatial model; ``"full"`` on a Neural FastFCA model
            keeps its latents and gains but estimates full-rank SCMs by ``em_iterations``
            EM updates from the identity (and refines with EM), to compare the two spatial
            models on the same source estimates.
        jd_iterations: MM updates of ``Q`` and ``g`` after the encoder of a Neural FastFCA
            model (default: the training value). More than it was trained with raise the
            amortised SDR at their cost (README, "Amortised speed").
    """
    if spatial not in (None, "full", "jd"):
        raise VaeAudioError(f"spatial={spatial!r}; use 'full', 'jd' or None (the model's)")
    if spatial == "jd" and model.config.spatial == "full":
        raise VaeAudioError(
            "a Neural FCA model trained with spatial: full has no diagonaliser Q; use "
            "spatial='full' (method 'neural-fca')"
        )
    model.eval()
    M, F, T = x.shape[1:]
    xn, scale = model.normalise(x)
    eps = model.config.eps
    K = model.config.em_iterations if em_iterations is None else em_iterations
    with torch.no_grad():
        out = model(xn, sample=False, em_iterations=K, jd_iterations=jd_iterations)
    z, log_gain, log_u, H, Q, g = out.z, out.log_gain, out.log_freq_gain, out.H, out.Q, out.g
    if spatial == "full" and H is None:  # full-rank SCMs by EM on the JD model's latents
        with torch.no_grad():
            H = estimate_scm(xn, out.lam, K, eps)
        Q = g = None
    xf = xn.transpose(1, 2)  # [B, F, M, T]
    xt = out.xt  # |Q x|² of the JD model's current Q [B, F, M, T] (the full model's: unused)

    def nll(lam: torch.Tensor) -> torch.Tensor:  # [B], nats per bin
        if H is not None:
            return full_nll(xn, lam, H, eps)
        return jd_nll(xt, lam, g, Q, eps)

    # log-likelihood of the raw mixture: Y_raw = s² Y, so log det Y_raw = log det Y + M log s².
    offset = M * torch.log(math.pi * scale.square())  # [B]
    history = [-(nll(out.lam) + offset) * F * T]
    lam = out.lam
    if n_iter > 0:
        z = z.detach().clone().requires_grad_(True)
        params = [z]
        if log_gain is not None:
            log_gain = log_gain.detach().clone().requires_grad_(True)
            params.append(log_gain)
        if log_u is not None:
            log_u = log_u.detach().clone().requires_grad_(True)
            params.append(log_u)
        optim = torch.optim.Adam(params, lr=lr)
        xx = outer_hermitian(xf.to(torch.complex128)) if Q is not None else None  # for the JD steps
        for it in range(n_iter):
            with torch.no_grad():
                if H is not None:
                    H = em_update_scm(xn, lam, H, eps, project=True)
                else:
                    ordered = model.mic_equivariant  # TAC: equivariant sweep order
                    Q, g, xt = jd_spatial_updates(xf, lam, Q, g, eps, 1, xx, ordered)
            with torch.enable_grad():  # gradients for z and the gains only, not the weights
                loss = nll(model.psd(z * model.latent_mask[:, None], log_gain, log_u)).sum()
                for p, grad in zip(params, torch.autograd.grad(loss, params), strict=True):
                    p.grad = grad
                optim.step()
            with torch.no_grad():
                lam = model.psd(z * model.latent_mask[:, None], log_gain, log_u)
                history.append(-(nll(lam) + offset) * F * T)
            if callback is not None:
                callback(it, history[-1])
    power = scale.square().to(lam.dtype)  # [B]
    return NeuralFcaFit(
        lam=lam.detach() * power[:, None, None, None],
        eps=eps * power,
        z=z.detach(),
        log_likelihood=torch.stack(history, 1).detach(),
        noise_index=torch.full((x.shape[0],), model.n_src - 1, dtype=torch.long, device=x.device),
        H=H,
        Q=Q,
        g=g,
    )


_CACHE: dict[tuple, NeuralFCA] = {}


def _model_for(source: Any, x: torch.Tensor) -> NeuralFCA:
    """The model named by ``source`` (path or module) on ``x``'s device and real dtype."""
    if source is None:
        raise VaeAudioError(
            "Neural FCA separation needs model=PATH, the model.pt exported by "
            "`vae-audio train neural-fca`"
        )
    if isinstance(source, NeuralFCA):  # the caller's module is copied, never converted
        p = next(source.parameters())
        if p.device == x.device and p.dtype == x.real.dtype:
            return source
        return copy.deepcopy(source).to(device=x.device, dtype=x.real.dtype)
    path = Path(source)
    if not path.is_file():
        return load_neural_fca(path)  # raises with the reason
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load_neural_fca(path)
    return _CACHE[key].to(device=x.device, dtype=x.real.dtype)


def _api_fit(spatial: str, method: str):
    """``MethodSpec.fit`` for :func:`vae_audio.separation.separate`."""

    def fit(
        x, n_slots, n_iter, seed, callback, model=None, em_iterations=None, lr=0.2,
        noise_slot=False, jd_iterations=None,
    ):  # fmt: skip
        # noise_slot: set through MethodSpec.noise_defaults when separate() splits off a
        # noise slot, i.e. n_slots = n_src + 1
        net = _model_for(model, x)
        what = f"Neural FCA model {model}" if not isinstance(model, NeuralFCA) else "the model"
        check_spectrogram(net, x.shape[1], x.shape[2], what)
        if spatial == "jd" and net.config.spatial != "jd":
            raise VaeAudioError(
                f"{what} has spatial model 'full' (no diagonaliser); use method='neural-fca'"
            )
        n_spk = net.config.n_speakers
        if noise_slot and n_slots > net.n_src:
            raise VaeAudioError(
                f"{what} separates {n_spk} speaker(s) at most plus a noise slot; pass n_src "
                f"from 1 to {n_spk} (got n_src={n_slots - 1})"
            )
        if not noise_slot and n_slots != net.n_src:
            raise VaeAudioError(
                f"{what} separates {n_spk} speaker(s) at most plus a noise slot; pass n_src "
                f"from 1 to {n_spk} with noise_slot=True (got {n_slots} slots without one)"
            )
        del seed  # inference is deterministic (posterior means)
        if jd_iterations is not None and (net.config.spatial != "jd" or spatial == "full"):
            raise VaeAudioError(
                f"jd_iterations applies to the jointly diagonalised spatial model of "
                f"neural-fastfca; {what} with method {method!r} uses em_iterations"
            )
        result = fit_neural_fca(x, net, n_iter, em_iterations, lr, callback, spatial, jd_iterations)
        return result.with_talkers(n_slots - 1) if noise_slot else result

    fit.__name__ = f"fit_{method.replace('-', '_')}"
    return fit


def _model_frontend(opts: dict):
    """The WPE front end the model in ``opts["model"]`` was trained with (None: none)."""
    model = opts.get("model")
    if model is None:
        return None
    return _model_for(model, torch.zeros(())).config.wpe  # the cached CPU copy


def _check_model_stft(method: str, opts: dict, stft: StftConfig) -> None:
    """``MethodSpec.check_stft``: the model in ``opts["model"]`` must have been trained at
    ``stft``'s sample rate and settings (the number of bins alone would let a 16-kHz model run
    on 48-kHz spectra of the same FFT size)."""
    model = opts.get("model")
    if model is None:
        return  # the fit says that a model is needed
    what = f"the Neural FCA model {model}" if not isinstance(model, NeuralFCA) else "its model"
    check_made_for(method, what, _model_for(model, torch.zeros(())).stft_config, stft)


def register() -> None:
    """Add ``"neural-fca"`` and ``"neural-fastfca"`` to the separation method registry (the
    package's ``vae_audio.methods`` entry point, loaded on the registry's first read)."""
    specs = {
        "neural-fca": ("full", "Neural FCA: amortised FCA with a VAE speech prior (Bando 2021)"),
        "neural-fastfca": ("jd", "Neural FastFCA: JD spatial model, ISS (Bando et al. 2023)"),
    }
    for name, (spatial, description) in specs.items():
        if name not in METHODS:
            spec = MethodSpec(
                _api_fit(spatial, name), default_n_iter=0, description=description,
                noise_defaults={"noise_slot": True}, frontend=_model_frontend,
                check_stft=_check_model_stft,
            )  # fmt: skip
            register_method(name, spec)


def separate_with_model(mixture, model: str | os.PathLike | NeuralFCA, **kwargs):
    """:func:`vae_audio.separation.separate` with the model's STFT, rate, method and talker
    count filled in (:attr:`~vae_audio.neural_fca.model.NeuralFCAConfig.default_talkers`);
    ``mixture [M, S]`` or ``[B, M, S]`` at the model's sample rate. ``kwargs`` go to
    ``separate`` (e.g. ``n_src=1`` for fewer talkers than the model's ``n_speakers``,
    ``n_iter=200``, ``chunk_seconds=10``, ``device``)."""
    net = load_neural_fca(model)
    method = "neural-fastfca" if net.config.spatial == "jd" else "neural-fca"
    s = net.stft_config
    kwargs = {"n_src": net.config.default_talkers, "sr": s.sample_rate, "stft": s, **kwargs}
    source = model if isinstance(model, NeuralFCA) else str(model)  # a path stays a path
    return separate(mixture, method=method, model=source, **kwargs)

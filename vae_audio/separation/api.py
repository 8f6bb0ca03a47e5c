"""``separate()``: waveform in, speaker images out, for every registered separation method.

Pipeline: STFT -> ``METHODS[method].fit`` -> the fitted model's Wiener filter -> ISTFT ->
noise slot designation and speaker ordering; optionally chunk by chunk
(:mod:`vae_audio.separation.chunking`).

**Noise slot.** With ``noise_slot=True`` (default) a method fits ``N = n_src + 1`` slots
and one of them is returned as ``noise``. A method may name its noise slot itself (a model
attribute ``noise_index [B]``): the VAE methods (an NMF noise slot) and ``fastmnmf2``, whose
default with a noise slot is ``init="noise"`` (``MethodSpec.noise_defaults``): a first stage
with frequency-flat speech slots and a stationary noise slot, then FastMNMF2 with the last
slot kept stationary, so the last slot is the noise by construction
(:mod:`vae_audio.separation.fastmnmf`). Otherwise the slot whose SCMs are the most diffuse is
the noise: the lowest mean over F of ``λ_max(H_nf) / tr(H_nf)`` (1 for a rank-1 point
source, ``1/M`` for isotropic noise), since FastMNMF/MNMF/FCA slots from the other starts are
exchangeable and "the last slot" means nothing there. Measured on ``data/sim/bench10`` (10
default-preset mixtures: 2 talkers + diffuse noise, 4 mics) with FastMNMF2, 100 iterations,
seeds 0-2 (``egs/bench/noise_slot_start.py``, command and table in its docstring), mean SDR /
SI-SDR of the two returned talkers: ``twostep`` + diffuseness 5.73 / 2.71 dB (8.11 dB SDR
when the references pick the best 2 of 3 outputs; 12 of 60 talkers dropped as noise),
``init="noise"`` 9.71 / 8.70 dB (no talker dropped).
``init="auto"`` picks a start per mixture (:mod:`vae_audio.separation.starts`); the
chosen fit's ``noise_index`` is used when its start names one.
Speaker images are ordered by energy (sum over mics and samples), loudest first.

**Registry.** ``METHODS`` (:mod:`vae_audio.separation.registry`) maps a name to a
:class:`MethodSpec`; the methods below register here, the Neural FCA models and other
packages' methods through the registry's entry points. ``spec.fit(x [B, M, F, T], n_slots,
n_iter, seed, callback, **opts)`` returns a fitted model with ``log_likelihood [B, I + 1]``
(nats, summed over F and T), ``images(x) -> [B, N, M, F, T]`` and ``scm() -> [B, N, F, M, M]``
or None.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from vae_audio.audio.stft import StftConfig, istft
from vae_audio.audio.stft import stft as stft_transform
from vae_audio.errors import VaeAudioError
from vae_audio.separation.chunking import ChunkOutput, align_to_previous, separate_in_chunks
from vae_audio.separation.covariance import diffuseness_rank
from vae_audio.separation.fastmnmf import fit_fastmnmf
from vae_audio.separation.fca import fit_free_fca
from vae_audio.separation.frontend import WpeConfig, dereverberate, wpe_config
from vae_audio.separation.mnmf import fit_mnmf
from vae_audio.separation.priors import check_prior_stft
from vae_audio.separation.registry import METHODS, MethodSpec, register_method
from vae_audio.separation.starts import START_OPTIONS, SelectedFit, selecting_fit
from vae_audio.separation.vae_fca import PRIOR as VAE_FCA_PRIOR
from vae_audio.separation.vae_fca import REFIT_ITERATIONS, fit_vae_fca, refit_vae_fca
from vae_audio.separation.vae_nmf import PRIOR as VAE_NMF_PRIOR
from vae_audio.separation.vae_nmf import fit_vae_nmf

REFIT_WEIGHT = 0.5  # separate(refit=...): the re-fit's share of the output


def _builtin(fn: Callable[..., Any], description: str, **fixed: Any) -> MethodSpec:
    """Wrap ``fn(x, n_src, n_iter=, seed=, callback=, **options)`` as a ``MethodSpec``."""

    def fit(x, n_slots, n_iter, seed, callback, **opts):
        return fn(x, n_slots, n_iter=n_iter, seed=seed, callback=callback, **fixed, **opts)

    taken = {"x", "n_src", "n_iter", "seed", "callback", *fixed}
    options = tuple(p for p in inspect.signature(fn).parameters if p not in taken)
    return MethodSpec(fit, description=description, options=options)


def _with_starts(spec: MethodSpec, family: str) -> MethodSpec:
    """``spec`` whose fit also takes ``init="auto"`` (and MNMF/FCA ``init="noise"``):
    :func:`vae_audio.separation.starts.selecting_fit`."""
    options = (*spec.options, *START_OPTIONS)
    return dataclasses.replace(spec, fit=selecting_fit(spec.fit, family), options=options)


register_method(
    "fastmnmf2",
    dataclasses.replace(
        _with_starts(
            _builtin(
                fit_fastmnmf,
                "FastMNMF2, frequency-independent JD SCMs (Sekiguchi et al. 2020)",
                frequency_dependent=False,
            ),
            "jd",
        ),
        noise_defaults={"init": "noise"},
    ),
)
register_method(
    "fastmnmf",
    _with_starts(
        _builtin(
            fit_fastmnmf,
            "FastMNMF, frequency-dependent JD SCMs (Sekiguchi et al. 2019)",
            frequency_dependent=True,
        ),
        "jd",
    ),
)
register_method(
    "mnmf",
    _with_starts(
        _builtin(fit_mnmf, "MNMF: full-rank SCMs and NMF PSDs (Sawada et al. 2013)"), "mnmf"
    ),
)
register_method(
    "fca",
    _with_starts(_builtin(fit_free_fca, "FCA with free PSDs, EM or MU (Duong et al. 2010)"), "fca"),
)
# VAE speech prior + NMF noise; `stft` is fixed to None: a fit sees only the spectrogram, so
# the prior is checked against its number of bins (vae_audio.separation.priors).
register_method(
    "vae-fca",
    dataclasses.replace(
        _builtin(
            fit_vae_fca,
            "VAE-FCA / MNMF-DP: full-rank SCMs, VAE speech + NMF noise (Sekiguchi et al. 2018)",
            spatial="full",
            stft=None,
        ),
        default_n_iter=100,
        defaults={"prior": VAE_FCA_PRIOR},
        check_stft=check_prior_stft,
    ),
)
register_method(
    "vae-fastfca",
    dataclasses.replace(
        _builtin(
            fit_vae_fca,
            "FastMNMF2-DP: JD SCMs, VAE speech + NMF noise (Sekiguchi et al. 2019)",
            spatial="jd",
            algorithm=None,
            stft=None,
        ),
        default_n_iter=100,
        defaults={"prior": VAE_FCA_PRIOR},
        check_stft=check_prior_stft,
    ),
)
register_method(
    "vae-nmf",
    dataclasses.replace(
        _builtin(fit_vae_nmf, "single-channel VAE-NMF, n_src=1 (Bando 2018, Leglaive 2018)"),
        multichannel=False,
        default_n_iter=50,
        defaults={"prior": VAE_NMF_PRIOR},
        check_stft=check_prior_stft,
    ),
)


@dataclass
class SeparationResult:
    """Output of :func:`separate`. ``B?`` is absent when the input was ``[M, S]``.

    ``sources [B?, N, M, S]`` speaker images at every mic (loudest first; mic 0 is the
    reference), ``noise [B?, M, S]`` or None, ``objective [B?, C, I + 1]`` the model
    log-likelihood per time-frequency bin (nats / (F·T)) before the first and after every
    iteration, per chunk (C = 1 without chunking; NaN-padded), ``timings`` in seconds
    (``stft``, ``fit``, ``wiener``, ``istft``, ``total``; ``wpe`` with the WPE front end;
    summed over chunks).
    """

    sources: torch.Tensor
    noise: torch.Tensor | None
    objective: torch.Tensor
    timings: dict[str, float]
    method: str
    sample_rate: int
    settings: dict[str, Any] = field(default_factory=dict)


def separate(
    mixture: torch.Tensor | np.ndarray,
    method: str = "fastmnmf2",
    n_src: int = 2,
    sr: int = 16000,
    stft: StftConfig | None = None,
    n_iter: int | None = None,
    chunk_seconds: float | None = None,
    overlap_seconds: float = 1.0,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    noise_slot: bool = True,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    wpe: bool | dict | None = False,
    starts: int = 1,
    blend: Sequence[Mapping[str, Any]] = (),
    refit: Mapping[str, Any] | None = None,
    **opts: Any,
) -> SeparationResult:
    """Separate ``n_src`` speakers from ``mixture [M, S]`` or ``[B, M, S]`` (real, ``sr`` Hz).

    ``stft`` defaults to ``StftConfig(sample_rate=sr)``; ``n_iter`` to the method's
    default; ``chunk_seconds`` (None: whole input) splits long inputs into chunks overlapping
    by ``overlap_seconds``; ``device`` defaults to the input tensor's (CPU for arrays);
    ``dtype`` float32 (complex64 STFT) or float64. ``callback(it, log_likelihood [B])`` runs
    after every iteration (of every chunk). ``opts`` go to the method:
    ``fastmnmf2``/``fastmnmf``: ``n_basis`` (8), ``init`` (fastmnmf2 with a noise slot:
    "noise", otherwise "twostep"), ``n_iter_init``,
    ``g_eps``, ``eps_rel``, ``x_floor``; ``mnmf``: ``n_basis`` (8), ``algorithm`` ("mu"),
    ``init`` ("fastmnmf2"), ``n_iter_init``, ``eps_rel``; ``fca``: ``algorithm`` ("em"),
    ``init`` ("fastmnmf2"), ``n_iter_init``, ``eps_rel`` (see the ``fit_*`` functions).
    All four also take ``init="auto"`` with ``start_rule`` ("likelihood": fit the
    ``noise`` and the exchangeable start, keep the higher likelihood; "snr": one start by a
    blind SNR estimate, ``snr_threshold_db``) and MNMF/FCA ``init="noise"``
    (:mod:`vae_audio.separation.starts`); ``settings["chosen_start"]`` then lists the start
    kept per chunk and batch item.

    ``wpe``: dereverberate each chunk's waveform by WPE before the fit
    (:mod:`vae_audio.separation.frontend`; ``True`` the defaults, a dict of
    :class:`~vae_audio.separation.frontend.WpeConfig` fields, e.g. ``{"taps": 15}``; needs
    nara_wpe). The outputs are then images of the dry + early part of every talker, and
    ``settings["wpe"]`` records the resolved settings (None without WPE).

    ``starts``: fit each chunk from ``starts`` random starts (seeds ``seed``, ``seed + 1``,
    ...), match every start's talkers to the first start's (:func:`average_starts`) and
    average the images: the average of the starts' Wiener filters. It costs ``starts``
    fits; ``objective`` and ``chosen_start`` are then those of the first start.

    ``blend``: other methods whose separations of every chunk are averaged with this one's,
    each with equal weight (talkers matched as for ``starts``): dicts with ``method`` and
    optionally ``starts`` (1), ``n_iter`` (that method's default), ``wpe`` (that member's
    front end, as ``wpe`` above; default: the same as this method's), ``stft`` (that
    member's analysis, see :func:`member_stft`; default: ``stft``) and the method's own
    options, e.g. ``[{"method": "fastmnmf2", "starts": 4, "wpe": True}]``. The members are
    averaged as waveforms, so their STFTs may differ; they share the noise slot and the
    seed, and ``settings["blend"]`` lists them resolved.

    ``refit``: on every chunk, re-fit VAE-FCA (the speech prior with full-rank SCMs) from
    the separation made so far, its starts and blend members averaged, and mix the re-fit's
    images into those it started from with weight ``refit["weight"]`` (default ½;
    :func:`refit_chunk`). A dict of ``weight`` and
    :func:`~vae_audio.separation.vae_fca.refit_vae_fca`'s options (``n_iter``, ``prior``:
    default ``vae-fca``'s in :data:`METHODS`, ``n_basis``, ``z_steps``, ``z_lr``,
    ``eps_rel``), ``{}`` for the defaults; it runs on
    this method's input and STFT, which must be the prior's. The re-fit always has a noise
    slot (with ``noise_slot=False`` its image is dropped) and does not call ``callback``.
    ``settings["refit"]`` records it resolved (None without).
    """
    t_start = time.perf_counter()
    _check_method(method)
    x = _as_batch(mixture, device, dtype)
    unbatched = mixture.ndim == 2
    B, M, S = x.shape
    stft_config = StftConfig(sample_rate=sr) if stft is None else stft
    if stft_config.sample_rate != sr:
        raise VaeAudioError(
            f"sr={sr} but stft.sample_rate={stft_config.sample_rate}; pass matching rates"
        )
    shape = (M, S, n_src, noise_slot, stft_config)
    main = _member(method, n_iter, starts, opts, *shape)
    spec, n_iter, opts = main.spec, main.n_iter, main.opts
    if (wpe is None or wpe is False) and spec.frontend is not None:
        wpe = spec.frontend(opts)  # e.g. a Neural FCA model trained on dereverberated input
    wpe_cfg = wpe_config(wpe)
    main = main._replace(wpe=wpe_cfg)
    members = [main, *(_blend_member(item, wpe_cfg, *shape) for item in blend)]
    refit = _refit_options(refit, stft_config)
    timings = dict.fromkeys(("stft", "fit", "wiener", "istft"), 0.0)
    if any(m.wpe is not None for m in members):
        timings["wpe"] = 0.0
    chosen_starts: list[list[str]] = []  # init="auto": per chunk, per batch item

    def fit_start(X, length, member: _Member, start: int) -> ChunkOutput:
        tick = _Clock(X.device)
        fit = member.spec.fit
        model = fit(X, n_src + noise_slot, member.n_iter, seed + start, callback, **member.opts)
        timings["fit"] += tick()
        if isinstance(model, SelectedFit) and member is main and start == 0:
            chosen_starts.append(list(model.record.chosen))
        images = model.images(X)  # [B, N, M, F, T]
        timings["wiener"] += tick()
        wav = istft(images, member.stft, length=length)  # [B, N, M, S_c]
        timings["istft"] += tick()
        objective = model.log_likelihood / (X.shape[-2] * X.shape[-1])  # [B, I + 1]
        return _split_noise(wav, model, noise_slot, objective)

    def member_input(chunk: torch.Tensor, member: _Member, waves: dict, specs: dict):
        """The chunk's STFT ``[B, M, F, T]`` after ``member``'s front end, in its analysis.
        ``waves`` (front end -> waveform) and ``specs`` (front end, STFT -> STFT) keep what
        the chunk's members share, so each runs once per chunk."""
        cfg, key = member.wpe, (member.wpe, member.stft)
        if cfg not in waves:
            tick = _Clock(chunk.device)
            waves[cfg] = chunk if cfg is None else dereverberate(chunk, sr, cfg)  # [B, M, S_c]
            if cfg is not None:
                timings["wpe"] += tick()
        if key not in specs:
            tick = _Clock(chunk.device)
            specs[key] = stft_transform(waves[cfg], member.stft)  # [B, M, F, T]
            timings["stft"] += tick()
        return specs[key]

    def run_chunk(chunk: torch.Tensor) -> ChunkOutput:
        waves: dict = {}
        specs: dict = {}
        outs = []
        for member in members:  # each method's starts averaged, then the methods
            X = member_input(chunk, member, waves, specs)
            runs = [fit_start(X, chunk.shape[-1], member, k) for k in range(member.starts)]
            outs.append(runs[0] if len(runs) == 1 else average_starts(runs))
        out = outs[0] if len(outs) == 1 else average_starts(outs)
        if refit is None:
            return out
        tick = _Clock(chunk.device)
        X = member_input(chunk, main, waves, specs)
        out = refit_chunk(X, out, main.stft, chunk.shape[-1], seed, **refit)
        timings["refit"] = timings.get("refit", 0.0) + tick()
        return out

    if chunk_seconds is None:
        out = run_chunk(x)
        speakers, noise, objective = out.speakers, out.noise, out.objective[:, None]
    else:
        if chunk_seconds <= 0 or overlap_seconds < 0:
            raise VaeAudioError(
                f"chunk_seconds={chunk_seconds} and overlap_seconds={overlap_seconds} must be "
                "positive; pass e.g. chunk_seconds=10, overlap_seconds=1"
            )
        chunk, overlap = round(chunk_seconds * sr), round(overlap_seconds * sr)
        res = separate_in_chunks(x, run_chunk, chunk, overlap)
        speakers, noise, objective = res.speakers, res.noise, res.objective
    speakers = _order_by_energy(speakers)
    timings["total"] = time.perf_counter() - t_start
    settings = {
        "n_src": n_src,
        "n_iter": n_iter,
        "stft": stft_config.to_dict(),
        "chunk_seconds": chunk_seconds,
        "overlap_seconds": overlap_seconds if chunk_seconds is not None else None,
        "seed": seed,
        "noise_slot": noise_slot,
        "wpe": None if wpe_cfg is None else wpe_cfg.to_dict(sr),
        "starts": starts,
        "blend": [
            {
                "method": m.method,
                "starts": m.starts,
                "n_iter": m.n_iter,
                "wpe": None if m.wpe is None else m.wpe.to_dict(sr),
                "stft": m.stft.to_dict(),
                **m.opts,
            }
            for m in members[1:]
        ],  # fmt: skip
        "refit": refit,
        "dtype": str(dtype).removeprefix("torch."),
        "device": str(x.device),
        **opts,
    }
    if chosen_starts:
        settings["chosen_start"] = chosen_starts
    if unbatched:
        speakers, objective = speakers[0], objective[0]
        noise = None if noise is None else noise[0]
    return SeparationResult(speakers, noise, objective, timings, method, sr, settings)


class _Clock:
    """Seconds since the last call (synchronising CUDA so the split is meaningful)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.last = device, time.perf_counter()

    def __call__(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        elapsed, self.last = now - self.last, now
        return elapsed


def _split_noise(wav, model, noise_slot: bool, objective) -> ChunkOutput:
    """``wav [B, N, M, S]`` -> speakers and the noise image (see the module docstring)."""
    if not noise_slot:
        return ChunkOutput(wav, None, objective)
    B, N = wav.shape[:2]
    index = getattr(model, "noise_index", None)
    if index is None:
        H = model.scm()
        if H is None:
            index = torch.full((B,), N - 1, dtype=torch.long, device=wav.device)
        else:
            index = diffuseness_rank(H).argmin(-1)  # [B]
    keep = torch.ones(B, N, dtype=torch.bool, device=wav.device)
    keep[torch.arange(B, device=wav.device), index] = False
    speakers = wav[keep].reshape(B, N - 1, *wav.shape[2:])  # [B, N - 1, M, S]
    return ChunkOutput(speakers, wav[~keep], objective)  # noise [B, M, S]


def average_starts(outs: list[ChunkOutput]) -> ChunkOutput:
    """The mean of several starts' outputs of one chunk: each start's talkers are matched to
    the first start's by the normalised correlation of their multichannel images
    (:func:`~vae_audio.separation.chunking.align_to_previous`, as across chunks), then the
    talker images and the noise images are averaged. Since every start's images are its
    Wiener filter applied to the same mixture, this applies the average filter. Different
    starts err differently, and the mean loses less than a typical start: on the condition
    matrix it scored above the start with the best likelihood and, on many mixtures, above
    the best single start. ``objective`` is the first start's."""
    ref = outs[0].speakers  # [B, N, M, S]
    total = ref.clone()
    noise = None if outs[0].noise is None else outs[0].noise.clone()
    batch = torch.arange(ref.shape[0], device=ref.device)[:, None]
    for out in outs[1:]:
        perm = torch.tensor(align_to_previous(ref, out.speakers), device=ref.device)  # [B, N]
        total += out.speakers[batch, perm]
        if noise is not None:
            noise += out.noise
    n = len(outs)
    return ChunkOutput(total / n, None if noise is None else noise / n, outs[0].objective)


def refit_chunk(
    X: torch.Tensor, out: ChunkOutput, cfg: StftConfig, length: int, seed: int,
    weight: float = REFIT_WEIGHT, **options: Any,
) -> ChunkOutput:  # fmt: skip
    """``separate(..., refit=...)`` on one chunk: VAE-FCA re-fitted from the separation
    ``out`` of the chunk whose STFT is ``X [B, M, F, T]`` (analysis ``cfg``, ``length``
    samples; :func:`~vae_audio.separation.vae_fca.refit_vae_fca` with ``options``, its noise
    the rest of the mixture), its talker and noise images mixed into ``out``'s with weight
    ``weight``: ``(1 − w)·out + w·re-fit``. Alone (``weight=1``) the re-fit of ``auto``'s
    average gained on the condition matrix's 4-mic 2-talker mixtures and lost on recorded
    voices, where the prior, which has heard synthetic voices only, pulls the PSDs away from
    the talkers; mixed in, it gained on the first and held the second (README, "Re-fitting
    the average"). ``objective`` stays ``out``'s."""
    if weight == 0:
        return out
    talkers = stft_transform(out.speakers.to(X.real.dtype), cfg)  # [B, K, M, F, T]
    fit = refit_vae_fca(X, talkers, seed=seed, **options)
    wav = istft(fit.images(X), cfg, length=length)  # [B, K + 1, M, S]
    K = talkers.shape[1]
    speakers = torch.lerp(out.speakers, wav[:, :K].to(out.speakers.dtype), weight)
    noise = (
        None if out.noise is None else torch.lerp(out.noise, wav[:, K].to(out.noise.dtype), weight)
    )
    return ChunkOutput(speakers, noise, out.objective)


def _refit_options(refit: Mapping[str, Any] | None, stft_config: StftConfig) -> dict | None:
    """``separate``'s ``refit`` checked: None, or a dict of ``refit_vae_fca`` options with the
    speech prior resolved (``vae-fca``'s default in :data:`METHODS` unless given), so that
    ``settings["refit"]`` names the prior the re-fit ran."""
    if refit is None:
        return None
    known = ("weight", "n_iter", "prior", "n_basis", "z_steps", "z_lr", "eps_rel")
    if not isinstance(refit, Mapping) or set(refit) - set(known):
        raise VaeAudioError(
            f"refit is a dict of {', '.join(known)} (or {{}} for the defaults), got {refit!r}"
        )
    n_iter = _check_n_iter(refit.get("n_iter", REFIT_ITERATIONS), "refit's n_iter")
    weight = refit.get("weight", REFIT_WEIGHT)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise VaeAudioError(f"refit's weight must be a number in [0, 1], got {weight!r}")
    refit = {"prior": METHODS["vae-fca"].defaults["prior"], **refit}
    try:
        check_prior_stft("vae-fca", refit, stft_config)
    except VaeAudioError as err:
        raise VaeAudioError(f"refit: {err}; or drop refit") from None
    return {**refit, "n_iter": n_iter, "weight": float(weight)}


def _check_n_iter(n_iter: Any, name: str) -> int:
    """``n_iter`` if it is a non-negative integer, else a one-line error naming ``name``."""
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
        raise VaeAudioError(f"{name} must be a non-negative integer, got {n_iter!r}")
    return n_iter


def _order_by_energy(speakers: torch.Tensor) -> torch.Tensor:
    """Sort ``[B, N, M, S]`` by energy (sum over M and S), loudest first."""
    order = speakers.square().sum((2, 3)).argsort(dim=1, descending=True)  # [B, N]
    return speakers[torch.arange(speakers.shape[0], device=speakers.device)[:, None], order]


def _check_method(method: str) -> MethodSpec:
    if method not in METHODS:
        raise VaeAudioError(
            f"unknown separation method {method!r}; use one of {', '.join(sorted(METHODS))}"
        )
    return METHODS[method]


def _as_batch(mixture, device, dtype: torch.dtype) -> torch.Tensor:
    """``[M, S]`` or ``[B, M, S]`` real array/tensor -> ``[B, M, S]`` tensor."""
    if dtype not in (torch.float32, torch.float64):
        raise VaeAudioError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    if not isinstance(mixture, (torch.Tensor, np.ndarray)):
        raise VaeAudioError(
            f"mixture must be a torch.Tensor or numpy array, got {type(mixture).__name__}"
        )
    x = torch.as_tensor(mixture)
    if x.is_complex() or not x.is_floating_point():
        raise VaeAudioError(
            f"mixture must be a real floating-point waveform, got dtype {x.dtype}; "
            "convert it with .astype('float32') (integer PCM: divide by 32768)"
        )
    if x.ndim not in (2, 3):
        raise VaeAudioError(
            f"mixture must be [M, S] or [B, M, S] (mics, samples), got shape {tuple(x.shape)}"
        )
    x = x.to(device=device if device is not None else x.device, dtype=dtype)
    if not bool(torch.isfinite(x).all()):
        raise VaeAudioError("mixture contains NaN or Inf samples; clean or re-read the audio")
    return x if x.ndim == 3 else x[None]


class _Member(NamedTuple):
    """One method :func:`separate` runs on every chunk, resolved."""

    method: str
    spec: MethodSpec
    n_iter: int
    opts: dict[str, Any]
    starts: int
    stft: StftConfig
    wpe: WpeConfig | None = None  # front end (None: none)


def _member(
    method: str, n_iter: int | None, starts: Any, opts: dict[str, Any],
    M: int, S: int, n_src: int, noise_slot: bool, stft_config: StftConfig,
) -> _Member:  # fmt: skip
    """Check ``method`` and its settings against the input and resolve its defaults."""
    spec = _check_method(method)
    _check_sizes(method, spec, M, S, n_src)
    if spec.options is not None and set(opts) - set(spec.options):
        bad = ", ".join(sorted(set(opts) - set(spec.options)))
        raise VaeAudioError(
            f"method {method!r} has no option(s) {bad}; its options are "
            f"{', '.join(spec.options) or 'none'}"
        )
    opts = {**spec.defaults, **opts}
    if spec.check_stft is not None:
        spec.check_stft(method, opts, stft_config)
    if noise_slot:
        opts = {**spec.noise_defaults, **opts}
    n_iter = spec.default_n_iter if n_iter is None else n_iter
    _check_n_iter(n_iter, "n_iter")
    if isinstance(starts, bool) or not isinstance(starts, int) or starts < 1:
        raise VaeAudioError(f"starts must be a positive integer, got {starts!r}")
    return _Member(method, spec, n_iter, opts, starts, stft_config)


def _blend_member(item: Mapping[str, Any], wpe: WpeConfig | None, *shape) -> _Member:
    """One ``blend`` entry of :func:`separate` (``shape`` as for :func:`_member`); ``wpe``
    and the STFT of ``shape`` are the main method's, which the entry keeps unless it sets
    its own."""
    if not isinstance(item, Mapping) or "method" not in item:
        raise VaeAudioError(
            f"each blend entry is a dict with a 'method', e.g. {{'method': 'fastmnmf2'}}; "
            f"got {item!r}"
        )
    own = ("method", "starts", "n_iter", "wpe", "stft")
    opts = {k: v for k, v in item.items() if k not in own}
    *sizes, stft_config = shape
    cfg = member_stft(stft_config, item["stft"]) if "stft" in item else stft_config
    member = _member(item["method"], item.get("n_iter"), item.get("starts", 1), opts, *sizes, cfg)
    return member._replace(wpe=wpe_config(item["wpe"]) if "wpe" in item else wpe)


def member_stft(main: StftConfig, stft: StftConfig | Mapping[str, Any]) -> StftConfig:
    """The analysis of a ``blend`` member whose entry sets ``stft``: a
    :class:`~vae_audio.audio.stft.StftConfig`, or a dict of its fields that replace those of
    ``main`` (the main method's STFT). A dict that sets ``n_fft`` alone scales ``hop_length``
    and ``win_length`` with it, so ``{"n_fft": 1024}`` on the 512/128 default gives 1024/256:
    the same overlap on longer frames."""
    if isinstance(stft, StftConfig):
        cfg = stft
    elif isinstance(stft, Mapping):
        changes = dict(stft)
        if "n_fft" in changes and isinstance(changes["n_fft"], int) and changes["n_fft"] > 0:
            scale = changes["n_fft"] / main.n_fft
            changes.setdefault("hop_length", max(1, round(main.hop_length * scale)))
            if main.win_length is not None:
                changes.setdefault("win_length", max(1, round(main.win_length * scale)))
        cfg = StftConfig.from_dict({**main.to_dict(), **changes})
    else:
        raise VaeAudioError(
            f"a blend entry's 'stft' is a dict of STFT settings, e.g. {{'n_fft': 1024}}, "
            f"or a StftConfig; got {stft!r}"
        )
    if cfg.sample_rate != main.sample_rate:
        raise VaeAudioError(
            f"a blend member's STFT has sample_rate {cfg.sample_rate} but the input's is "
            f"{main.sample_rate}; leave sample_rate out of the blend entry's 'stft'"
        )
    return cfg


def _check_sizes(method: str, spec: MethodSpec, M: int, S: int, n_src: int) -> None:
    if M > S:
        raise VaeAudioError(
            f"mixture has {M} channels and {S} samples; it looks like [S, M]: "
            "pass it as [M, S] (transpose it)"
        )
    if isinstance(n_src, bool) or not isinstance(n_src, int) or n_src < 1:
        raise VaeAudioError(f"n_src must be a positive integer, got {n_src!r}")
    if spec.multichannel and M < 2:
        raise VaeAudioError(
            f"method {method!r} needs a multichannel mixture (M >= 2), got M = {M}; "
            "pass more microphones or use a single-channel method"
        )
    if spec.needs_n_src_le_m and n_src > M:
        raise VaeAudioError(
            f"method {method!r} separates at most M = {M} sources, got n_src = {n_src}; "
            "use fewer sources or an FCA-type method"
        )

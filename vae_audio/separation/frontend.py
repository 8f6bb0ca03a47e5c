"""WPE dereverberation front end: weighted prediction error on the multichannel STFT.

WPE (Nakatani et al. 2010; the MIMO form of Yoshioka & Nakatani 2012) predicts the late
reverberation of every mic at frame ``t`` from all mics at frames ``t - delay - taps + 1 ...
t - delay`` of the same frequency and subtracts it:
``x̂_ft = y_ft − G_fᴴ ỹ_ft``, ``ỹ_ft`` the ``M · taps`` delayed frames, with ``G_f`` the
weighted least-squares solution ``(Σ_t ỹ ỹᴴ / λ_ft)⁻¹ Σ_t ỹ yᴴ / λ_ft`` and the desired
signal's power ``λ_ft = (1/M) Σ_m |x̂_ftm|²`` re-estimated ``iterations`` times (Eqs. (9)-(11)
of Drude et al. 2018, "NARA-WPE"). The ``delay`` keeps the direct path and the early
reflections (the first ``delay`` frames) out of the prediction: the output estimates the
dry + early image at every mic, not the dry source, so score it against such references.

The math is nara_wpe's torch implementation (``pip install 'vae_audio[wpe]'``), run on the
input's device and batched over frequencies; batch items are processed one by one, so an
item's result does not depend on the others in its batch, and frequencies in blocks whose
working memory stays near 256 MB, however long the input. It runs in complex128 whatever
the input's precision: channels that are nearly coherent (little reverberation, no sensor
noise) make the ``M · taps`` correlation matrix ill-conditioned, and in complex64 the
solution then distorts a dry 2-mic signal to 4 dB SDR (14 dB in complex128, 19 dB with
sensor noise 60 dB down). WPE runs on its own STFT,
:meth:`WpeConfig.stft`: a window of 32 ms rounded to a power of two and a quarter hop
(``n_fft`` 512, hop 128 at 16 kHz, the setting of nara_wpe's examples), so ``taps`` (10)
and ``delay`` (3) span the same time (80 ms of prediction after a 24-ms gap) at every rate.

:func:`separate <vae_audio.separation.api.separate>` applies it to each chunk's waveform
before the fit (``wpe=True`` or a dict of :class:`WpeConfig` fields).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from vae_audio.audio.stft import StftConfig, istft, stft
from vae_audio.errors import VaeAudioError

INSTALL_HINT = "pip install 'vae_audio[wpe]'"
_WINDOW_S = 0.032  # WPE analysis window, seconds (512 samples at 16 kHz)
_BLOCK_BYTES = 256 * 2**20  # working memory of one nara_wpe call (frequency bins in blocks)


@dataclass(frozen=True)
class WpeConfig:
    """WPE settings: filter ``taps`` and prediction ``delay`` in STFT frames, ``iterations``
    of the power re-estimation, and the STFT (``n_fft``/``hop_length`` None: the default
    for the rate, see :meth:`stft`)."""

    taps: int = 10
    delay: int = 3
    iterations: int = 3
    n_fft: int | None = None
    hop_length: int | None = None

    def __post_init__(self) -> None:
        for name, low in (("taps", 1), ("delay", 1), ("iterations", 1)):
            _check_int(name, getattr(self, name), low)
        for name in ("n_fft", "hop_length"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)

    def stft(self, sr: int) -> StftConfig:
        """The STFT WPE runs on at ``sr`` Hz: ``n_fft`` the power of two nearest 32 ms,
        ``hop_length`` a quarter of it, unless set."""
        n_fft = self.n_fft or 2 ** max(round(math.log2(_WINDOW_S * sr)), 4)
        hop = self.hop_length or n_fft // 4
        return StftConfig(sample_rate=sr, n_fft=n_fft, hop_length=hop)

    def to_dict(self, sr: int | None = None) -> dict[str, Any]:
        """JSON-ready settings; with ``sr`` the STFT sizes resolved for that rate."""
        out = dataclasses.asdict(self)
        if sr is not None:
            cfg = self.stft(sr)
            out.update(n_fft=cfg.n_fft, hop_length=cfg.hop_length)
        return out


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise VaeAudioError(f"WPE setting {name} must be an integer >= {low}, got {value!r}")


def wpe_config(option: bool | dict | WpeConfig | None) -> WpeConfig | None:
    """``separate(wpe=...)`` -> a :class:`WpeConfig`, or None for no WPE. ``True``: the
    defaults; a dict: the fields it names (e.g. ``{"taps": 15, "delay": 2}``)."""
    if option is None or option is False:
        return None
    if option is True:
        return WpeConfig()
    if isinstance(option, WpeConfig):
        return option
    if isinstance(option, dict):
        known = {f.name for f in dataclasses.fields(WpeConfig)}
        bad = sorted(set(option) - known)
        if bad:
            raise VaeAudioError(
                f"unknown WPE setting(s) {', '.join(bad)}; use {', '.join(sorted(known))}"
            )
        return WpeConfig(**option)
    raise VaeAudioError(
        f"wpe must be True, False, None or a dict of settings (e.g. {{'taps': 10}}), got {option!r}"
    )


def require_wpe():
    """nara_wpe's torch WPE module, or a one-line error saying how to install it (callers
    check before a job starts)."""
    try:
        from nara_wpe import torch_wpe
    except ImportError:
        raise VaeAudioError(f"WPE needs the nara_wpe package: {INSTALL_HINT}") from None
    return torch_wpe


def wpe_stft(X: torch.Tensor, taps: int = 10, delay: int = 3, iterations: int = 3) -> torch.Tensor:
    """Dereverberate ``X [B, M, F, T]`` (complex) -> ``[B, M, F, T]``, the dry + early
    estimate at every mic (module docstring). Bins whose power is zero in every frame pass
    through unchanged.

    Raises:
        VaeAudioError: nara_wpe is missing, or the input is too short for the filter
            (``T <= delay + taps``).
    """
    torch_wpe = require_wpe()
    B, M, F, T = X.shape
    if T <= delay + taps:
        raise VaeAudioError(
            f"WPE needs more than delay + taps = {delay + taps} STFT frames, got {T}; "
            "use a longer input (or chunk) or fewer taps"
        )
    out = X.clone()
    # bins per call: nara_wpe forms the weighted stacked frames [F_block, M·taps, T] (complex128)
    block = max(1, _BLOCK_BYTES // (16 * M * taps * T))
    for b in range(B):  # one item at a time: nara_wpe's power floor is relative to its input
        Y = X[b].transpose(0, 1).to(torch.complex128)  # [F, M, T]
        bins = torch.nonzero(Y.abs().square().sum((-2, -1)) > 0).flatten()  # active bins
        for part in bins.split(block) if bins.numel() else ():
            try:
                Z = torch_wpe.wpe_v6(Y[part], taps=taps, delay=delay, iterations=iterations)
            except RuntimeError as err:  # singular correlation matrix (torch.linalg.solve)
                raise VaeAudioError(
                    f"WPE failed ({err}); the input is (nearly) silent or too short for "
                    f"{taps} taps: use a longer input or fewer taps"
                ) from None
            out[b, :, part] = Z.transpose(0, 1).to(X.dtype)  # [M, F_block, T]
    return out


def dereverberate(
    wav: torch.Tensor, sr: int, config: WpeConfig | bool | dict | None = True
) -> torch.Tensor:
    """WPE on the waveform ``wav [B, M, S]`` or ``[M, S]`` (real, ``sr`` Hz) -> the same
    shape: STFT (:meth:`WpeConfig.stft`), :func:`wpe_stft`, ISTFT."""
    cfg = wpe_config(config)
    if cfg is None:
        return wav
    stft_config = cfg.stft(sr)
    X = stft(wav, stft_config)  # [B?, M, F, T]
    batched = X.ndim == 4
    X = X if batched else X[None]  # [B, M, F, T]
    Z = wpe_stft(X, cfg.taps, cfg.delay, cfg.iterations)  # [B, M, F, T]
    out = istft(Z if batched else Z[0], stft_config, length=wav.shape[-1])  # [B?, M, S]
    return out.to(wav.dtype)

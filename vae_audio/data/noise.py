"""Dry signals for simulation: pink/white noise, babble, and talkers: utterances joined and
placed in a window.

Every generator returns float64 NumPy arrays of unit RMS (except :func:`place`, which keeps
the input's level), so levels are set later from the reverberant images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

JOIN_GAP_S = 0.2  # silence between utterances joined for one talker (speakers.min_speech_s)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(x**2, axis=-1, keepdims=True))
    return x / np.maximum(rms, 1e-12)


def white_noise(n_signals: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise ``[K, S]``, unit RMS per signal."""
    return _unit_rms(rng.standard_normal((n_signals, n_samples)))


def pink_noise(n_signals: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise ``[K, S]``, unit RMS per signal: white noise whose spectrum is
    scaled by ``1/sqrt(f)`` (no DC), so the power falls by 3 dB per octave."""
    spec = np.fft.rfft(rng.standard_normal((n_signals, n_samples)), axis=-1)  # [K, S//2+1]
    k = np.arange(spec.shape[-1], dtype=float)
    spec *= np.where(k > 0, 1.0 / np.sqrt(np.maximum(k, 1.0)), 0.0)
    return _unit_rms(np.fft.irfft(spec, n=n_samples, axis=-1))


def loop_to_length(signal: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Repeat ``signal [S']`` cyclically from a random start to ``n_samples`` samples."""
    start = int(rng.integers(len(signal)))
    idx = (start + np.arange(n_samples)) % len(signal)
    return signal[idx]


def babble(
    utterances: Sequence[np.ndarray], n_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """Sum of talkers ``[S]``, unit RMS: each utterance looped from a random start to the
    window and normalised to unit RMS before summing (equal-level talkers)."""
    talkers = [_unit_rms(loop_to_length(u, n_samples, rng)) for u in utterances]
    return _unit_rms(np.sum(talkers, axis=0))


def place(signal: np.ndarray, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Fit an utterance into a window of ``n_samples``: a random crop if it is longer, a
    random start (zeros around it) if shorter. Returns ``(window [S], offset)`` where a
    negative offset means the utterance was cropped from sample ``-offset``."""
    if len(signal) >= n_samples:
        start = int(rng.integers(len(signal) - n_samples + 1))
        return signal[start : start + n_samples].copy(), -start
    offset = int(rng.integers(n_samples - len(signal) + 1))
    out = np.zeros(n_samples, dtype=signal.dtype)
    out[offset : offset + len(signal)] = signal
    return out, offset


def join_utterances(parts: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
    """Utterances of one talker ``[S_i]`` -> one signal, :data:`JOIN_GAP_S` of silence
    between them (how ``speakers.min_speech_s`` fills a mixture with short prompts)."""
    if len(parts) == 1:
        return parts[0]
    gap = np.zeros(round(JOIN_GAP_S * sample_rate))
    return np.concatenate([x for part in parts for x in (gap, part)][1:])


def joined_length(parts: Sequence[np.ndarray], sample_rate: int) -> int:
    """Samples of :func:`join_utterances` of ``parts`` (without building it)."""
    return sum(len(p) for p in parts) + (len(parts) - 1) * round(JOIN_GAP_S * sample_rate)

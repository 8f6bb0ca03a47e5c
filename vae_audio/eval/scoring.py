"""Scores of one mixture: matching, BSS Eval, SI-SDR, improvements, PESQ/STOI.

References are reverberant speaker images ``[K, M, S]``, estimates ``[N, M, S]`` (N >= K).
SDR/SIR/SAR, SI-SDR, PESQ and STOI use the reference microphone (channel 0); with
``images=True`` SDR/SIR/SAR/ISR use all channels (mir_eval's ``bss_eval_images``, many times
slower) while SI-SDR, PESQ and STOI stay on channel 0. The matching, the BSS Eval engines and
the silence policy are those of :mod:`vae_audio.eval.metrics`. Improvements:
``sdr_i = sdr - sdr_mix`` and ``si_sdr_i = si_sdr - si_sdr_mix`` where ``*_mix`` score the
mixture's reference-mic signal (all channels for image SDR) used as every source's estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vae_audio.errors import VaeAudioError
from vae_audio.eval import perceptual
from vae_audio.eval.metrics import (
    DEFAULT_ENGINE,
    bss_eval,
    mixture_baseline,
    pairwise_scores,
    si_sdr,
)
from vae_audio.eval.permutation import solve_permutation

METRICS = ("sdr", "si-sdr", *perceptual.PERCEPTUAL)


@dataclass
class MixtureScores:
    """Scores of one mixture: ``perm[k]`` the estimate matched to reference ``k``, ``dropped``
    the unmatched estimates (0-based), ``values[column]`` a ``[K]`` array per metric column."""

    perm: np.ndarray
    dropped: tuple[int, ...]
    values: dict[str, np.ndarray]


def metric_columns(metrics: tuple[str, ...], images: bool) -> list[str]:
    """The value columns produced for ``metrics`` (see :data:`METRICS`)."""
    cols = []
    if "sdr" in metrics:
        cols += ["sdr", "sir", "sar"] + (["isr"] if images else [])
    if "si-sdr" in metrics:
        cols += ["si_sdr"]
    if "sdr" in metrics:
        cols += ["sdr_mix"]
    if "si-sdr" in metrics:
        cols += ["si_sdr_mix"]
    cols += [c for m, c in (("sdr", "sdr_i"), ("si-sdr", "si_sdr_i")) if m in metrics]
    return cols + [m for m in perceptual.PERCEPTUAL if m in metrics]


def score_mixture(
    ref: torch.Tensor,
    est: torch.Tensor,
    mix: torch.Tensor,
    sr: int,
    *,
    metrics: tuple[str, ...] = ("sdr", "si-sdr"),
    images: bool = False,
    criterion: str = "sdr",
    engine: str = DEFAULT_ENGINE,
) -> MixtureScores:
    """Score estimates ``[N, M, S]`` against references ``[K, M, S]`` given the mixture
    ``[M, S]`` (``sr`` Hz, equal S; N >= K). Returns ``[K]`` values per metric column, dB
    except PESQ (MOS-LQO) and STOI (index in [0, 1]). ``engine``: the BSS Eval engine
    (:data:`~vae_audio.eval.metrics.ENGINES`)."""
    ref0, est0, mix0 = ref[:, 0], est[:, 0], mix[0]  # [K, S], [N, S], [S]: reference mic
    ref_bss, est_bss, mix_bss = (ref, est, mix) if images else (ref0, est0, mix0)
    values: dict[str, np.ndarray] = {}
    base = mixture_baseline(ref_bss, mix_bss, images=images, criteria=metrics, engine=engine)
    if "sdr" in metrics:  # matching and metrics together: one pass over the pairs
        bss = bss_eval(ref_bss, est_bss, criterion=criterion, images=images, engine=engine)
        perm, dropped = bss.perm, bss.dropped
        values.update(sdr=bss.sdr, sir=bss.sir, sar=bss.sar)
        if images:
            values["isr"] = bss.isr
        values["sdr_mix"] = base.sdr
        values["sdr_i"] = bss.sdr - base.sdr
    else:
        scores = pairwise_scores(ref_bss, est_bss, criterion, images=images, engine=engine)
        assignment = solve_permutation(scores)
        perm, dropped = assignment.perm, assignment.dropped
    if "si-sdr" in metrics:
        values["si_sdr"] = si_sdr(ref0, est0[perm]).cpu().numpy()  # [K]
        values["si_sdr_mix"] = base.si_sdr
        values["si_sdr_i"] = values["si_sdr"] - base.si_sdr
    pairs = [(ref0[k], est0[j]) for k, j in enumerate(perm.tolist())]
    if "pesq" in metrics:
        values["pesq"] = np.array([perceptual.pesq_wb(r, e, sr) for r, e in pairs])
    if "stoi" in metrics:
        values["stoi"] = np.array([perceptual.stoi(r, e, sr) for r, e in pairs])
    return MixtureScores(perm=perm, dropped=dropped, values=values)


def resolve_metrics(metrics: tuple[str, ...] | None) -> tuple[tuple[str, ...], list[str]]:
    """Validate ``metrics``; ``None`` means SDR, SI-SDR and the installed perceptual ones.

    Returns the metrics to compute and notes about perceptual metrics left out.
    """
    missing = perceptual.unavailable()
    if metrics is None:
        chosen = tuple(m for m in METRICS if m not in missing)
        return chosen, [missing[m] for m in perceptual.PERCEPTUAL if m in missing]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        what = f"unknown metric(s) {unknown}" if unknown else "no metric given"
        raise VaeAudioError(f"{what}; choose from {', '.join(METRICS)}")
    absent = [m for m in metrics if m in missing]
    if absent:
        module = perceptual.MODULES[absent[0]]
        raise VaeAudioError(
            f"metric '{absent[0]}' needs the '{module}' package, which is not installed; "
            f"`pip install {module}` or leave '{absent[0]}' out of the metrics"
        )
    return tuple(m for m in METRICS if m in metrics), []

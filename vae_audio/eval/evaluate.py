"""Evaluate a folder of separated sources against a simulated set.

:func:`evaluate_dir` pairs every mixture of the reference set with the separator's output
folder (:mod:`vae_audio.eval.matching`), loads and checks the audio, scores each mixture with
:func:`~vae_audio.eval.scoring.score_mixture` and returns an :class:`EvalResult`: one row per
(mixture, reference source) and a per-column summary. References are the reverberant speaker
images of the set (its noise is not a source to evaluate).

Input policy. Estimates at another sample rate are resampled to the references' rate (a note
is reported). Estimates whose length differs from the references' by at most
``length_tolerance`` seconds are zero-padded or trimmed to the reference length (so a missing
tail counts as an error, and the references are never cut; a note is reported); a larger
difference raises ``VaeAudioError``, as do fewer estimates than references and references
whose files disagree in length, rate or channels.
"""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from vae_audio.audio.io import audio_info, load_audio
from vae_audio.errors import VaeAudioError
from vae_audio.eval.matching import Estimates, Reference, load_references, match_estimates
from vae_audio.eval.metrics import CRITERIA, DEFAULT_ENGINE, FILTER_LENGTH, check_engine
from vae_audio.eval.scoring import metric_columns, resolve_metrics, score_mixture

PathLike = str | os.PathLike

ID_COLUMNS = ("id", "source", "est_file", "n_ref", "n_est", "dropped")


@dataclass(frozen=True)
class MetricStats:
    """Summary of one metric column over all rows: mean and median of the finite values,
    ``count`` finite values and ``undefined`` non-finite ones (NaN from silent estimates)."""

    mean: float
    median: float
    count: int
    undefined: int


@dataclass
class EvalResult:
    """Rows (one dict per mixture and reference source), column order, per-column summary,
    notes for the user (resampling, trimming, missing packages...) and the settings used."""

    rows: list[dict]
    columns: list[str]
    summary: dict[str, MetricStats]
    n_mixtures: int
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Options:
    metrics: tuple[str, ...]
    images: bool
    criterion: str
    length_tolerance: float
    engine: str = DEFAULT_ENGINE


def _load_references(ref: Reference) -> tuple[torch.Tensor, torch.Tensor, int]:
    mix, sr = load_audio(ref.mix)  # [M, S]
    sources = []
    for path in ref.sources:
        wav, rate = load_audio(path)  # [M, S]
        if rate != sr or wav.shape != mix.shape:
            raise VaeAudioError(
                f"reference '{path}' ({wav.shape[0]} ch, {wav.shape[1]} samples, {rate} Hz) does "
                f"not match its mixture '{ref.mix}' ({mix.shape[0]} ch, {mix.shape[1]} samples, "
                f"{sr} Hz); regenerate the simulated set"
            )
        if not torch.any(wav[0] != 0):
            raise VaeAudioError(
                f"reference '{path}' is silent at the reference mic: SDR is undefined for it; "
                "remove the mixture from the manifest or regenerate it"
            )
        sources.append(wav)
    return torch.stack(sources), mix, sr  # [K, M, S], [M, S]


def _load_estimates(
    files: tuple[Path, ...], sr: int, n_samples: int, n_channels: int, options: _Options
) -> tuple[torch.Tensor, list[str], list[str]]:
    """Estimates ``[N, M, S]`` fitted to the reference length, their file names, notes."""
    wavs, names, notes = [], [], []
    tolerance = int(round(options.length_tolerance * sr))
    for path in files:
        file_sr = audio_info(path).sample_rate
        wav, _ = load_audio(path, sr=sr)  # [M', S'] at the reference rate
        if file_sr != sr:
            notes.append(f"estimates resampled from {file_sr} Hz to the references' {sr} Hz")
        if options.images and wav.shape[0] != n_channels:
            raise VaeAudioError(
                f"estimate '{path}' has {wav.shape[0]} channel(s) but the references have "
                f"{n_channels}; image metrics need full multichannel images (or drop --images)"
            )
        diff = wav.shape[1] - n_samples
        if abs(diff) > tolerance:
            raise VaeAudioError(
                f"estimate '{path}' has {wav.shape[1]} samples but its references have "
                f"{n_samples} ({diff / sr:+.3f} s, tolerance {options.length_tolerance} s); "
                "is it the output for this mixture? re-run the separator on it"
            )
        if diff:
            notes.append(
                f"estimates {'trimmed' if diff > 0 else 'zero-padded'} to the reference "
                f"length, as they differ by at most {options.length_tolerance} s"
            )
            wav = wav[:, :n_samples] if diff > 0 else torch.nn.functional.pad(wav, (0, -diff))
        wavs.append(wav[: n_channels if options.images else 1])
        names.append(
            path.name if path.name.startswith("src") else f"{path.parent.name}/{path.name}"
        )
    return torch.stack(wavs), names, notes  # [N, M or 1, S]


def _evaluate_pair(ref: Reference, found: Estimates, options: _Options) -> tuple[list[dict], list]:
    refs, mix, sr = _load_references(ref)  # [K, M, S], [M, S]
    est, names, notes = _load_estimates(found.files, sr, mix.shape[1], mix.shape[0], options)
    n_ref, n_est = refs.shape[0], est.shape[0]
    if n_est < n_ref:
        raise VaeAudioError(
            f"{found.where} has {n_est} source file(s) but mixture '{ref.id}' has "
            f"{n_ref} speakers; separate it with at least {n_ref} output sources"
        )
    if n_est > n_ref:
        notes.append("more estimates than speakers: see the 'dropped' column")
    scores = score_mixture(
        refs, est, mix, sr, metrics=options.metrics, images=options.images,
        criterion=options.criterion, engine=options.engine,
    )  # fmt: skip
    if any(np.isnan(v).any() for v in scores.values.values()):
        notes.append("undefined (NaN) metrics, e.g. from silent estimates; summaries skip them")
    dropped = ";".join(names[j] for j in scores.dropped)
    stems = [p.stem for p in ref.sources]
    if len(set(stems)) < len(stems):  # s1/<id>.wav, s2/<id>.wav: the folder tells them apart
        stems = [p.parent.name for p in ref.sources]
    rows = []
    for k in range(n_ref):
        row = {
            "id": ref.id,
            "source": stems[k],
            "est_file": names[int(scores.perm[k])],
            "n_ref": n_ref,
            "n_est": n_est,
            "dropped": dropped,
        }
        row.update({col: float(v[k]) for col, v in scores.values.items()})
        rows.append(row)
    return rows, [(note, ref.id) for note in dict.fromkeys(notes)]


def _worker_init() -> None:
    """One thread per worker process: ``jobs`` processes share the cores."""
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def summarise(rows: list[dict], columns: list[str]) -> dict[str, MetricStats]:
    """Mean/median over the finite values of each column (see :class:`MetricStats`)."""
    summary = {}
    for col in columns:
        values = np.array([row[col] for row in rows], dtype=np.float64)
        finite = values[np.isfinite(values)]
        mean = float(finite.mean()) if finite.size else float("nan")
        median = float(np.median(finite)) if finite.size else float("nan")
        summary[col] = MetricStats(mean, median, int(finite.size), int(values.size - finite.size))
    return summary


def evaluate_dir(
    est_dir: PathLike,
    ref: PathLike,
    *,
    metrics: tuple[str, ...] | None = None,
    images: bool = False,
    criterion: str | None = None,
    jobs: int = 1,
    allow_missing: bool = False,
    split: str | None = None,
    length_tolerance: float = 0.1,
    engine: str = DEFAULT_ENGINE,
) -> EvalResult:
    """Score ``est_dir/<id>/src*.wav`` (or ``est_dir/s*/<id>.wav``) against the simulated
    set (folder or manifest) ``ref``.

    ``metrics`` from :data:`~vae_audio.eval.scoring.METRICS` (default: see
    :func:`~vae_audio.eval.scoring.resolve_metrics`); ``criterion``
    (:data:`~vae_audio.eval.metrics.CRITERIA`) drives the permutation, by default SDR when
    computed, else SI-SDR; ``jobs`` > 1 scores mixtures in that many processes; ``engine``
    computes BSS Eval (:data:`~vae_audio.eval.metrics.ENGINES`; image metrics always use
    mir_eval).
    """
    metrics, notes = resolve_metrics(metrics)
    criterion = criterion or ("sdr" if "sdr" in metrics else "si-sdr")
    if criterion not in CRITERIA:
        raise VaeAudioError(f"unknown matching criterion {criterion!r}; use one of {CRITERIA}")
    if jobs < 1 or length_tolerance < 0:
        raise VaeAudioError(
            f"jobs must be >= 1 and length_tolerance >= 0, got {jobs}, {length_tolerance}"
        )
    refs = load_references(ref, split=split)
    matches = match_estimates(est_dir, refs, allow_missing=allow_missing)
    engine = check_engine(engine)
    options = _Options(metrics, images, criterion, float(length_tolerance), engine)
    pairs = matches.pairs
    if jobs == 1 or len(pairs) == 1:
        results = [_evaluate_pair(r, folder, options) for r, folder in pairs]
    else:
        with ProcessPoolExecutor(
            min(jobs, len(pairs)), mp_context=get_context("spawn"), initializer=_worker_init
        ) as pool:
            results = list(
                pool.map(_evaluate_pair, *zip(*pairs, strict=True), [options] * len(pairs))
            )
    rows = [row for pair_rows, _ in results for row in pair_rows]
    by_note = defaultdict(list)
    for _, pair_notes in results:
        for note, ref_id in pair_notes:
            by_note[note].append(ref_id)
    notes += [f"{note} ({len(ids)} mixture(s), e.g. '{ids[0]}')" for note, ids in by_note.items()]
    if matches.missing:
        notes.append(f"{len(matches.missing)} mixture(s) without estimates were skipped")
    if matches.unmatched:
        notes.append(f"{len(matches.unmatched)} estimate folder(s) match no reference, ignored")
    columns = metric_columns(metrics, images)
    settings = {
        "est": str(Path(est_dir).expanduser()),
        "ref": str(Path(ref).expanduser()),
        "metrics": list(metrics),
        "images": images,
        "criterion": criterion,
        "length_tolerance_s": float(length_tolerance),
        "bss_eval": {
            "engine": "mir_eval" if images else engine,
            "function": "bss_eval_images" if images else "bss_eval_sources",
            "filter_length": FILTER_LENGTH,
        },
    }
    return EvalResult(
        rows=rows,
        columns=[*ID_COLUMNS, *columns],
        summary=summarise(rows, columns),
        n_mixtures=len(pairs),
        notes=notes,
        missing=matches.missing,
        settings=settings,
    )

"""Run separators, pyroomacoustics peers, oracles and the mixture floor over a simulated set.

One **run** is one method on one mixture: load the mixture, its talker images and its noise
image; separate (timed and memory-measured, see :mod:`vae_audio.bench.memory`); score the
reference-mic signals with :func:`vae_audio.eval.scoring.score_mixture` (BSS Eval
SDR/SIR/SAR with a 512-tap filter by fast_bss_eval's exact solver, SI-SDR, their
improvements over the mixture; permutation by the Hungarian algorithm on pairwise SDR). Runs
are independent: each uses the same ``seed`` and one thread, so the results do not depend on
``jobs`` or on the order in which worker processes pick runs up.

Methods, candidates and the talker selection: :mod:`vae_audio.bench.methods`.

**Timing.** ``seconds`` is the wall-clock time from the mixture waveform to the candidate
waveforms (STFT, fit, filter, ISTFT; oracles: the images' STFTs too), ``rtf`` = seconds /
mixture duration. Mixture loading and scoring are excluded. With ``jobs`` > 1 the runs share
the cores, so RTFs are comparable only between runs made with the same ``jobs``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vae_audio.audio.stft import StftConfig
from vae_audio.bench.memory import PeakMemory
from vae_audio.bench.methods import (
    ORACLES,
    SELECTIONS,
    accepts_option,
    available_methods,
    candidates,
    load_mixture,
    method_iterations,
    parse_method,
    resolve_methods,
    split_method,
)
from vae_audio.bench.peers import PEERS
from vae_audio.errors import VaeAudioError
from vae_audio.eval.matching import Reference, load_references
from vae_audio.eval.scoring import metric_columns, score_mixture
from vae_audio.separation.frontend import require_wpe

PathLike = str | os.PathLike

METRICS = ("sdr", "si-sdr")
SCORE_COLUMNS = tuple(metric_columns(METRICS, images=False))
ID_COLUMNS = ("id", "method", "source", "est", "n_out", "n_est", "dropped", "error")
COST_COLUMNS = ("seconds", "audio_seconds", "rtf", "rss_mb", "rss_measure", "cuda_mb")


@dataclass(frozen=True)
class BenchSettings:
    """What every run shares: ``n_src`` (None: each mixture's talker count), ``n_iter`` (None:
    each method's default), ``seed``, ``select`` (:data:`SELECTIONS`), ``model`` (passed to
    the methods that take one), ``device`` for our methods (peers and oracles run on CPU).
    ``wpe``: WPE dereverberation before our methods, ``auto`` and the peers (a method
    name's own ``:wpe=`` wins). ``keep_going``: a run that fails with an expected error
    (e.g. a determined peer asked for more talkers than mics) gives rows with NaN scores and
    its ``error`` instead of stopping the benchmark."""

    n_src: int | None = None
    n_iter: int | None = None
    seed: int = 0
    select: str = "best"
    model: str | None = None
    device: str = "cpu"
    keep_going: bool = False
    wpe: bool = False


@dataclass(frozen=True)
class _Run:
    ref: Reference
    method: str
    settings: BenchSettings


@dataclass
class BenchResult:
    """One row per (mixture, method, reference talker) in ``columns`` order, the methods in
    the order asked, the settings and notes for the user."""

    rows: list[dict]
    columns: list[str]
    methods: tuple[str, ...]
    n_mixtures: int
    settings: dict
    notes: list[str] = field(default_factory=list)


def _run(run: _Run) -> list[dict]:
    """Separate and score one mixture with one method -> one row per reference talker."""
    ref, method, settings = run.ref, run.method, run.settings
    data = load_mixture(ref)
    K = data.images.shape[0]
    n_src = settings.n_src or K
    base = split_method(method)[0]
    device = settings.device if base not in PEERS and base not in ORACLES else "cpu"
    try:
        with PeakMemory(device) as mem:
            start = time.perf_counter()
            est, blind = candidates(
                method, data, n_src, n_iter=settings.n_iter, seed=settings.seed,
                model=settings.model, device=device, wpe=settings.wpe,
            )  # fmt: skip
            seconds = time.perf_counter() - start
        chosen = blind if settings.select == "blind" else list(range(est.shape[0]))
        scores = score_mixture(data.images, est[chosen], data.mix, data.sr, metrics=METRICS)
    except VaeAudioError as err:
        if not settings.keep_going:
            raise VaeAudioError(f"{method} on mixture '{ref.id}': {err}") from None
        return _failed_rows(ref, method, K, data, str(err))
    used = {chosen[int(j)] for j in scores.perm}
    audio_seconds = data.mix.shape[-1] / data.sr
    rows = []
    for k in range(K):
        row = {
            "id": ref.id,
            "method": method,
            "source": ref.sources[k].stem,
            "est": chosen[int(scores.perm[k])],
            "n_out": est.shape[0],
            "n_est": len(chosen),
            "dropped": ";".join(str(n) for n in range(est.shape[0]) if n not in used),
            "error": "",
        }
        row.update({col: float(scores.values[col][k]) for col in SCORE_COLUMNS})
        row.update(
            seconds=seconds,
            audio_seconds=audio_seconds,
            rtf=seconds / audio_seconds,
            rss_mb=mem.rss_mb,
            rss_measure=mem.how,
            cuda_mb=mem.cuda_mb,
        )
        rows.append(row)
    return rows


def _failed_rows(ref: Reference, method: str, K: int, data, error: str) -> list[dict]:
    """Rows of a run that failed with ``error``: NaN scores and costs."""
    nan = float("nan")
    audio_seconds = data.mix.shape[-1] / data.sr
    return [
        {"id": ref.id, "method": method, "source": ref.sources[k].stem, "est": -1, "n_out": 0,
         "n_est": 0, "dropped": "", "error": error, **dict.fromkeys(SCORE_COLUMNS, nan),
         "seconds": nan, "audio_seconds": audio_seconds, "rtf": nan, "rss_mb": nan,
         "rss_measure": "", "cuda_mb": nan}
        for k in range(K)
    ]  # fmt: skip


def _preload() -> None:
    """Import what runs use, so first-time imports count in no run's time or memory."""
    import fast_bss_eval.numpy  # noqa: F401
    import pyroomacoustics.bss  # noqa: F401
    import scipy.optimize  # noqa: F401

    import vae_audio.separation  # noqa: F401  (registers the methods)


def _worker_init() -> None:
    """One thread per worker: ``jobs`` processes share the cores, results stay identical."""
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _preload()


@contextlib.contextmanager
def _single_threaded() -> Iterator[None]:
    """The worker settings for in-process runs (``jobs == 1``), restored afterwards."""
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            _preload()
            yield
    finally:
        torch.set_num_threads(old)


def _execute(runs: list[_Run], jobs: int, progress: bool) -> list[list[dict]]:
    """Rows of every run, in the order of ``runs``."""
    bar = tqdm(total=len(runs), desc="bench", unit="run", disable=not progress)
    results: list[list[dict] | None] = [None] * len(runs)
    try:
        if jobs == 1:
            with _single_threaded():
                for i, run in enumerate(runs):
                    bar.set_postfix_str(f"{run.ref.id} {run.method}", refresh=False)
                    results[i] = _run(run)
                    bar.update()
            return results
        ctx = get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init) as pool:
            futures = {pool.submit(_run, run): i for i, run in enumerate(runs)}
            pending = set(futures)
            while pending:  # each run as it finishes: the bar moves, an error stops the rest
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    if future.exception() is not None:
                        for other in pending:
                            other.cancel()
                        raise future.exception()
                    results[futures[future]] = future.result()
                    bar.update()
        return results
    finally:
        bar.close()


def run_bench(
    set_dir: PathLike,
    methods: str | Sequence[str],
    settings: BenchSettings | None = None,
    *,
    jobs: int = 1,
    limit: int | None = None,
    progress: bool = True,
) -> BenchResult:
    """Benchmark ``methods`` (names or ``"a,b"``) on the simulated set ``set_dir`` (folder or
    manifest; the first ``limit`` mixtures) with ``jobs`` worker processes."""
    settings = settings or BenchSettings()
    methods = resolve_methods(methods)
    if settings.select not in SELECTIONS:
        raise VaeAudioError(f"unknown selection {settings.select!r}; use one of {SELECTIONS}")
    for name, value in (("jobs", jobs), ("limit", limit), ("n_src", settings.n_src)):
        if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
            raise VaeAudioError(f"{name} must be a positive integer, got {value!r}")
    if settings.n_iter is not None and settings.n_iter < 0:
        raise VaeAudioError(f"n_iter must be >= 0, got {settings.n_iter}")
    if settings.model is not None and not Path(settings.model).expanduser().is_file():
        raise VaeAudioError(f"model file '{settings.model}' does not exist; give a checkpoint")
    if settings.wpe or any(parse_method(m)[2].get("wpe") for m in methods):
        require_wpe()  # nara_wpe missing: stop before anything runs
    refs = load_references(set_dir)[:limit]
    runs = [_Run(ref, method, settings) for ref in refs for method in methods]
    results = _execute(runs, min(jobs, len(runs)), progress)
    rows = [row for run_rows in results for row in run_rows]
    notes = []
    if any(r["rss_measure"] != "vmhwm" for r in rows):
        notes.append(
            "peak RSS fell back to ru_maxrss growth (no /proc/self/clear_refs): a lower bound"
        )
    failed = {(r["method"], r["error"]) for r in rows if r["error"]}
    for method, error in sorted(failed):
        n = len({r["id"] for r in rows if r["method"] == method and r["error"] == error})
        notes.append(f"{method} failed on {n} mixture(s) (NaN scores): {error}")
    if settings.model and not any(accepts_option(m, "model") for m in methods):
        notes.append(f"no method asked for takes a model; '{settings.model}' was not used")
    info = available_methods()
    record = {
        "set": str(Path(set_dir).expanduser().resolve()),
        "n_mixtures": len(refs),
        "methods": {
            m: {
                "description": info[split_method(m)[0]],
                "n_iter": method_iterations(m, settings.n_iter),
            }
            for m in methods
        },
        **asdict(settings),
        "jobs": jobs,
        "stft": StftConfig().to_dict(),
        "metrics": "reference mic (channel 0): BSS Eval SDR/SIR/SAR (fast_bss_eval, exact "
        "solver, mir_eval bss_eval_sources definitions, 512-tap filter), SI-SDR; dB",
        "memory": "rss_mb: peak RSS growth of the run's process during the separation (MiB; "
        "rss_measure 'vmhwm': kernel high-water mark reset before the run, 'ru_maxrss': "
        "lifetime-peak growth, a lower bound); cuda_mb: torch.cuda.max_memory_allocated growth",
        "versions": _versions(),
    }
    return BenchResult(rows, [*ID_COLUMNS, *SCORE_COLUMNS, *COST_COLUMNS], methods, len(refs),
                       record, notes)  # fmt: skip


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import pyroomacoustics

    from vae_audio import __version__

    return {
        "vae_audio": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pyroomacoustics": pyroomacoustics.__version__,
        "fast_bss_eval": version("fast-bss-eval"),
    }

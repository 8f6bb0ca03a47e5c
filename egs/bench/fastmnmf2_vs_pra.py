"""Our FastMNMF2 against ``pyroomacoustics.bss.fastmnmf2``, side by side on the same mixtures.

    .venv/bin/python egs/bench/fastmnmf2_vs_pra.py [--n-mix 10] [--n-iter 100] [--n-basis 8] \
        [--n-fft 512,1024] [--ll-every 0]

Mixtures: reverberant 4-mic (circular, radius 5 cm) recordings of 2 talkers in diffuse-like
pink noise from :func:`vae_audio.data.simulate_mixture` (default preset, 3-4 s, SNR 5-20 dB).
Talkers are the TTS utterances in ``tests/fixtures/corpus`` (two concatenated per talker)
when present, otherwise synthetic voiced "utterances" (harmonic tones with a gliding pitch
and a syllabic envelope). Both separators get the same STFT (Hann, ``n_fft`` of every
``--n-fft`` entry, hop ``n_fft/4``; default 512-point, hop 128, ``StftConfig()``), ``N = 3``
slots (2 talkers + noise), the same iteration and basis counts and the same initialisation
(identity Q, circular g and pyroomacoustics' own random NMF draws); ours runs with its
default monotone ``sequential`` NMF update and with pyroomacoustics' ``joint`` one, and
with the default ``twostep`` init (its own draws). pyroomacoustics records no likelihood;
ours records it every ``--ll-every`` iterations (default 0: before the first and after the
last only; :func:`~vae_audio.separation.fastmnmf.jd_iterations`), and one more row records
it every iteration (``fit_fastmnmf``'s default) to show what the record costs. BSS
Eval SDR/SIR/SAR (mir_eval, dB) of the mic-0 images of the two talkers, best 2 of 3
outputs by pairwise SDR; wall-clock seconds per mixture, the methods taking turns on every
mixture so that load from other processes hits all of them (after one untimed short run of
each, which takes the one-time initialisations out of the first timing); speed-up = mean
pyroomacoustics time / mean time of the row, per FFT size; peak memory = growth of the
peak RSS of a fresh process (one per method) separating the longest mixture
(:class:`vae_audio.bench.memory.PeakMemory`). pyroomacoustics is called through
:func:`vae_audio.bench.peers.run_peer`, the wrapper ``vae-audio bench`` uses (which
benchmarks any set of methods on a simulated set folder; this script keeps the same-init
comparison of the two FastMNMF2 implementations). ``--threads`` bounds torch's and NumPy's
BLAS/OpenMP threads (default 1: on a shared, loaded machine
multi-threaded runs mostly measure the contention). Prints a Markdown table (means over
mixtures and seeds; with one seed the mean SDR of 10 mixtures still moves by about
+-0.7 dB from one NMF draw to the next, hence ``--seeds``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from threadpoolctl import threadpool_limits

from vae_audio.audio import StftConfig, istft, stft
from vae_audio.bench.memory import PeakMemory
from vae_audio.bench.peers import run_peer
from vae_audio.data import load_preset, simulate_mixture
from vae_audio.eval.metrics import bss_eval
from vae_audio.separation.fastmnmf import fit_fastmnmf
from vae_audio.separation.source_model import NmfPsd

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "corpus" / "wav"


def _talker_pool(rng: np.random.Generator, sr: int) -> list[np.ndarray]:
    files = sorted(CORPUS.glob("*/*.wav")) if CORPUS.is_dir() else []
    if len(files) >= 4:
        return [sf.read(f, dtype="float32")[0] for f in files]
    pool = []
    for _ in range(8):  # synthetic voiced utterances, 1.5 s
        t = np.arange(int(1.5 * sr)) / sr
        f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        wave = sum(np.sin(k * phase) / k for k in range(1, 25))
        env = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0, None) ** 2
        pool.append((wave * env).astype(np.float32))
    return pool


def make_mixtures(n_mix: int, seed: int = 0):
    """``n_mix`` simulated mixtures (``SimulatedMixture``: mix [M, S], images [2, M, S])."""
    preset = load_preset({"length": [3.0, 4.0], "noise": {"snr_db": [5.0, 20.0]}})
    rng = np.random.default_rng(seed)
    pool = _talker_pool(rng, preset.sample_rate)
    gap = np.zeros(int(0.1 * preset.sample_rate), dtype=np.float32)
    mixtures = []
    for _ in range(n_mix):
        pick = rng.permutation(len(pool))[:4]
        talkers = [np.concatenate([pool[pick[k]], gap, pool[pick[k + 2]]]) for k in (0, 1)]
        mixtures.append(simulate_mixture(talkers, preset, rng))
    return mixtures


def run_pra(X: np.ndarray, n_src: int, n_iter: int, n_basis: int, seed: int) -> np.ndarray:
    """pyroomacoustics on ``X [M, F, T]`` with ``n_src`` slots -> mic-0 images ``[N, F, T]``
    (``run_peer`` seeds NumPy's global generator, from which pra draws its NMF)."""
    images = run_peer("pra-fastmnmf2", X, n_src - 1, n_iter, seed=seed, n_basis=n_basis)
    return images[:, 0]  # [N, M, F, T] -> [N, F, T]


def run_ours(
    X: torch.Tensor, args, seed: int, init: str, nmf_update: str, ll_every: int
) -> torch.Tensor:
    """Ours on ``X [M, F, T]`` -> mic-0 images ``[N, F, T]``. ``identity`` starts from
    exactly pyroomacoustics' initial NMF (its ``np.random.rand`` draws for ``seed``);
    ``twostep`` draws its own and spends 10 of the ``n_iter`` iterations on its first stage.
    ``ll_every``: how often the log-likelihood is recorded (``fit_fastmnmf``)."""
    n_src, n_basis, n_iter = args.n_src, args.n_basis, args.n_iter
    if init == "identity":
        np.random.seed(seed)
        M, F, T = X.shape
        H = torch.as_tensor(np.random.rand(n_src, n_basis, T), dtype=torch.float32)
        W = torch.as_tensor(np.random.rand(n_src, F, n_basis), dtype=torch.float32)
        source = NmfPsd(W[None], H[None], joint=nmf_update == "joint")
        fit = fit_fastmnmf(
            X[None], n_src, n_basis, n_iter, init="identity", source=source, ll_every=ll_every
        )
    else:
        fit = fit_fastmnmf(
            X[None],
            n_src,
            n_basis,
            n_iter - 10,
            init=init,
            n_iter_init=10,
            seed=seed,
            nmf_update=nmf_update,
            ll_every=ll_every,
        )
    return fit.images(X[None])[0, :, 0]


# method -> (init, NMF update, log-likelihood recorded every k iterations; None: --ll-every)
METHODS = {
    "pyroomacoustics fastmnmf2 (complex128)": None,
    "ours, same init, sequential NMF update (complex64)": ("identity", "sequential", None),
    "ours, same init, joint NMF update (complex64)": ("identity", "joint", None),
    "ours, twostep init, sequential NMF update (complex64)": ("twostep", "sequential", None),
    "ours, same init, sequential, likelihood every iteration": ("identity", "sequential", 1),
}
PRA = next(iter(METHODS))


def _run(name: str, X: torch.Tensor, args, seed: int):
    if METHODS[name] is None:
        X = X.numpy().astype(np.complex128)
        return run_pra(X, args.n_src, args.n_iter, args.n_basis, seed)
    init, nmf_update, ll_every = METHODS[name]
    ll_every = args.ll_every if ll_every is None else ll_every
    return run_ours(X, args, seed, init, nmf_update, ll_every)


def _memory_probe(name: str, X: np.ndarray, args) -> float:
    """Peak RSS growth (MB) of separating ``X`` in this (fresh) process."""
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads), PeakMemory() as mem:
        _run(name, torch.as_tensor(X), args, args.seed)
    return mem.rss_mb


def evaluate(images_ft, cfg: StftConfig, ref: np.ndarray) -> tuple[float, float, float]:
    """Mean SDR/SIR/SAR (dB) of ``images_ft [N, F, T]`` against ``ref [2, S]``."""
    est = istft(torch.as_tensor(images_ft), cfg, length=ref.shape[-1]).numpy()
    res = bss_eval(ref, est)
    return float(np.mean(res.sdr)), float(np.mean(res.sir)), float(np.mean(res.sar))


def _bench_fft_size(mixtures, cfg: StftConfig, args) -> tuple[dict, dict]:
    """Per-run ``(SDR, SIR, SAR, seconds)`` of every method and its peak RSS growth (MB) on
    ``mixtures`` at the STFT ``cfg``."""
    rows = {name: [] for name in METHODS}
    warm = argparse.Namespace(**{**vars(args), "n_iter": 12})
    for name in METHODS:  # untimed: one-time initialisations (imports, LAPACK, caches)
        with threadpool_limits(args.threads):
            _run(name, stft(torch.as_tensor(mixtures[0].mix), cfg), warm, args.seed)
    for i, m in enumerate(mixtures):
        X = stft(torch.as_tensor(m.mix), cfg)  # [M, F, T] complex64
        ref = m.images[:, 0]  # [2, S] talker images at mic 0
        for seed in range(args.seed, args.seed + args.seeds):
            for name in METHODS:  # side by side on the same mixture and seed
                with threadpool_limits(args.threads):
                    start = time.perf_counter()
                    images = _run(name, X, args, seed)
                    seconds = time.perf_counter() - start
                rows[name].append((*evaluate(images, cfg, ref), seconds))
        print(
            f"n_fft {cfg.n_fft}, mixture {i}: {m.mix.shape[-1] / cfg.sample_rate:.2f} s, "
            f"SNR {m.meta['snr_db']:.1f} dB, RT60 {m.meta['rt60']:.2f} s, "
            + ", ".join(
                f"{np.mean([v[0] for v in r[-args.seeds :]]):.1f} dB/{r[-1][3]:.2f} s"
                for r in rows.values()
            ),
            flush=True,
        )
    longest = max(mixtures, key=lambda m: m.mix.shape[-1])
    X_long = stft(torch.as_tensor(longest.mix), cfg).numpy()
    ctx = multiprocessing.get_context("spawn")
    memory = {}
    for name in METHODS:
        with ctx.Pool(1) as pool:
            memory[name] = pool.apply(_memory_probe, (name, X_long, args))
    return rows, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-mix", type=int, default=10)
    parser.add_argument("--n-iter", type=int, default=100)
    parser.add_argument("--n-basis", type=int, default=8)
    parser.add_argument("--n-src", type=int, default=3, help="slots: talkers + noise")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=3, help="random NMF draws per mixture")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads")
    parser.add_argument(
        "--n-fft", default="512", help="comma-separated FFT sizes, hop n_fft/4 (e.g. 512,1024)"
    )
    parser.add_argument(
        "--ll-every",
        type=int,
        default=0,
        help="ours records the log-likelihood every k iterations (0: first and last only)",
    )
    args = parser.parse_args()
    try:
        n_ffts = [int(v) for v in args.n_fft.split(",")]
    except ValueError:
        parser.error(f"--n-fft takes comma-separated integers, got {args.n_fft!r}")
    if args.ll_every < 0:
        parser.error(f"--ll-every must be >= 0, got {args.ll_every}")

    torch.set_num_threads(args.threads)
    mixtures = make_mixtures(args.n_mix, args.seed)
    results = {}
    for n_fft in n_ffts:
        cfg = StftConfig(n_fft=n_fft, hop_length=n_fft // 4)
        results[n_fft] = _bench_fft_size(mixtures, cfg, args)
    mix_sdr = np.mean(
        [bss_eval(m.images[:, 0], np.stack([m.mix[0]] * 2)).sdr.mean() for m in mixtures]
    )

    record = "first and last only" if args.ll_every == 0 else f"every {args.ll_every}"
    print(
        f"\n{args.n_mix} mixtures x {args.seeds} NMF draws, {args.n_iter} iterations, "
        f"{args.n_basis} bases, N = {args.n_src}, {args.threads} thread(s), hop n_fft/4; "
        f"ours records the log-likelihood {record} unless stated; "
        f"unprocessed mixture SDR {mix_sdr:.2f} dB\n"
    )
    print(
        "| n_fft | method | SDR (dB) | SIR (dB) | SAR (dB) | time (s) | speed-up | peak RSS (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for n_fft, (rows, memory) in results.items():
        base = np.mean([r[3] for r in rows[PRA]])
        for name, r in rows.items():
            a = np.asarray(r)
            print(
                f"| {n_fft} | {name} | {a[:, 0].mean():.2f} | {a[:, 1].mean():.2f} "
                f"| {a[:, 2].mean():.2f} | {a[:, 3].mean():.2f} | {base / a[:, 3].mean():.1f}x "
                f"| {memory[name]:.0f} |"
            )


if __name__ == "__main__":
    main()

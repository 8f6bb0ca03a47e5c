"""Time of the full-rank (FCA-family) separators on one input, one thread.

    OMP_NUM_THREADS=1 .venv/bin/python egs/bench/full_rank_speed.py [--mix FILE.wav] \
        [--seconds 10] [--talkers 2] [--iters 10] [--repeats 3]

Rows: ``separate`` with ``fca``, ``mnmf`` and ``vae-fca`` for ``--iters`` iterations (each
iteration computes the moments ``Y⁻¹`` and ``Y⁻¹ x xᴴ Y⁻¹`` of the full-rank model two or
three times, most of its cost), and the VAE-FCA re-fit that ``auto`` runs after its average
(``refit_vae_fca``, started from the MNMF row's talker images). The input is ``--mix``
(16 kHz, its first ``--seconds``; all its channels) or 4 channels of white noise. Each row
is timed ``--repeats`` times after one untimed run: median milliseconds and RTF (seconds
per second of input). To compare two versions, run this script from each checkout in turn
(``PYTHONPATH=CHECKOUT``), alternating a few times: the machine's load moves single runs by
10-20 %.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mix", default=None, help="a multichannel 16 kHz WAV")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--talkers", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from vae_audio.audio.io import load_audio
    from vae_audio.audio.stft import StftConfig, stft
    from vae_audio.separation import refit_vae_fca, separate

    cfg = StftConfig()
    length = round(args.seconds * cfg.sample_rate)
    if args.mix is None:
        wav = 0.05 * torch.randn(4, length, generator=torch.Generator().manual_seed(0))
    else:
        wav, sr = load_audio(args.mix)
        if sr != cfg.sample_rate or wav.shape[-1] < length:
            raise SystemExit(f"{args.mix}: need at least {args.seconds} s at {cfg.sample_rate} Hz")
        wav = wav[:, :length]
    K, n_iter = args.talkers, args.iters
    X = stft(wav[None], cfg)  # [1, M, F, T]
    start = separate(wav, "mnmf", n_src=K, n_iter=n_iter, seed=0)
    talkers = stft(start.sources[None], cfg)  # [1, K, M, F, T]
    M = X.shape[1]

    rows = {
        f"fca, {n_iter} it.": lambda: separate(wav, "fca", n_src=K, n_iter=n_iter, seed=0),
        f"mnmf, {n_iter} it.": lambda: separate(wav, "mnmf", n_src=K, n_iter=n_iter, seed=0),
        f"vae-fca, {n_iter} it.": lambda: separate(wav, "vae-fca", n_src=K, n_iter=n_iter, seed=0),
        f"re-fit (refit_vae_fca), {n_iter} it.": lambda: refit_vae_fca(X, talkers, n_iter=n_iter),
    }
    print(
        f"Full-rank separators, {M} mics x {args.seconds} s, {K} talkers + noise, "
        f"{torch.get_num_threads()} thread(s), median of {args.repeats} (ms)\n"
    )
    print("| row | ms | RTF |")
    print("|---|---:|---:|")
    for name, fn in rows.items():  # not under no_grad: VAE-FCA takes gradient steps on z
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        ms = 1e3 * statistics.median(times)
        print(f"| {name} | {ms:.1f} | {ms / 1e3 / args.seconds:.3f} |", flush=True)


if __name__ == "__main__":
    main()

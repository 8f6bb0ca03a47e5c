"""`auto` on one channel: VAE-NMF alone against VAE-NMF with `auto`'s VAE-FCA re-fit mixed in.

    OMP_NUM_THREADS=1 .venv/bin/python egs/bench/single_channel_refit.py \\
        --train data/tts/train.jsonl --valid SET.jsonl [--n-files 24] [--snr 0 10] \\
        [--noise pink] [--priors speech-vae,speech-vae-conv] [--prior P] [--out results.csv]

On one channel `auto` runs `vae-nmf` (its default prior) and then, as on every input whose
STFT is the speech prior's, re-fits VAE-FCA from that separation and mixes its images in
(`separate(..., refit=...)`, :data:`vae_audio.apps.methods.AUTO_REFIT`). The re-fit was
chosen on multichannel mixtures; this scores it on noisy single-channel utterances (the
files of ``python -m vae_audio.speech.bench`` with the same arguments and seed): one VAE-NMF
fit per file (``--prior``: its speech prior, default the method's), then
:func:`~vae_audio.separation.api.refit_chunk` from it with each prior of ``--priors``.
Prints the mean SDR improvement over the noisy input (mir_eval) of every variant and the
paired change of each re-fit (mean ± half-width of the 95 % t-interval, files ahead);
``--out`` keeps every file's figures.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import numpy as np
import torch

from vae_audio.apps.methods import AUTO_REFIT
from vae_audio.audio import StftConfig
from vae_audio.audio import stft as stft_transform
from vae_audio.bench.report import mean_ci
from vae_audio.fileio import atomic_write
from vae_audio.separation import separate
from vae_audio.separation.api import refit_chunk
from vae_audio.separation.chunking import ChunkOutput
from vae_audio.speech.bench import file_sdr, noisy_set
from vae_audio.speech.recipe import load_utterances


def _sdr(ref: np.ndarray, est: torch.Tensor) -> float:
    return file_sdr(ref, est.double().numpy())


def _interval(d: list[float]) -> str:
    """Mean ± half-width of the 95 % t-interval of the paired differences ``d``, and how
    many are positive."""
    mean, half = mean_ci(np.asarray(d))
    return f"{mean:+.2f} ± {half:.2f}, {sum(x > 0 for x in d)} of {len(d)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, help="training corpus manifest (babble)")
    parser.add_argument("--valid", required=True, help="held-out utterances")
    parser.add_argument("--n-files", type=int, default=24)
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--snr", type=float, nargs="+", default=[0.0, 10.0])
    parser.add_argument("--noise", nargs="+", default=["pink"], choices=["pink", "babble"])
    parser.add_argument("--priors", default="speech-vae,speech-vae-conv", help="re-fit priors")
    parser.add_argument("--prior", default=None, help="vae-nmf's prior (default: its own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    cfg = StftConfig()
    train = load_utterances(args.train, cfg.sample_rate, -25.0, args.n_train)
    valid = load_utterances(args.valid, cfg.sample_rate, -25.0, args.n_files)
    priors = args.priors.split(",")
    own = {} if args.prior is None else {"prior": args.prior}  # vae-nmf's prior
    rows = []
    for kind in args.noise:
        for snr in args.snr:
            for i, (s, y) in enumerate(noisy_set(valid, train, snr, kind, args.seed)):
                x = torch.from_numpy(y).float()[None]  # [1, S]
                base = _sdr(s, x[0])
                res = separate(x, "vae-nmf", n_src=1, seed=args.seed, **own)
                row = {
                    "noise": kind,
                    "snr": snr,
                    "file": i,
                    "vae-nmf": _sdr(s, res.sources[0, 0]) - base,
                }
                out = ChunkOutput(res.sources[None], res.noise[None], res.objective[None])
                X = stft_transform(x[None], cfg)  # [1, 1, F, T]
                for prior in priors:
                    mixed = refit_chunk(
                        X, out, cfg, x.shape[-1], args.seed, **AUTO_REFIT.entry(), prior=prior
                    )
                    row[f"re-fit {prior}"] = _sdr(s, mixed.speakers[0, 0, 0]) - base
                rows.append(row)
                print(
                    " ".join(
                        f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in row.items()
                    ),
                    flush=True,
                )
    names = ["vae-nmf", *[f"re-fit {p}" for p in priors]]
    refit = f"{AUTO_REFIT.n_iter} iterations, weight {AUTO_REFIT.weight}"
    print(f"\nΔSDR (dB) over the noisy input; re-fits: {refit}")
    for kind in args.noise:
        for snr in args.snr:
            part = [r for r in rows if r["noise"] == kind and r["snr"] == snr]
            cells = [f"{n} {statistics.fmean(r[n] for r in part):+.2f}" for n in names]
            pairs = [
                f"{n} − vae-nmf {_interval([r[n] - r['vae-nmf'] for r in part])}" for n in names[1:]
            ]
            print(f"{kind} {snr:g} dB: " + "; ".join(cells + pairs))
    if args.out is not None:
        with atomic_write(args.out) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["noise", "snr", "file", *names])
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()

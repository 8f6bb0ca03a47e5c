"""Benchmark of a speech prior: held-out IS divergence and single-channel enhancement SDR.

Run ``python -m vae_audio.speech.bench --train data/tts/train.jsonl --valid
data/tts/valid.jsonl`` (defaults: the shipped prior). It prints two Markdown tables:

1. held-out IS divergence (nats per frame) of the prior's reconstruction vs the fixed mean
   speech PSD, with and without an optimal per-frame gain (:mod:`vae_audio.speech.report`);
2. SDR (mir_eval BSS Eval, dB) of noisy held-out utterances and their SDR improvement after
   enhancement by VAE-NMF (MCEM and gradient inference) and by the semi-supervised NMF
   Wiener filter with the same noise model (K_n components; speech basis learnt on the
   training utterances), at each input SNR and noise type. Noise is synthetic pink noise
   and 4-talker babble from training utterances (other speakers than the held-out ones).

``--per-file results.csv`` also writes every file's gains (one row per noise, SNR and
file), so that two priors run on the same set can be compared file by file.

All methods see the same noisy files, in one run.
"""

from __future__ import annotations

import argparse
import csv
import logging
import time

import numpy as np
import torch

from vae_audio.audio.stft import ISTFT, STFT
from vae_audio.data.noise import babble, pink_noise
from vae_audio.eval.metrics import bss_eval
from vae_audio.eval.report import markdown_table
from vae_audio.fileio import atomic_write
from vae_audio.log import cli_logging
from vae_audio.separation.nmf_enhance import learn_speech_basis, nmf_enhance
from vae_audio.separation.vae_nmf import VaeNmfConfig, vae_nmf
from vae_audio.speech.prior import load_speech_prior
from vae_audio.speech.recipe import load_utterances
from vae_audio.speech.report import mean_psd, score_prior

LOGGER = logging.getLogger(__name__)


def noisy_set(clean, train, snr_db: float, kind: str, seed: int):
    """``(clean [S], noisy [S])`` pairs at ``snr_db`` (clean / noise power over the file)."""
    rng = np.random.default_rng([seed, int(snr_db * 10), kind == "babble"])
    pairs = []
    for wav in clean:
        s = wav.numpy().astype(np.float64)
        if kind == "pink":
            n = pink_noise(1, len(s), rng)[0]
        else:
            picks = rng.choice(len(train), size=4, replace=False)
            n = babble([train[i].numpy() for i in picks], len(s), rng)
        n *= np.sqrt(np.mean(s**2) / np.mean(n**2) / 10 ** (snr_db / 10))
        pairs.append((s, s + n))
    return pairs


def file_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """mir_eval BSS Eval SDR (dB) of the single-channel estimate ``est [S]`` of ``ref [S]``."""
    return float(bss_eval(ref[None], est[None]).sdr[0])


def run(args) -> list[dict]:
    torch.manual_seed(0)
    prior = load_speech_prior(args.prior)
    sr = prior.stft_config.sample_rate
    train = load_utterances(args.train, sr, -25.0, args.n_train)
    valid = load_utterances(args.valid, sr, -25.0, args.n_files)
    stft, istft = STFT(prior.stft_config), ISTFT(prior.stft_config)

    scores = score_prior(prior, valid, mean_psd(prior, train))
    print(
        markdown_table(
            [
                {"model": "speech VAE (posterior mean)", "is_div": scores.is_div_vae},
                {"model": "mean speech PSD", "is_div": scores.is_div_fixed},
                {"model": "mean speech PSD + per-frame gain", "is_div": scores.is_div_fixed_gain},
            ],
            ["model", "is_div"],
            headers=["prior", "held-out IS divergence (nats/frame)"],
        )
    )
    print(f"\n{scores.n_utterances} held-out utterances, {scores.n_frames} frames\n")

    frames = torch.cat([stft(w).abs().square() for w in train], dim=-1)  # [F, T_all]
    basis = learn_speech_basis(frames, args.speech_components, n_iter=100)
    methods = {
        "vae-nmf (mcem)": lambda X: (
            vae_nmf(
                X,
                prior,
                VaeNmfConfig("mcem", n_iter=args.iters, n_components=args.noise_components),
            ).speech
        ),
        "vae-nmf (grad)": lambda X: (
            vae_nmf(
                X,
                prior,
                VaeNmfConfig("grad", n_iter=args.iters, n_components=args.noise_components),
            ).speech
        ),
        "nmf wiener": lambda X: (
            nmf_enhance(
                X, basis, n_noise_components=args.noise_components, n_iter=args.iters
            ).speech
        ),
    }
    rows, per_file = [], []
    for kind in args.noise:
        for snr in args.snr:
            pairs = noisy_set(valid, train, snr, kind, args.seed)
            sdr_in = [file_sdr(s, y) for s, y in pairs]
            row = {"noise": kind, "snr": snr, "sdr_in": float(np.mean(sdr_in))}
            files = [
                {"noise": kind, "snr": snr, "file": i, "sdr_in": b} for i, b in enumerate(sdr_in)
            ]
            for name, fn in methods.items():
                tick, gains = time.perf_counter(), []
                for (s, y), base, file in zip(pairs, sdr_in, files, strict=True):
                    Y = stft(torch.from_numpy(y).float())[None]  # [1, F, T]
                    est = istft(fn(Y)[0], length=len(y)).double().numpy()
                    gains.append(file_sdr(s, est) - base)
                    file[name] = gains[-1]
                row[f"{name}"] = float(np.mean(gains))
                row[f"{name} min"] = float(np.min(gains))
                row[f"{name} s"] = (time.perf_counter() - tick) / len(pairs)
            rows.append(row)
            per_file += files
            LOGGER.info("done: %s %s dB", kind, snr)
    cols = ["noise", "snr", "sdr_in", *methods]
    heads = ["noise", "input SNR (dB)", "input SDR (dB)", *[f"ΔSDR {m} (dB)" for m in methods]]
    print()
    print(markdown_table(rows, cols, headers=heads))
    print(
        "\nΔSDR: mean SDR improvement over the noisy input (mir_eval BSS Eval), "
        f"{len(valid)} held-out utterances per row; seconds per file: "
        + ", ".join(f"{m} {np.mean([r[f'{m} s'] for r in rows]):.1f}" for m in methods)
    )
    if args.per_file:
        with atomic_write(args.per_file) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["noise", "snr", "file", "sdr_in", *methods])
            writer.writeheader()
            writer.writerows(per_file)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prior", default=None, help="model.pt (default: the shipped prior)")
    p.add_argument("--train", required=True, help="training corpus manifest (basis, babble)")
    p.add_argument("--valid", required=True, help="held-out corpus manifest")
    p.add_argument("--n-files", type=int, default=20)
    p.add_argument("--n-train", type=int, default=200)
    p.add_argument("--snr", type=float, nargs="+", default=[0.0, 5.0, 10.0])
    p.add_argument("--noise", nargs="+", default=["pink", "babble"], choices=["pink", "babble"])
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--noise-components", type=int, default=8)
    p.add_argument("--speech-components", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-file", default=None, help="CSV of every file's ΔSDR per method")
    with cli_logging():  # progress to stderr, the tables to stdout
        run(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""More speech slots than talkers: fit K + E speech slots (+ the noise slot), keep the K loudest.

    OMP_NUM_THREADS=1 .venv/bin/python egs/bench/extra_slots.py --set SET [--set ...] \\
        [--method fastmnmf2] [--starts 4] [--extra 0,1,2] [--limit N] [--any-output]

A reverberant talker's late tail and a diffuse noise field need not fit one slot each; with
spare slots the fit can park them there instead of in a talker's slot. Each variant runs
``separate(mix, METHOD, n_src=K + E, starts=S)`` and keeps the K loudest talker images
(``separate`` returns them loudest first); blind SDR at mic 0 against the reverberant images,
paired against E = 0.

``--any-output`` asks whether some output holds a talker at all, whatever the blind choice:
for each talker it prints its input SDR (the mixture at mic 0) and the SDR of its best match
among all ``K + E`` talker images and the noise image (each output scored against each
talker, :func:`~vae_audio.eval.metrics.pairwise_sdr` at mic 0), without the K-loudest rule.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from ensemble_starts import mean_sdr, report  # the sibling script (egs/bench is on sys.path)

from vae_audio.bench.methods import load_mixture
from vae_audio.eval.matching import load_references
from vae_audio.eval.metrics import pairwise_sdr
from vae_audio.separation import separate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", required=True, type=Path)
    parser.add_argument("--method", default="fastmnmf2")
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--extra", default="0,1,2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("exp/bench/extra_slots.csv"))
    parser.add_argument("--any-output", action="store_true", help="best match of each talker")
    args = parser.parse_args()
    extras = [int(e) for e in args.extra.split(",")]
    if args.any_output:
        best_matches(args, extras)
        return
    rows: list[dict] = []
    for root, ref, data, fits in _fits(args, extras):
        K = data.images.shape[0]
        row = {"id": f"{root.name}/{ref.id}"}
        for e, res in fits.items():
            row[f"extra{e}"] = mean_sdr(data.images, res.sources[:K], data.mix, data.sr)
        rows.append(row)
        print(" ".join(f"{k}={v:.2f}" if k != "id" else v for k, v in row.items()), flush=True)
    report(rows, args.out, f"extra{extras[0]}", list(rows[0])[1:])


def _fits(args, extras: list[int]):
    """``(set root, reference, mixture, {E: separate()'s result with K + E talkers})`` for
    every mixture of ``--set`` (at most ``--limit`` per set)."""
    for root in args.set:
        for ref in load_references(root)[: args.limit]:
            data = load_mixture(ref)
            K = data.images.shape[0]
            fits = {
                e: separate(
                    data.mix,
                    args.method,
                    n_src=K + e,
                    sr=data.sr,
                    seed=args.seed,
                    starts=args.starts,
                )
                for e in extras
            }
            yield root, ref, data, fits


def best_matches(args, extras: list[int]) -> None:
    """``--any-output``: each talker's input SDR and its best match among all outputs, then
    for each E the mean over mixtures of the weakest talker's (the lowest input SDR) best
    match and gain, the other talkers' mean gain, and the mixtures where no output reaches
    -5 dB for the weakest talker."""
    print("mixture talker input " + " ".join(f"E={e}" for e in extras))
    weakest: list[tuple[float, np.ndarray]] = []  # per mixture: its input SDR, best per E
    others: list[np.ndarray] = []  # per mixture: the other talkers' mean gain per E
    for root, ref, data, fits in _fits(args, extras):
        refs = data.images[:, 0].double()  # [K, S] at mic 0
        best = []
        for res in fits.values():
            outs = torch.cat([res.sources[:, 0], res.noise[:1]]).double()  # [K + E + 1, S]
            best.append(np.nanmax(pairwise_sdr(refs, outs), axis=1))  # [K]
        mix = pairwise_sdr(refs, data.mix[:1].double())[:, 0]  # [K]
        for k in range(refs.shape[0]):
            cells = " ".join(f"{b[k]:6.1f}" for b in best)
            print(f"{root}/{ref.id} {k} {mix[k]:6.1f} {cells}", flush=True)
        table = np.stack(best)  # [E, K]
        w = int(np.argmin(mix))
        weakest.append((mix[w], table[:, w]))
        others.append(np.delete(table - mix, w, axis=1).mean(1))
    inputs = np.array([m for m, _ in weakest])
    found = np.stack([b for _, b in weakest])  # [mixtures, E]
    gains = np.stack(others)
    print(f"{len(inputs)} mixtures; the weakest talker's input SDR {inputs.mean():.2f} dB")
    for i, e in enumerate(extras):
        print(
            f"E={e}: weakest talker's best match {found[:, i].mean():.2f} dB "
            f"(gain {(found[:, i] - inputs).mean():+.2f}), the others' gain "
            f"{gains[:, i].mean():+.2f}; no output above -5 dB in "
            f"{int((found[:, i] < -5).sum())} mixtures"
        )


if __name__ == "__main__":
    main()

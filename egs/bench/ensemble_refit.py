"""Re-estimating a multichannel Wiener filter from an average of separations: does it help?

    OMP_NUM_THREADS=1 .venv/bin/python egs/bench/ensemble_refit.py --set SET [--set ...] \\
        --cache exp/bench/ens_cache --seed 2026 \\
        --methods neural-fastfca@200,fastmnmf2:starts=4,fastmnmf2:starts=4:wpe=1 [--n-fft 512]

The talker images of every method in ``--methods`` are read from the cache that
``egs/bench/ensemble_methods.py --cache`` fills (run it first with the same methods and
seed) and averaged as there (talkers matched to the first method's). The average, plus the
rest of the mixture as the noise, then gives FCA parameters by the oracle formulas of
:func:`vae_audio.bench.oracles.oracle_parameters` applied to these estimates (PSDs: the
images' power averaged over the mics; SCMs: their normalised covariances), and three
re-estimates of the talkers, at ``--n-fft``:

* ``mwf``: the multichannel Wiener filter with those parameters;
* ``scm K``: K EM updates of the SCMs from the identity under those PSDs
  (:func:`~vae_audio.bench.oracles.fit_scm_given_psd`, the half-oracle ``oracle-psd``
  with estimated PSDs);
* ``fca K``: K EM iterations of full-rank FCA with free PSDs started from both
  (:func:`~vae_audio.separation.fca.fit_fca`);
* ``vae K`` (``--kinds ...,vae``): K iterations of VAE-FCA re-fitted from the average
  (:func:`~vae_audio.separation.vae_fca.refit_vae_fca`, the speech prior ``--prior``,
  default the shipped one; what ``separate(..., refit=...)`` runs), and ``vae K @w`` its
  images mixed into the average's with each weight ``w`` of ``--weights``.

    OMP_NUM_THREADS=1 .venv/bin/python egs/bench/ensemble_refit.py --set SET ... \
        --cache exp/bench/ens_cache --seed 2026 --methods MEMBERS --kinds vae --iters 10 \
        --weights 0.25,0.5

Prints each row's mean blind SDR at mic 0 and its paired difference to the average.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from ensemble_methods import _average, load_cached  # the sibling scripts (egs/bench is on sys.path)
from ensemble_starts import mean_sdr, report

from vae_audio.audio.stft import StftConfig, istft, stft
from vae_audio.bench.methods import load_mixture
from vae_audio.bench.oracles import _EPS_REL, fit_scm_given_psd, oracle_parameters
from vae_audio.eval.matching import load_references
from vae_audio.separation.fca import fit_fca
from vae_audio.separation.source_model import FreePsd
from vae_audio.separation.vae_fca import refit_vae_fca
from vae_audio.separation.wiener import wiener_full_rank


def refits(
    mix: torch.Tensor, talkers: torch.Tensor, cfg: StftConfig, iters: list[int],
    kinds: tuple[str, ...] = ("mwf", "scm", "fca"), weights: tuple[float, ...] = (),
    prior: str | None = None, seed: int = 0,
) -> dict:  # fmt: skip
    """Talker images ``[K, M, S]`` re-estimated from ``talkers [K, M, S]`` of the mixture
    ``mix [M, S]`` (module docstring), by row name."""
    K, S = talkers.shape[0], mix.shape[-1]
    X = stft(mix, cfg)  # [M, F, T]
    C = stft(torch.cat([talkers, (mix - talkers.sum(0))[None]]), cfg)  # [K + 1, M, F, T]
    lam, H = oracle_parameters(C)  # [J, F, T], [J, F, M, M]
    eps = _EPS_REL * lam.sum(0).mean()
    images = {}
    if "mwf" in kinds:
        images["mwf"] = wiener_full_rank(X[None], lam[None], H[None], eps)[0]
    for n in iters:
        if "scm" in kinds:
            images[f"scm {n}"] = fit_scm_given_psd(X, lam, n, eps).images(X)
        if "fca" in kinds:
            fit = fit_fca(X[None], FreePsd(lam[None].clone(), eps), H[None].clone(), n, eps=eps)
            images[f"fca {n}"] = fit.images(X[None])[0]
        if "vae" in kinds:
            fit = refit_vae_fca(X[None], C[None, :K], n, prior=prior, seed=seed)
            images[f"vae {n}"] = fit.images(X[None])[0]
    out = {name: istft(c[:K], cfg, length=S) for name, c in images.items()}
    for n in iters if "vae" in kinds else ():
        for w in weights:
            out[f"vae {n} @{w:g}"] = torch.lerp(talkers, out[f"vae {n}"], w)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", required=True, type=Path)
    parser.add_argument("--methods", required=True)
    parser.add_argument("--cache", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-fft", type=int, default=512)
    parser.add_argument("--iters", default="10,30", help="comma-separated EM iteration counts")
    parser.add_argument("--kinds", default="mwf,scm,fca", help="re-estimates: mwf,scm,fca,vae")
    parser.add_argument("--weights", default="", help="vae: weights of the re-fit mixed in")
    parser.add_argument("--prior", default=None, help="vae: speech prior (default: shipped)")
    parser.add_argument("--out", type=Path, default=Path("exp/bench/ensemble_refit.csv"))
    args = parser.parse_args()
    methods = args.methods.split(",")
    iters = [int(n) for n in args.iters.split(",")]
    kinds = tuple(args.kinds.split(","))
    weights = tuple(float(w) for w in args.weights.split(",") if w)
    rows: list[dict] = []
    for root in args.set:
        for ref in load_references(root):
            data = load_mixture(ref)
            talkers = load_cached(args.cache, root, ref.id, methods, args.seed, data)
            talkers = [t.double() for t in talkers]
            average = _average(talkers, [1.0] * len(talkers))  # [K, M, S]
            cfg = StftConfig(sample_rate=data.sr, n_fft=args.n_fft, hop_length=args.n_fft // 4)
            row = {
                "id": f"{root.name}/{ref.id}",
                "average": mean_sdr(data.images, average.float(), data.mix, data.sr),
            }
            for name, est in refits(
                data.mix.double(), average, cfg, iters, kinds, weights, args.prior, args.seed
            ).items():
                row[name] = mean_sdr(data.images, est.float(), data.mix, data.sr)
            rows.append(row)
            print("  ".join(f"{k} {v:.2f}" if isinstance(v, float) else v for k, v in row.items()))
    print(f"\n{len(rows)} mixtures")
    report(rows, args.out, "average", [k for k in rows[0] if k != "id"])


if __name__ == "__main__":
    main()

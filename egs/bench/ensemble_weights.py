"""Blind weights for an average of separations: does weighting each member by how much it
agrees with the others beat the plain mean that ``auto`` takes?

    OMP_NUM_THREADS=1 .venv/bin/python egs/bench/ensemble_weights.py --set SET [--set ...] \\
        --methods A,B,C --seed S --cache exp/bench/ens_cache [--tau 1,3,10]

Reads the members' talker images from the cache that ``ensemble_methods.py --cache`` writes
(every member must be there: run that script first with the same sets, methods and seed),
matches every member's talkers to the first's and scores blind at mic 0 (BSS Eval SDR
against the reverberant images):

* ``mean``: the members' images averaged with equal weights (``auto``);
* ``agree@τ``: weights ``∝ exp(a_i / τ)``, where ``a_i`` (dB) is member ``i``'s agreement
  with the mean of the others, ``10 log10(‖c‖² / ‖c − e_i‖²)`` at mic 0 summed over talkers
  (``c`` the leave-one-out mean); no reference is used;
* ``agree@τ, per talker``: the same weights computed per talker;
* ``trim``: the mean without the member that agrees least;
* ``median``: the sample-wise median over members;
* ``best member (oracle)``: the member with the highest SDR, a ceiling for any choice of one.

Prints the mean SDR of each rule and its paired difference to ``mean`` (mean ± standard
deviation over mixtures) and writes the per-mixture table to ``--out``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from ensemble_methods import _sdr, load_cached  # the sibling scripts (egs/bench is on sys.path)
from ensemble_starts import report

from vae_audio.bench.methods import load_mixture
from vae_audio.eval.matching import load_references
from vae_audio.separation.chunking import align_to_previous


def _aligned(members: list[torch.Tensor]) -> torch.Tensor:
    """``[P, K, M, S]``: every member's talkers matched to the first member's."""
    ref = members[0].double()
    out = [ref]
    for m in members[1:]:
        m = m.double()
        out.append(m[align_to_previous(ref[None], m[None])[0]])
    return torch.stack(out)


def agreement(est: torch.Tensor, per_talker: bool = False) -> torch.Tensor:
    """Agreement (dB) of each member of ``est [P, K, M, S]`` with the mean of the others at
    mic 0 -> ``[P]`` (``[P, K]`` per talker)."""
    P = est.shape[0]
    x = est[:, :, 0]  # [P, K, S]
    others = (x.sum(0, keepdim=True) - x) / (P - 1)  # [P, K, S] leave-one-out means
    dims = -1 if per_talker else (-2, -1)
    signal = others.square().sum(dims)
    error = (others - x).square().sum(dims).clamp_min(1e-20)
    return 10 * torch.log10(signal.clamp_min(1e-20) / error)


def weighted(est: torch.Tensor, tau: float, per_talker: bool = False) -> torch.Tensor:
    """``est [P, K, M, S]`` averaged with weights ``softmax(a / τ)`` over members."""
    w = torch.softmax(agreement(est, per_talker) / tau, dim=0)  # [P] or [P, K]
    w = w[:, None, None, None] if w.dim() == 1 else w[:, :, None, None]
    return (w * est).sum(0)


def rules(est: torch.Tensor, taus: list[float]) -> dict[str, torch.Tensor]:
    """Every combination rule of the module docstring on ``est [P, K, M, S]``."""
    out = {"mean": est.mean(0)}
    for tau in taus:
        out[f"agree@{tau:g}"] = weighted(est, tau)
        out[f"agree@{tau:g}, per talker"] = weighted(est, tau, per_talker=True)
    keep = agreement(est).argsort(descending=True)[:-1]
    out["trim"] = est[keep].mean(0)
    out["median"] = est.median(0).values
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", required=True, type=Path)
    parser.add_argument("--methods", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--tau", default="1,3,10")
    parser.add_argument("--out", type=Path, default=Path("exp/bench/ensemble_weights.csv"))
    args = parser.parse_args()
    methods = args.methods.split(",")
    taus = [float(t) for t in args.tau.split(",")]
    rows: list[dict] = []
    for root in args.set:
        for ref in load_references(root):
            data = load_mixture(ref)
            members = load_cached(args.cache, root, ref.id, methods, args.seed, data)
            est = _aligned(members)  # [P, K, M, S]
            row = {"id": f"{root.name}/{ref.id}"}
            scores = [_sdr(data, e.float()) for e in est]
            row.update({k: _sdr(data, v.float()) for k, v in rules(est, taus).items()})
            row["best member (oracle)"] = max(scores)
            assert all(math.isfinite(v) for v in scores)
            rows.append(row)
            print("  ".join(f"{k} {v:.2f}" if isinstance(v, float) else v for k, v in row.items()))
    print(f"\n{len(rows)} mixtures")
    report(rows, args.out, "mean", [k for k in rows[0] if k != "id"], width=24)


if __name__ == "__main__":
    main()

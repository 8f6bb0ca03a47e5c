"""Several random starts of one method on the same mixture: how much does the draw matter, and
can the starts be combined blind?

    OMP_NUM_THREADS=1 .venv/bin/python egs/bench/ensemble_starts.py --set SET [--set SET2 ...] \\
        [--method fastmnmf2] [--starts 4] [--iters 100] [--limit N]

For every mixture of each set (a ``manifest.jsonl`` folder from ``vae-audio simulate`` or the
matrix's ``sets/``), the method runs from ``--starts`` seeds through :func:`separate` and the
talkers are scored blind at mic 0 (``score_mixture``, BSS Eval SDR against the reverberant
images). Rows:

* ``seed 0``: the default single run;
* ``best likelihood``: the run whose final log-likelihood is highest;
* ``medoid``: the run whose talker images agree most with the other runs' (mean absolute
  correlation at mic 0 after matching the talkers of every pair);
* ``average``: the talker images of all runs averaged after matching each run's talkers to
  seed 0's (averaging the runs' linear filters), as ``separate(..., starts=K)`` does;
  ``average of k``: the same over the first k runs (k = 2, 4, ... below ``--starts``);
* ``oracle best run``: the run with the highest SDR (needs the references; a ceiling for any
  selection rule).

Prints mean SDR per set and overall, and writes the per-mixture table to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from vae_audio.eval.permutation import solve_permutation
from vae_audio.eval.scoring import score_mixture
from vae_audio.separation import separate


def _read(path: Path) -> torch.Tensor:
    data, _ = sf.read(path, dtype="float32", always_2d=True)  # [S, M]
    return torch.from_numpy(data.T.copy())  # [M, S]


def _correlations(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """``|corr|`` at mic 0 between talker images ``a [K, M, S]`` and ``b [K, M, S]`` -> [K, K]."""
    x, y = a[:, 0].double(), b[:, 0].double()
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    y = y / y.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (x @ y.T).abs().numpy()


def _aligned(est: torch.Tensor, to: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``est`` with its talkers reordered to match ``to`` and the matched mean |corr|."""
    assignment = solve_permutation(_correlations(to, est))
    return est[torch.as_tensor(assignment.perm)], float(assignment.mean_score)


def mean_sdr(ref: torch.Tensor, est: torch.Tensor, mix: torch.Tensor, sr: int) -> float:
    """Mean blind SDR at mic 0 of talker images ``est [K, M, S]`` against ``ref [K, M, S]``."""
    return float(np.mean(score_mixture(ref, est, mix, sr, metrics=("sdr",)).values["sdr"]))


def report(results: list[dict], out: Path, base: str, keys: list[str], width: int = 16) -> None:
    """Write the per-mixture rows to ``out`` (CSV) and print each key's mean SDR and its
    paired difference to ``base`` (mean ± standard deviation over mixtures)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    first = np.array([r[base] for r in results])
    print(f"SDR dB: mean, and the paired difference to {base} (mean ± std)")
    for key in keys:
        values = np.array([r[key] for r in results])
        diff = values - first
        spread = diff.std(ddof=1) if len(diff) > 1 else 0.0
        print(f"  {key:{width}s} {values.mean():6.2f}   {diff.mean():+.2f} ± {spread:.2f}")


def run_mixture(root: Path, item: dict, method: str, starts: int, iters: int) -> dict:
    mix = _read(root / item["mix"])  # [M, S]
    ref = torch.stack([_read(root / s) for s in item["sources"]])  # [K, M, S]
    K = ref.shape[0]
    runs = [separate(mix, method=method, n_src=K, n_iter=iters, seed=s) for s in range(starts)]
    est = [r.sources for r in runs]  # [K, M, S] each
    final_ll = [float(r.objective[0, -1][torch.isfinite(r.objective[0, -1])][-1]) for r in runs]

    def sdr(e: torch.Tensor) -> float:
        return mean_sdr(ref, e, mix, item["sample_rate"])

    per_run = [sdr(e) for e in est]
    agreement = np.zeros((starts, starts))
    for i in range(starts):
        for j in range(i + 1, starts):
            agreement[i, j] = agreement[j, i] = _aligned(est[j], est[i])[1]
    medoid = int(agreement.sum(1).argmax())
    matched = torch.stack([est[0]] + [_aligned(e, est[0])[0] for e in est[1:]])  # [R, K, M, S]
    prefixes = {f"average of {k}": sdr(matched[:k].mean(0)) for k in _prefixes(starts)}
    return {
        "id": item["id"],
        "seed 0": per_run[0],
        "best likelihood": per_run[int(np.argmax(final_ll))],
        "medoid": per_run[medoid],
        **prefixes,
        "average": sdr(matched.mean(0)),
        "oracle best run": max(per_run),
        "mean agreement": float(agreement.sum() / max(starts * (starts - 1), 1)),
    }


ROWS = ("seed 0", "best likelihood", "medoid", "average", "oracle best run")


def _prefixes(starts: int) -> list[int]:
    """2, 4, 8, ... below ``starts``."""
    return [2**i for i in range(1, starts.bit_length()) if 2**i < starts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", required=True, type=Path)
    parser.add_argument("--method", default="fastmnmf2")
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("exp/bench/ensemble_starts.csv"))
    args = parser.parse_args()
    results: list[dict] = []
    for root in args.set:
        items = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
        for item in items[: args.limit]:
            row = {
                "set": root.name,
                **run_mixture(root, item, args.method, args.starts, args.iters),
            }
            results.append(row)
            print(
                f"{root.name}/{row['id']}: " + "  ".join(f"{k} {row[k]:.2f}" for k in ROWS),
                flush=True,
            )
    rows = [*ROWS[:3], *(f"average of {k}" for k in _prefixes(args.starts)), *ROWS[3:]]
    print(f"\n{args.method}, {args.starts} starts, {len(results)} mixtures")
    report(results, args.out, "seed 0", rows)


if __name__ == "__main__":
    main()

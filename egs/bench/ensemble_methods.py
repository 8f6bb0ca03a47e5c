"""Averages of different methods' separations of the same mixture.

    OMP_NUM_THREADS=1 .venv/bin/python egs/bench/ensemble_methods.py --set SET [--set ...] \\
        --methods auto,fastmnmf2:starts=4 --combine auto+fastmnmf2:starts=4 [--limit N]

Every name of ``--methods`` runs as in ``vae-audio bench`` (:func:`vae_audio.bench.methods.
candidates`: ``auto`` is what ``separate --method auto`` writes, ``NAME:starts=K`` averages
K starts of one method; of a determined peer's M outputs the benchmark's blind choice
keeps the N loudest); its talker images are scored blind at mic 0 (BSS Eval SDR against
the reverberant images). Each ``--combine A+B[+C]`` averages the methods' talker images with
equal weights (``A*2+B``: A counts twice) after matching every method's talkers to the
first's (as :func:`vae_audio.separation.api.average_starts` does for starts). Prints the
mean SDR of every method and combination and its paired difference to the first method.
``--cache DIR`` keeps every method's talker images per mixture and seed (``DIR/<the set's
absolute path>/<id>/<method>@<seed>.pt``, every "/" of the path and the method as "_"), so
that later runs with other combinations reuse them. Beside each file, ``<same name>.json``
holds the method's record (:func:`vae_audio.bench.methods.method_record`: the files its
options and defaults name, by SHA-256, e.g. the speech prior of ``vae-fca`` or the model and
re-fit prior of ``auto``). An entry whose record no longer matches, because a default
changed or a named model was retrained, is computed again (and the scripts that only read
the cache stop, naming it); an entry cached without a record is taken as made with today's.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import torch
from ensemble_starts import mean_sdr, report  # the sibling script (egs/bench is on sys.path)

from vae_audio.bench.methods import candidates, load_mixture, method_record
from vae_audio.eval.matching import load_references
from vae_audio.fileio import atomic_write, atomic_write_text
from vae_audio.separation.chunking import align_to_previous

# a method's record hashes the files it names: once per run, not once per mixture
_record = functools.cache(method_record)


def _sdr(data, est: torch.Tensor) -> float:
    """Mean blind SDR of talker images ``est [K, M, S]`` at mic 0."""
    return mean_sdr(data.images, est, data.mix, data.sr)


def _average(talkers: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """Weighted mean of ``[K, M, S]`` talker images, each matched to the first's (and cast to
    its dtype: the oracles and peers give float64, our methods float32)."""
    ref = talkers[0][None]
    total = weights[0] * talkers[0]
    for t, w in zip(talkers[1:], weights[1:], strict=True):
        t = t.to(ref.dtype)
        total += w * t[align_to_previous(ref, t[None])[0]]
    return total / sum(weights)


def cache_path(cache: Path, root: Path, mix_id: str, method: str, seed: int) -> Path:
    """Where ``--cache DIR`` keeps ``method``'s talker images of mixture ``mix_id`` of the set
    ``root`` for ``seed`` (module docstring)."""
    folder = cache / "_".join(root.resolve().parts[1:]) / mix_id
    return folder / f"{method.replace('/', '_')}@{seed}.pt"


def is_current(path: Path, record: dict) -> bool:
    """Whether the cached ``path`` was made with ``record`` (module docstring); an entry
    without a record is adopted: today's record is written beside it."""
    side = path.with_suffix(".json")
    if not side.is_file():
        save_record(side, record)
        return True
    return json.loads(side.read_text()) == record


def save_record(side: Path, record: dict) -> None:
    atomic_write_text(side, json.dumps(record, sort_keys=True))


def load_cached(
    cache: Path, root: Path, mix_id: str, methods: list[str], seed: int, data
) -> list[torch.Tensor]:
    """The cached talker images ``[K, M, S]`` of every method on the mixture ``data``, or
    exit naming the first that is missing or stale (for the scripts that combine cached
    members)."""
    paths = [cache_path(cache, root, mix_id, m, seed) for m in methods]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"{missing[0]} is missing: run ensemble_methods.py --cache first")
    M, K = data.mix.shape[0], data.images.shape[0]
    for m, p in zip(methods, paths, strict=True):
        if not is_current(p, _record(m, M, data.sr, K)):
            raise SystemExit(
                f"{p} was made with other defaults or model files than {m} names now: "
                "run ensemble_methods.py --cache again to redo it"
            )
    return [torch.load(p, weights_only=True) for p in paths]


def _terms(combo: str) -> list[tuple[str, float]]:
    """``A*2+B`` -> ``[("A", 2.0), ("B", 1.0)]``."""
    terms = []
    for term in combo.split("+"):
        name, _, weight = term.partition("*")
        terms.append((name, float(weight) if weight else 1.0))
    return terms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", required=True, type=Path)
    parser.add_argument("--methods", required=True)
    parser.add_argument("--combine", action="append", default=[])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("exp/bench/ensemble_methods.csv"))
    parser.add_argument("--cache", type=Path, default=None, help="keep talker images here")
    args = parser.parse_args()
    methods = args.methods.split(",")
    rows: list[dict] = []
    for root in args.set:
        for ref in load_references(root)[: args.limit]:
            data = load_mixture(ref)
            K = data.images.shape[0]

            talkers = {}
            for m in methods:
                path = record = None
                if args.cache is not None:
                    path = cache_path(args.cache, root, ref.id, m, args.seed)
                    record = _record(m, data.mix.shape[0], data.sr, K)
                if path is not None and path.is_file():
                    if is_current(path, record):
                        talkers[m] = torch.load(path, weights_only=True)
                        continue
                    print(f"{path}: made with other defaults or model files; redoing it")
                est, keep = candidates(m, data, K, seed=args.seed)  # keep: the blind choice
                talkers[m] = est[keep][:K]
                if path is not None:
                    with atomic_write(path) as tmp:  # creates the folder
                        torch.save(talkers[m], tmp)
                    save_record(path.with_suffix(".json"), record)
            row = {"id": f"{root.name}/{ref.id}"}
            row.update({m: _sdr(data, t) for m, t in talkers.items()})
            for combo in args.combine:
                terms = _terms(combo)
                est = _average([talkers[m] for m, _ in terms], [w for _, w in terms])
                row[combo] = _sdr(data, est)
            rows.append(row)
            print("  ".join(f"{k} {v:.2f}" if isinstance(v, float) else v for k, v in row.items()))
    print(f"\n{len(rows)} mixtures")
    report(rows, args.out, methods[0], [*methods, *args.combine], width=40)


if __name__ == "__main__":
    main()

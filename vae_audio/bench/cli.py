"""`vae-audio bench`: benchmark separators, pyroomacoustics peers and oracles on a simulated set.

Writes ``per_file.csv``, ``summary.csv``, ``summary.md``, ``results.json`` and ``bars.png``
into ``--out`` (default ``<set>/bench``) and prints the summary table.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from vae_audio.bench.methods import resolve_methods
    from vae_audio.bench.report import summarise, summary_table, write_outputs
    from vae_audio.bench.runner import BenchSettings, run_bench
    from vae_audio.eval.matching import load_references

    methods = resolve_methods(args.methods)  # fail on a bad name before anything runs
    settings = BenchSettings(
        n_src=args.n_src,
        n_iter=args.iters,
        seed=args.seed,
        select=args.select,
        model=args.model,
        device=args.device,
    )
    result = run_bench(
        args.set, methods, settings, jobs=args.jobs, limit=args.limit, progress=not args.quiet
    )
    set_path = Path(args.set).expanduser()
    set_dir = set_path if set_path.is_dir() else set_path.parent
    out = Path(args.out).expanduser() if args.out else set_dir / "bench"
    refs = load_references(args.set)
    protect = [p for r in refs for p in (r.mix, *r.sources, *([r.noise] if r.noise else []))]
    paths = write_outputs(result, out, protect=protect)
    print(summary_table(summarise(result)))
    for note in result.notes:
        print(f"note: {note}")
    print(f"{result.n_mixtures} mixtures x {len(methods)} methods -> {paths.summary_md.parent}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmark separators, pyroomacoustics peers and oracles on a simulated set",
        description="Run each method on each mixture of a simulated set (manifest.jsonl + "
        "<id>/mix.wav, src<k>.wav, noise.wav) and score the reference-mic talker estimates: "
        "SDR/SIR/SAR (BSS Eval), SI-SDR and their improvements, real-time factor and peak "
        "memory. Methods: the registered separation methods (fastmnmf2, fastmnmf, mnmf, fca, "
        "neural-fca, ...), pyroomacoustics peers (pra-auxiva, pra-ilrma, pra-fastmnmf, "
        "pra-fastmnmf2), oracle ceilings (oracle-mwf, oracle-irm) and the floor 'mixture'.",
    )
    p.add_argument("--set", required=True, metavar="DIR", help="simulated set (or its manifest)")
    p.add_argument(
        "--methods", required=True, metavar="LIST",
        help="comma-separated method names; NAME@N runs N iterations (e.g. neural-fastfca@200)",
    )  # fmt: skip
    p.add_argument("--out", metavar="DIR", help="output folder (default: SET/bench)")
    p.add_argument(
        "--n-src", type=int, metavar="N", help="talkers to separate (default: per mixture)"
    )
    p.add_argument(
        "--iters",
        type=int,
        metavar="K",
        help="iterations for every iterative method (default: each method's, 100 for peers)",
    )
    p.add_argument("--jobs", type=int, default=1, metavar="J", help="worker processes")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N mixtures")
    p.add_argument("--model", metavar="CKPT", help="model file for methods that take one")
    p.add_argument(
        "--select",
        choices=("best", "blind"),
        default="best",
        help="which outputs are the talkers: 'best' lets the scorer keep the best-matching "
        "ones (default), 'blind' picks them without references (noise slot / loudest)",
    )
    p.add_argument("--seed", type=int, default=0, help="initialisation seed of every run")
    p.add_argument(
        "--device", default="cpu", help="device for our methods (peers and oracles: CPU)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)

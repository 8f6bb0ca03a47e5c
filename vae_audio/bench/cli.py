"""`vae-audio bench`: benchmark separators, pyroomacoustics peers and oracles on a simulated set
(``--set``) or on the condition matrix (``--matrix``, :mod:`vae_audio.bench.matrix`).

Writes ``per_file.csv``, ``summary.csv``, ``summary.md``, ``results.json`` and ``bars.png``
into ``--out`` (default ``<set>/bench``) and prints the summary table; a matrix run adds
``matrix.md``, ``matrix.csv``, ``matrix.json`` and ``heatmap.png`` and prints the matrix
report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vae_audio.cli_types import ITERATIONS, JOBS, SEED, count


def _run(args: argparse.Namespace) -> int:
    from vae_audio.errors import VaeAudioError

    if (args.set is None) == (args.matrix is None):
        raise VaeAudioError("give exactly one of --set DIR and --matrix FILE")
    if args.matrix is not None:
        return _run_matrix(args)
    if args.methods is None:
        raise VaeAudioError("--set needs --methods LIST (e.g. --methods fastmnmf2,pra-ilrma)")
    if args.full:
        raise VaeAudioError("--full selects the full grid of a --matrix run; drop it with --set")
    if args.simulate_only:
        raise VaeAudioError("--simulate-only builds the cells of a --matrix; drop it with --set")
    from vae_audio.bench.methods import resolve_methods
    from vae_audio.bench.report import summarise, summary_table, write_outputs
    from vae_audio.bench.runner import BenchSettings, run_bench
    from vae_audio.eval.matching import load_references

    methods = resolve_methods(args.methods)  # fail on a bad name before anything runs
    settings = BenchSettings(
        n_src=args.n_src,
        n_iter=args.iters,
        seed=0 if args.seed is None else args.seed,
        select=args.select or "best",
        model=args.model,
        device=args.device,
        wpe=args.wpe,
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


def _run_matrix(args: argparse.Namespace) -> int:
    import time

    from vae_audio.bench.matrix import load_matrix, simulate_cells
    from vae_audio.bench.matrix_report import cell_table, matrix_markdown, write_matrix_outputs
    from vae_audio.bench.methods import resolve_methods
    from vae_audio.bench.report import write_outputs
    from vae_audio.bench.runner import BenchSettings, run_bench
    from vae_audio.errors import VaeAudioError

    spec = load_matrix(args.matrix)
    if args.simulate_only and args.methods:
        raise VaeAudioError("--simulate-only runs no method; drop --methods")
    methods = resolve_methods(args.methods) if args.methods else spec.methods
    missing = [m for m in (*spec.peers, spec.reference) if m not in methods]
    if missing:
        raise VaeAudioError(
            f"--methods must keep the matrix's peers and reference method; missing: "
            f"{', '.join(missing)}"
        )
    if args.select not in (None, "blind") or args.n_src is not None:
        raise VaeAudioError(
            "a matrix run chooses the talkers blind with each cell's talker count; drop "
            "--select and --n-src"
        )
    design = "full" if args.full else "small"
    seed = spec.seed if args.seed is None else args.seed
    n_per_cell = spec.full_mixtures_per_cell if args.full else spec.mixtures_per_cell
    out = Path(args.out).expanduser() if args.out else Path("exp/bench/matrix") / design
    cells = spec.cells(design)
    start = time.perf_counter()
    sets = simulate_cells(
        spec, out, cells, n_per_cell, seed=seed, jobs=args.jobs, progress=not args.quiet
    )
    sim_s = time.perf_counter() - start
    if args.simulate_only:
        skipped = "".join(f"; skipped {name}: {why}" for name, why in sets.skipped.items())
        print(
            f"{len(sets.cells)} cells x {n_per_cell} mixtures (design {design}, seed {seed}) "
            f"in {sim_s / 60:.1f} min -> {sets.manifest}{skipped}"
        )
        return 0
    settings = BenchSettings(
        n_iter=args.iters,
        seed=seed,
        select="blind",
        model=args.model,
        device=args.device,
        keep_going=True,
        wpe=args.wpe,
    )
    result = run_bench(
        sets.manifest, methods, settings, jobs=args.jobs, limit=args.limit,
        progress=not args.quiet,
    )  # fmt: skip
    run_s = time.perf_counter() - start - sim_s
    result.settings.update(matrix=spec.source, design=design, cells=[c.name for c in sets.cells],
                           skipped_cells=sets.skipped)  # fmt: skip
    write_outputs(result, out)
    table = cell_table(result, sets, spec)
    header = [
        f"- matrix `{spec.source}`, design `{design}`, seed {seed}: {len(sets.cells)} cells x "
        f"{n_per_cell} mixtures ({result.n_mixtures} in all), {len(methods)} methods",
        f"- simulation {sim_s / 60:.1f} min, separation and scoring {run_s / 60:.1f} min with "
        f"{args.jobs} worker process(es) of one thread",
    ]
    header += [f"- skipped cell {name}: {why}" for name, why in sets.skipped.items()]
    write_matrix_outputs(table, out, header, result.settings)
    print(matrix_markdown(table, header))
    for note in result.notes:
        print(f"note: {note}")
    print(f"-> {out}")
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
        "pra-fastmnmf2), oracle ceilings (oracle-mwf, oracle-irm), half-oracles (oracle-psd: true "
        "PSDs, SCMs by EM; oracle-scm: true SCMs, PSDs by MU; oracle-scm-vae: true SCMs, PSDs "
        "from the speech prior) and the floor 'mixture'.",
    )
    p.add_argument("--set", metavar="DIR", help="simulated set (or its manifest)")
    p.add_argument(
        "--matrix", metavar="FILE",
        help="condition-matrix file (e.g. recipes/bench/matrix.yaml): simulate its cells and "
        "run its methods on every cell, talkers chosen blind",
    )  # fmt: skip
    p.add_argument(
        "--full", action="store_true",
        help="with --matrix: the full grid of every axis instead of the small default design",
    )  # fmt: skip
    p.add_argument(
        "--simulate-only", action="store_true",
        help="with --matrix: only simulate the cells into OUT/sets and list them in "
        "OUT/manifest.jsonl (e.g. another --seed's draw for ensemble scripts); run nothing",
    )  # fmt: skip
    p.add_argument(
        "--methods", metavar="LIST",
        help="comma-separated method names; NAME@N runs N iterations (e.g. neural-fastfca@200), "
        "NAME:key=value sets an option (e.g. fastmnmf2:n_fft=1024:init=twostep); with "
        "--matrix the default is the matrix file's list",
    )  # fmt: skip
    p.add_argument(
        "--out", metavar="DIR",
        help="output folder (default: SET/bench; with --matrix exp/bench/matrix/<design>)",
    )  # fmt: skip
    p.add_argument(
        "--n-src", type=count("2"), metavar="N", help="talkers to separate (default: per mixture)"
    )
    p.add_argument(
        "--iters",
        type=ITERATIONS,
        metavar="K",
        help="iterations for every iterative method (default: each method's, 100 for peers)",
    )
    p.add_argument("--jobs", type=JOBS, default=1, metavar="J", help="worker processes")
    p.add_argument("--limit", type=count("10"), metavar="N", help="only the first N mixtures")
    p.add_argument("--model", metavar="CKPT", help="model file for methods that take one")
    p.add_argument(
        "--select",
        choices=("best", "blind"),
        default=None,
        help="which outputs are the talkers: 'best' lets the scorer keep the best-matching "
        "ones (default with --set), 'blind' picks them without references (noise slot / "
        "loudest; always with --matrix)",
    )
    p.add_argument(
        "--seed", type=SEED,
        help="initialisation seed of every run (default 0); with --matrix also the simulation "
        "seed (default: the matrix file's)",
    )  # fmt: skip
    p.add_argument(
        "--device", default="cpu", help="device for our methods (peers and oracles: CPU)"
    )
    p.add_argument(
        "--wpe", action="store_true",
        help="WPE dereverberation (nara_wpe) before our methods, auto and the peers; per "
        "method: NAME:wpe=1 (e.g. --methods fastmnmf2,fastmnmf2:wpe=1)",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)

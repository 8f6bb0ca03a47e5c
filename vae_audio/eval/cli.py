"""`vae-audio evaluate`: score separated sources against a simulated set.

Writes ``results.csv`` (one row per mixture and reference source), ``summary.md`` and
``summary.json`` into ``--out`` (default: the estimate folder) and prints the Markdown summary
(its notes say what was resampled, trimmed or left out) and a one-line summary.
"""

from __future__ import annotations

import argparse

from vae_audio.cli_types import JOBS, Number
from vae_audio.errors import VaeAudioError


def _parse_metrics(text: str) -> tuple[str, ...]:
    """``"sdr, SI-SDR"`` -> ``("sdr", "si-sdr")``; names are checked by the evaluation."""
    return tuple(m.strip().lower() for m in text.split(",") if m.strip())


def _run(args: argparse.Namespace) -> int:
    from vae_audio.eval.evaluate import evaluate_dir
    from vae_audio.eval.report import (
        one_line_summary,
        summary_markdown,
        undefined_sources,
        write_reports,
    )

    metrics = _parse_metrics(args.metrics) if args.metrics is not None else None
    if args.jobs < 1:
        raise VaeAudioError(f"--jobs must be a positive integer, got {args.jobs}")
    result = evaluate_dir(
        args.est,
        args.ref,
        metrics=metrics,
        images=args.images,
        criterion=args.match,
        jobs=args.jobs,
        allow_missing=args.allow_missing,
        split=args.split,
        length_tolerance=args.length_tolerance,
        engine=args.bss_engine,
    )
    paths = write_reports(result, args.out or args.est)
    print(summary_markdown(result))  # ends with the notes (resampling, missing packages...)
    print(f"{one_line_summary(result)} -> {paths.csv}")
    bad = undefined_sources(result)
    if bad and not args.allow_undefined:
        raise VaeAudioError(
            f"{len(bad)} source(s) have undefined metrics (listed in {paths.csv}); check those "
            "estimates, or pass --allow-undefined to exit 0 with them left out of the means"
        )
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score separated sources against a simulated set (SDR, SI-SDR, PESQ, STOI)",
        description="Score the separator outputs EST/<id>/src<k>.wav (or EST/s<k>/<id>.wav, "
        "separate --layout librimix) against the references of a simulated or imported set "
        "(reference microphone, channel 0), solving the "
        "permutation and dropping extra estimates; report SDR/SIR/SAR (BSS Eval), SI-SDR, "
        "their improvements over the unprocessed mixture, and PESQ/STOI when installed.",
    )
    p.add_argument("--est", required=True, metavar="OUTDIR", help="separator output folder")
    p.add_argument(
        "--ref", required=True, metavar="REFDIR|MANIFEST", help="simulated set or its manifest"
    )
    p.add_argument("--out", metavar="DIR", help="where to write the reports (default: --est)")
    p.add_argument(
        "--metrics",
        metavar="LIST",
        help="comma-separated subset of sdr,si-sdr,pesq,stoi (default: sdr,si-sdr and the "
        "perceptual metrics whose packages are installed)",
    )
    p.add_argument(
        "--images",
        action="store_true",
        help="BSS Eval on the multichannel images (bss_eval_images, adds ISR) instead of "
        "the reference microphone",
    )
    p.add_argument(
        "--match",
        choices=("sdr", "si-sdr"),
        help="criterion whose mean the permutation maximises (default: sdr if computed)",
    )
    p.add_argument("--jobs", type=JOBS, default=1, metavar="J", help="parallel processes")
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="evaluate the mixtures that have estimates instead of failing on missing ones",
    )
    p.add_argument(
        "--allow-undefined",
        action="store_true",
        help="exit 0 even when some metrics are undefined (NaN, e.g. a silent estimate); "
        "they are always named in the summary and left out of the means",
    )
    p.add_argument(
        "--bss-engine",
        choices=("fast_bss_eval", "mir_eval"),
        default="fast_bss_eval",
        help="BSS Eval implementation (default fast_bss_eval, exact solver; mir_eval gives the "
        "same numbers, slower; --images always uses mir_eval)",
    )
    p.add_argument("--split", help="only the manifest lines of this split")
    p.add_argument(
        "--length-tolerance",
        type=Number(float, 0, example="0.1"),
        default=0.1,
        metavar="SEC",
        help="estimates this much longer/shorter than the references are trimmed/padded "
        "(default 0.1 s); larger differences are errors",
    )
    p.set_defaults(func=_run)

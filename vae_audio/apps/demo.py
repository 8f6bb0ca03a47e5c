"""`vae-audio demo`: simulate, separate and score one mixture, offline, in about a minute.

1. Two of the bundled utterances (``vae_audio/_demo``, voices held out of the shipped
   models' training data) are placed in a random room of the ``default`` preset (4-mic
   circular array, diffuse pink noise): ``OUT/sim/demo/{mix,src1,src2,noise}.wav`` and
   ``OUT/sim/manifest.jsonl``, a one-mixture simulated set.
2. ``vae-audio separate`` runs on it with ``--method`` (default ``auto``: the shipped Neural
   FCA model averaged with FastMNMF2 from 4 starts, from 4 more after WPE and from 2 starts
   on longer frames when installed, else the FastMNMF2 fits alone; then VAE-FCA re-fitted
   from that average and mixed into it)
   and the ``--baselines`` (default FastMNMF2 and
   FastMNMF2-DP, i.e. ``vae-fastfca`` with its default speech prior; a default baseline this
   installation lacks is left out with a note): ``OUT/<method>/demo/src*.wav`` and a
   spectrogram per method.
3. :func:`vae_audio.eval.evaluate_dir` scores each method against the true speaker images
   at mic 0 (SDR/SIR/SAR by BSS Eval, SI-SDR; dB, mean over the two talkers), next to the
   unprocessed mixture (mic 0 as every talker's estimate). The table is printed and written
   to ``OUT/results.md`` / ``results.json``; ``OUT/spectrograms.png`` shows the mixture, the
   references and each method's estimate matched to each talker.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from vae_audio.cli_types import ITERATIONS, SEED
from vae_audio.errors import VaeAudioError

DEMO_DIR = Path(__file__).resolve().parents[1] / "_demo"
# Seed 9 (two male voices, RT60 0.38 s, SNR 9.4 dB): FastMNMF2 SDR 5.1 dB, next to the median
# (4.9 dB) of seeds 0-11 (range -3.2 to 10.1 dB): a typical mixture, not the best one.
DEFAULT_SEED = 9
FAST_LENGTH_S = 2.5  # --fast: mixture length (the room is the same: drawn before the length)
FAST_ITERS = 20
DEFAULT_BASELINES = "fastmnmf2,vae-fastfca"
COLUMNS = ("sdr", "sir", "sar", "si_sdr")


@dataclass
class DemoResult:
    """Rows of the table (``method``, ``seconds``, and ``COLUMNS`` in dB), its Markdown, the
    simulation's ``meta`` and the output folder."""

    rows: list[dict]
    table: str
    meta: dict
    out: Path
    notes: list[str] = field(default_factory=list)


def _simulate(out: Path, seed: int, fast: bool) -> tuple[Path, dict]:
    """Simulate the demo mixture into ``out/sim``; return its manifest and meta."""
    import numpy as np

    from vae_audio.audio.io import save_audio
    from vae_audio.data.manifest import read_manifest, write_manifest
    from vae_audio.data.presets import load_preset
    from vae_audio.data.simulate import simulate_mixture
    from vae_audio.data.simulate_set import load_mono
    from vae_audio.fileio import atomic_write_text

    utterances = read_manifest(DEMO_DIR / "manifest.jsonl", require=("path", "speaker"))
    rng = np.random.default_rng(seed)
    chosen = [utterances[int(k)] for k in rng.choice(len(utterances), 2, replace=False)]
    preset = load_preset({"length": FAST_LENGTH_S} if fast else "default")
    sr = preset.sample_rate
    sim = simulate_mixture([load_mono(u["path"], sr) for u in chosen], preset, rng)
    folder = out / "sim" / "demo"
    for k, image in enumerate(sim.images):
        save_audio(folder / f"src{k + 1}.wav", image, sr)
    save_audio(folder / "noise.wav", sim.noise, sr)
    save_audio(folder / "mix.wav", sim.mix, sr)
    talkers = [{"speaker": u["speaker"], "text": u["text"]} for u in chosen]
    meta = {"id": "demo", "seed": seed, "preset": "default", "talkers": talkers, **sim.meta}
    atomic_write_text(folder / "meta.json", json.dumps(meta, indent=1) + "\n")
    entry = {
        "id": "demo",
        "mix": str(folder / "mix.wav"),
        "sources": [str(folder / f"src{k + 1}.wav") for k in range(len(chosen))],
        "noise": str(folder / "noise.wav"),
        "meta": str(folder / "meta.json"),
        "duration": sim.meta["length_s"],
        "sample_rate": sr,
        "channels": int(sim.mix.shape[0]),
        "n_speakers": len(chosen),
        "snr_db": sim.meta["snr_db"],
        "rt60": sim.meta["rt60"],
        "split": "demo",
    }
    return write_manifest(out / "sim" / "manifest.jsonl", [entry]), meta


def _mixture_row(manifest: Path) -> dict:
    """BSS Eval and SI-SDR of mic 0 of the mixture used as every talker's estimate."""
    import numpy as np
    import torch

    from vae_audio.audio.io import load_audio
    from vae_audio.eval.matching import load_references
    from vae_audio.eval.metrics import bss_eval, si_sdr

    ref = load_references(manifest)[0]
    mix = load_audio(ref.mix)[0][0]  # [S], mic 0
    refs = torch.stack([load_audio(p)[0][0] for p in ref.sources])  # [K, S]
    est = mix.expand_as(refs)  # [K, S]
    bss = bss_eval(refs, est, perm=np.arange(refs.shape[0]))
    values = {"sdr": bss.sdr, "sir": bss.sir, "sar": bss.sar, "si_sdr": si_sdr(refs, est).numpy()}
    return {"method": "mixture (unprocessed, mic 0)", "seconds": None} | {
        c: float(np.mean(v)) for c, v in values.items()
    }


def run_demo(
    out: str | Path = "exp/demo",
    *,
    method: str = "auto",
    baselines: str = DEFAULT_BASELINES,
    iters: int | None = None,
    fast: bool = False,
    seed: int = DEFAULT_SEED,
    device: str | None = None,
    log=print,
) -> DemoResult:
    """Run the demo (module docstring) into ``out``; ``fast`` shortens the mixture to
    2.5 s and the iterations to 20 (for tests and smoke runs). Returns the scores."""
    from vae_audio.apps.methods import MethodResolver
    from vae_audio.apps.outputs import plot_spectrograms
    from vae_audio.apps.separate import separate_files
    from vae_audio.audio.io import load_audio
    from vae_audio.eval.evaluate import evaluate_dir
    from vae_audio.eval.report import markdown_table, write_reports
    from vae_audio.fileio import atomic_write_text

    out = Path(out).expanduser()
    iters = FAST_ITERS if fast and iters is None else iters
    log(f"simulating a 2-talker mixture (default preset, seed {seed}) into '{out / 'sim'}'")
    manifest, meta = _simulate(out, seed, fast)
    log(
        f"  {meta['length_s']:.1f} s, {len(meta['mic_positions'])} mics, room "
        f"{' x '.join(f'{d:.1f}' for d in meta['room_dim'])} m, RT60 {meta['rt60']:.2f} s, "
        f"SNR {meta['snr_db']:.1f} dB; talkers "
        + ", ".join(f"{t['speaker']} ('{t['text']}')" for t in meta["talkers"])
    )
    from vae_audio.apps.inputs import collect_inputs, probe

    item = collect_inputs([manifest])[0]
    probe(item)
    resolver = MethodResolver(method)
    first = resolver.plan(item)
    methods = [(first.method, method)]
    notes = []
    from vae_audio.separation import METHODS

    for name in [b.strip() for b in baselines.split(",") if b.strip() not in ("", "none")]:
        if name not in METHODS and baselines == DEFAULT_BASELINES:
            notes.append(f"baseline {name} is not available in this installation: left out")
        elif name not in (m for m, _ in methods):
            methods.append((name, name))
    rows = [_mixture_row(manifest)]
    matched = {}
    for name, requested in methods:
        est_dir = out / name
        summary = separate_files(
            [manifest], est_dir, method=requested, iters=iters, device=device, plot=True,
            overwrite=True, progress=False, env={}, log=lambda text: log(f"  {text}"),
        )  # fmt: skip
        if summary.n_failed:
            raise VaeAudioError(f"the demo could not separate its mixture with {name}")
        result = evaluate_dir(est_dir, manifest, metrics=("sdr", "si-sdr"))
        write_reports(result, est_dir)
        tags = [requested] if requested != name else []
        if name in ("neural-fca", "neural-fastfca"):
            tags.append("shipped model")
        elif "prior" in (METHODS[name].options or ()):
            tags.append(f"speech prior {METHODS[name].defaults.get('prior', 'speech-vae')}")
        label = f"{name} ({', '.join(tags)})" if tags else name
        if requested == "auto":  # what auto ran, with its starts and blend
            label = f"auto: {first.label}"
        row = {"method": label, "seconds": round(summary.seconds, 2)}
        rows.append(row | {c: result.summary[c].mean for c in COLUMNS})
        matched[name] = [(r["source"], est_dir / "demo" / r["est_file"]) for r in result.rows]
        log(f"  {label}: {summary.seconds:.1f} s")
    headers = ["method", "time (s)", "SDR", "SIR", "SAR", "SI-SDR"]
    table = markdown_table(rows, ["method", "seconds", *COLUMNS], headers=headers)
    notes = list(resolver.notes) + notes
    if method == "auto" and methods[0][0] == "fastmnmf2":
        notes.append("no shipped Neural FCA model in this installation: auto ran FastMNMF2")
    caption = (
        "dB, mean over the 2 talkers, against the reverberant talker images at mic 0; "
        "estimates matched to talkers by SDR"
    )
    text = f"# vae-audio demo\n\n{caption}\n\n{table}\n"
    atomic_write_text(out / "results.md", text + "".join(f"\n- {n}" for n in notes) + "\n")
    atomic_write_text(
        out / "results.json",
        json.dumps({"rows": rows, "meta": meta, "notes": notes}, indent=1) + "\n",
    )
    mix, sr = load_audio(out / "sim" / "demo" / "mix.wav")
    from vae_audio.audio.stft import StftConfig

    plot_rows = [("mixture (mic 0)", mix[0])]
    for k in range(len(meta["talkers"])):
        plot_rows.append((f"talker {k + 1}: reference image (mic 0)", _mic0(out, f"src{k + 1}")))
    for name, pairs in matched.items():
        for source, path in pairs:
            plot_rows.append(
                (
                    f"{name}: estimate of talker {source.removeprefix('src')} ({path.name})",
                    load_audio(path)[0][0],
                )
            )
    plot_spectrograms(out / "spectrograms.png", plot_rows, StftConfig(sample_rate=sr))
    return DemoResult(rows, table, meta, out, notes)


def _mic0(out: Path, stem: str):
    from vae_audio.audio.io import load_audio

    return load_audio(out / "sim" / "demo" / f"{stem}.wav")[0][0]


def _run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    result = run_demo(
        args.out, method=args.method, baselines=args.baselines, iters=args.iters, fast=args.fast,
        seed=args.seed, device=args.device,
    )  # fmt: skip
    print()
    print("dB, mean over the 2 talkers at mic 0 (references: the true reverberant images)")
    print(result.table)
    for note in result.notes:
        print(f"note: {note}")
    print(
        f"demo finished in {time.perf_counter() - start:.1f} s: wavs, spectrograms.png and "
        f"results.md in '{result.out}'"
    )
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="simulate, separate and score one mixture from bundled utterances (~1 min, CPU)",
        description="Simulate one 2-talker 4-mic mixture (default preset) from the utterances "
        "bundled in vae_audio/_demo, separate it with --method (auto: the shipped Neural FCA "
        "model when installed) and the baselines, score them and the unprocessed mixture "
        "(SDR/SIR/SAR, SI-SDR at mic 0) and write the wavs, a spectrogram PNG and the table.",
    )
    p.add_argument("--out", default="exp/demo", metavar="DIR", help="output folder")
    p.add_argument(
        "--method", default="auto", metavar="METHOD",
        help="method to show (default auto)",
    )  # fmt: skip
    p.add_argument(
        "--baselines", default=DEFAULT_BASELINES, metavar="LIST",
        help=f"comma-separated methods to compare with, or 'none' (default {DEFAULT_BASELINES})",
    )  # fmt: skip
    p.add_argument(
        "--iters", type=ITERATIONS, metavar="K", help="iterations (default: each method's)"
    )
    p.add_argument(
        "--fast", action="store_true", help=f"{FAST_LENGTH_S}-s mixture, {FAST_ITERS} iterations"
    )
    p.add_argument("--seed", type=SEED, default=DEFAULT_SEED, help="talkers and room")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    p.set_defaults(func=_run)

"""`vae-audio separate`: separate recordings into speaker images with any registered method.

Job order: expand the inputs (:mod:`vae_audio.apps.inputs`), read every input's header and
pick its method (:mod:`vae_audio.apps.methods`), take this rank's share, drop inputs whose
outputs are finished with the same settings (unless ``overwrite``; outputs made with other
settings are redone, :mod:`vae_audio.apps.outputs`), read the remaining inputs once to check
their samples, then separate. **A bad input aborts the job before anything is separated**: all
headers are checked on every rank and the samples of this rank's inputs before the first
separation, so a typo or a corrupt file costs seconds, not a half-finished job. Failures
while separating (e.g. a diverging fit, out of GPU memory on a single input) are reported
one line per input, counted, and the job goes on; the exit code is then 1.

Inputs with the same plan, channel count, length and rate are separated as one batch of up
to ``batch_size`` (default 8 on CUDA, 1 on the CPU); every built-in method fits batch items
independently from the same seeded initialisation, so batching changes results only by
float32 rounding (batched BLAS calls) carried through the iterations: about 0.5 % of the
signal norm for FastMNMF2 on 0.5-s cuts, none in float64. A batch that runs out of GPU
memory is retried one input at a time.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vae_audio.apps.methods import METHOD_CHOICES
from vae_audio.cli_types import ITERATIONS, SEED, count, seconds
from vae_audio.errors import VaeAudioError

_KEEP_BYTES = 256 * 2**20
_OVERLAP_S = 1.0  # overlap of neighbouring chunks under --chunk, seconds


@dataclass
class JobSummary:
    """Counts of one job (this rank), wall-clock ``seconds`` of the separation loop (loading,
    separating, writing) and ``audio_seconds`` of the inputs separated."""

    n_separated: int
    n_skipped: int
    n_failed: int
    seconds: float
    audio_seconds: float
    out: Path
    rank: int = 0
    world: int = 1

    @property
    def real_time_factor(self) -> float:
        return self.seconds / self.audio_seconds if self.audio_seconds > 0 else float("nan")

    def line(self) -> str:
        rank = f"rank {self.rank}/{self.world}: " if self.world > 1 else ""
        rtf = (
            f", real-time factor {self.real_time_factor:.3f} on {self.audio_seconds:.1f} s of audio"
            if self.n_separated
            else ""
        )
        return (
            f"{rank}{self.n_separated} separated, {self.n_skipped} skipped (outputs exist), "
            f"{self.n_failed} failed in {self.seconds:.1f} s{rtf} -> '{self.out}'"
        )


_DIGESTS: dict[tuple, str] = {}  # (path, mtime, size) -> SHA-256


def _digest(path: Path) -> str:
    """SHA-256 of the file at ``path``, computed once per process and file version."""
    from vae_audio.data.manifest import file_digest

    stat = path.stat()
    cache = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if cache not in _DIGESTS:
        _DIGESTS[cache] = file_digest(path)
    return _DIGESTS[cache]


def _job_key(
    item,
    plan,
    iters: int | None,
    chunk: float | None,
    seed: int,
    wpe: bool = False,
    starts: int | None = None,
) -> dict:
    """What shapes an input's outputs, JSON-normalised for comparison with a finished
    folder's record: the input file (resolved path, size and SHA-256 of its bytes, so another
    input or one changed in place is redone) and the settings (model files by SHA-256: a
    retrained model redoes outputs)."""
    import json

    source = item.path.resolve()
    key = {
        "input": {"path": str(source), "bytes": source.stat().st_size, "sha256": _digest(source)},
        **plan.record(item.sample_rate, iters, starts, _digest),
        "chunk_s": chunk,
        "seed": seed,
    }
    if wpe:  # only when on: outputs made without WPE keep their key
        key["wpe"] = True
    return json.loads(json.dumps(key))


def _device(name: str | None, local_rank: int):
    import torch

    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise VaeAudioError("--device cuda but no CUDA GPU is visible; use --device cpu")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name != "cpu":
        raise VaeAudioError(f"--device must be cpu or cuda, got {name!r}")
    return torch.device("cpu")


def separate_files(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    method: str = "auto",
    n_src: int | None = None,
    model: str | None = None,
    device: str | None = None,
    iters: int | None = None,
    chunk: float | None = None,
    plot: bool = False,
    overwrite: bool = False,
    layout: str = "folders",
    batch_size: int | None = None,
    seed: int = 0,
    wpe: bool = False,
    starts: int | None = None,
    progress: bool = True,
    env: Mapping[str, str] | None = None,
    log=None,
) -> JobSummary:
    """Separate ``inputs`` (files, folders, manifests) into ``out/<name>/`` (``layout``
    ``"folders"``) or ``out/s<k>/<name>.wav`` (``"librimix"``; :mod:`vae_audio.apps.outputs`).

    ``env`` (default ``os.environ``) supplies the rank variables; ``log(text)`` receives notes
    and per-input failures (default: stderr, above the progress bar). ``wpe``: WPE
    dereverberation of every input (of every chunk) before the fit
    (:mod:`vae_audio.separation.frontend`); part of the job key, so outputs made without it
    are redone, and the reverse. ``starts``: fit every input (every chunk) from that many
    random starts and average them (:func:`vae_audio.separation.api.average_starts`; None:
    the plan's, 4 for ``auto``'s FastMNMF2, else 1); also part of the job key.
    """
    from tqdm import tqdm

    from vae_audio.apps.inputs import check_samples, collect_inputs, distributed_env, probe, shard
    from vae_audio.apps.methods import MethodResolver
    from vae_audio.apps.outputs import LAYOUTS, OutputPaths

    out = Path(out).expanduser()
    if layout not in LAYOUTS:
        raise VaeAudioError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if out.exists() and not out.is_dir():
        raise VaeAudioError(f"output '{out}' is a file; give a folder with -o")
    if iters is not None and iters < 0:
        raise VaeAudioError(f"--iters must be a non-negative integer, got {iters}")
    if chunk is not None and not (math.isfinite(chunk) and chunk >= 2 * _OVERLAP_S):
        raise VaeAudioError(
            f"--chunk must be a finite number of seconds, at least {2 * _OVERLAP_S:g} (twice "
            f"the {_OVERLAP_S:g}-s overlap of neighbouring chunks), got {chunk}; e.g. --chunk 10"
        )
    if batch_size is not None and batch_size < 1:
        raise VaeAudioError(f"--batch-size must be a positive integer, got {batch_size}")
    if wpe:  # nara_wpe missing: stop before anything runs
        from vae_audio.separation.frontend import require_wpe

        require_wpe()
    rank, world, local_rank = distributed_env(env)
    dev = _device(device, local_rank)
    batch_size = batch_size or (8 if dev.type == "cuda" else 1)
    items = collect_inputs(inputs, exclude=out)
    resolver = MethodResolver(method, n_src, model)
    for item in items:  # every rank checks every header: all ranks fail alike
        probe(item)
    plans = {item.path: resolver.plan(item) for item in items}
    inputs_paths = [item.path for item in items]
    homes = {p.parent for p in inputs_paths}
    targets = {item.path: OutputPaths(out, item.name, layout) for item in items}
    for item in items:
        folder = targets[item.path].file("src1.wav").parent
        if folder.resolve() in homes:
            raise VaeAudioError(
                f"output folder '{folder}' holds input files (e.g. '{item.path}'); "
                "choose an output folder outside the input data with -o"
            )
    for item in items:
        min_len = plans[item.path].longest_window(item.sample_rate)
        if item.frames < min_len:
            raise VaeAudioError(
                f"'{item.path}' is {item.frames} samples long; separation needs at least one "
                f"window of its longest STFT ({min_len} samples); remove it from the inputs"
            )
    mine = shard(items, rank, world)
    from vae_audio.apps.outputs import finished_job

    log = log or (lambda text: tqdm.write(f"vae-audio: {text}", file=sys.stderr))
    stale_temps = sum(len(targets[i.path].remove_stale_temps()) for i in mine)
    if stale_temps:
        log(f"note: removed {stale_temps} temporary file(s) left by an interrupted earlier run")
    for item in mine:
        if item.missing_frames:
            log(
                f"warning: '{item.path}' is truncated: its header declares "
                f"{(item.frames + item.missing_frames) / item.sample_rate:.2f} s but the file "
                f"holds {item.duration:.2f} s ({item.missing_frames / item.sample_rate:.2f} s "
                "missing); separating the part that is there"
            )
    jobs = {i.path: _job_key(i, plans[i.path], iters, chunk, seed, wpe, starts) for i in mine}
    previous = {i.path: None if overwrite else finished_job(targets[i.path]) for i in mine}
    todo = [i for i in mine if previous[i.path] != jobs[i.path]]
    n_skipped = len(mine) - len(todo)
    n_stale = sum(previous[i.path] is not None for i in todo)
    from vae_audio.apps.streaming import BlockReader, plan_chunks
    from vae_audio.separation.memory import available_bytes

    chunks, refused = {}, {}
    for item in todo:  # whole or in chunks, by the memory each input would take
        try:
            available = available_bytes(dev)
            chunks[item.path] = plan_chunks(item, plans[item.path], chunk, available)
        except VaeAudioError as err:
            refused[item.path] = str(err)
    wavs, kept = {}, 0
    for item in todo:  # samples of this rank's inputs, before the first separation
        if item.path in refused:
            continue
        sr = plans[item.path].sample_rate or item.sample_rate
        if chunks[item.path].chunk_s is not None:  # checked block by block, never held
            BlockReader(item.path, item.sample_rate, sr, item.frames).check()
            continue
        wav = check_samples(item, plans[item.path].sample_rate)  # [M, S]
        kept += wav.numel() * wav.element_size()
        if kept <= _KEEP_BYTES:  # small jobs are read once; larger ones again when separated
            wavs[item.path] = wav
    for note in resolver.notes:
        log(f"note: {note}")
    if n_stale:
        log(
            f"note: {n_stale} input(s) have outputs made from another input file or with other "
            "settings; redoing them"
        )

    for item in todo:
        note = chunks[item.path].note if item.path in chunks else ""
        if note:
            log(f"note: {note}")
    groups = defaultdict(list)
    for item in todo:
        if item.path in refused:
            continue
        streamed = chunks[item.path].chunk_s is not None
        key = (plans[item.path], item.channels, item.frames, item.sample_rate, streamed)
        groups[key].append(item)
    batches = [
        g[i : i + size]
        for key, g in groups.items()
        for size in [1 if key[-1] else batch_size]
        for i in range(0, len(g), size)
    ]
    start = time.perf_counter()
    done = failed = 0
    audio_seconds = 0.0
    for error in refused.values():
        failed += 1
        log(f"failed: {error}")
    bar = tqdm(
        total=len(todo), desc="separate", unit="file", disable=not progress or rank != 0,
        file=sys.stderr,
    )  # fmt: skip
    run = _BatchRunner(
        targets, plans, jobs, dev, iters, chunks, plot, seed, inputs_paths, wavs, wpe, starts
    )
    with bar:
        for batch in batches:
            for item, error in run(batch):
                if error is None:
                    done += 1
                    audio_seconds += item.duration
                else:
                    failed += 1
                    log(f"failed: '{item.path}': {error}")
                bar.update(1)
    return JobSummary(
        done, n_skipped, failed, time.perf_counter() - start, audio_seconds, out, rank, world
    )


@dataclass
class _BatchRunner:
    """Loads, separates and writes one batch; returns ``(item, error or None)`` per input."""

    targets: dict  # input path -> OutputPaths
    plans: dict
    jobs: dict
    device: object
    iters: int | None
    chunks: dict
    plot: bool
    seed: int
    protect: list
    wavs: dict
    wpe: bool = False
    starts: int | None = None

    def __call__(self, batch: list) -> list:
        import torch

        try:
            return self._run(batch)
        except torch.cuda.OutOfMemoryError:
            if len(batch) == 1:
                return [(batch[0], "out of GPU memory; pass --chunk 10 or use --device cpu")]
            torch.cuda.empty_cache()
            return [r for item in batch for r in self([item])]
        except VaeAudioError as err:
            return [(item, str(err)) for item in batch]
        except (MemoryError, RuntimeError) as err:
            if not isinstance(err, MemoryError) and "memory" not in str(err).lower():
                return [(item, _unexpected(err)) for item in batch]
            if len(batch) > 1:
                return [r for item in batch for r in self([item])]
            return [(batch[0], "ran out of memory; pass --chunk with a shorter length, e.g. 10")]
        except Exception as err:  # one input's failure must not end the job
            return [(item, _unexpected(err)) for item in batch]

    def _run(self, batch: list) -> list:
        import torch

        from vae_audio.apps.inputs import check_samples
        from vae_audio.apps.outputs import write_outputs
        from vae_audio.separation import separate

        plan = self.plans[batch[0].path]
        chunk_s = self.chunks[batch[0].path].chunk_s
        if chunk_s is not None:
            return self._stream(batch[0], plan, chunk_s)
        wav = [self.wavs.get(i.path) for i in batch]  # each [M, S] or None (not kept)
        wav = [
            w if w is not None else check_samples(i, plan.sample_rate)
            for w, i in zip(wav, batch, strict=True)
        ]
        x = torch.stack(wav)  # [B, M, S]
        sr = plan.sample_rate or batch[0].sample_rate
        stft = plan.stft_for(sr)
        res = separate(
            x, method=plan.method, n_src=plan.n_src, sr=sr, stft=stft,
            n_iter=plan.iterations(self.iters),
            device=self.device,
            seed=self.seed, wpe=self.wpe, starts=plan.n_starts(self.starts),
            blend=plan.blend_entries(sr), refit=plan.refit_entry(), **dict(plan.opts),
        )  # fmt: skip
        sources = res.sources.cpu()  # [B, N, M, S]
        noise = None if res.noise is None else res.noise.cpu()  # [B, M, S]
        results = []
        for b, item in enumerate(batch):
            record = {
                **self._record(item, plan, sr),
                "batch_size": len(batch),
                "settings": res.settings,
                "timings_s": res.timings,
            }
            try:
                write_outputs(
                    self.targets[item.path], sources[b], None if noise is None else noise[b], sr,
                    record, protect=self.protect, mixture=x[b] if self.plot else None, stft=stft,
                )  # fmt: skip
                results.append((item, None))
            except VaeAudioError as err:
                results.append((item, str(err)))
        return results

    def _record(self, item, plan, sr: int) -> dict:
        return {
            "input": str(item.path.resolve()),
            "job": self.jobs[item.path],
            "method": plan.method,
            "label": plan.label,
            "sample_rate": sr,
            "input_sample_rate": item.sample_rate,
            "channels": item.channels,
            "duration_s": item.duration,
        }

    def _stream(self, item, plan, chunk_s: float) -> list:
        from vae_audio.apps.streaming import separate_streaming

        sr = plan.sample_rate or item.sample_rate
        separate_streaming(
            item, plan, self.targets[item.path], chunk_s, _OVERLAP_S, device=self.device,
            iters=self.iters, seed=self.seed, record={**self._record(item, plan, sr),
            "batch_size": 1}, protect=self.protect, plot=self.plot, wpe=self.wpe,
            starts=plan.n_starts(self.starts),
        )  # fmt: skip
        return [(item, None)]


def _unexpected(err: Exception) -> str:
    return f"unexpected error ({type(err).__name__}: {err}); the other inputs go on"


def _run(args: argparse.Namespace) -> int:
    summary = separate_files(
        args.inputs,
        args.out,
        method=args.method,
        n_src=args.n_src,
        model=args.model,
        device=args.device,
        iters=args.iters,
        chunk=args.chunk,
        plot=args.plot,
        overwrite=args.overwrite,
        layout=args.layout,
        batch_size=args.batch_size,
        seed=args.seed,
        wpe=args.wpe,
        starts=args.starts,
        progress=not args.quiet,
    )
    print(summary.line())
    return 1 if summary.n_failed else 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "separate",
        help="separate recordings into speaker images (Neural FCA, FastMNMF2, ...)",
        description="Separate multichannel recordings into OUTDIR/<name>/src1.wav ... srcN.wav "
        "(speaker images at every mic, channel 0 the reference mic, loudest first), noise.wav "
        "(the noise slot) and separation.json. INPUT: wav/flac files, folders (recursive) or a "
        "JSONL manifest ('mix' of a simulated set, named by its 'id'; or 'path' of a corpus). "
        "Every input is checked before the first separation: a bad one stops the job with "
        "exit code 2 and nothing written. Outputs finished with the same settings are skipped "
        "unless --overwrite (other settings, e.g. a retrained --model, redo them). "
        "Under torchrun/SLURM each rank takes every WORLD_SIZE-th input.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files, folders or manifests")
    p.add_argument("-o", "--out", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument(
        "--method", default="auto", metavar="METHOD",
        help=f"auto or a registered method: {', '.join(METHOD_CHOICES[1:])}, ... (default "
        "auto: the shipped Neural FCA model for inputs with its channel and talker count, "
        "averaged with fastmnmf2 from 4 starts with and without WPE and from 2 starts on "
        "longer frames; vae-nmf for 1 channel; else that fastmnmf2 average alone, which takes "
        "any M >= 2 and any --n-src; either average then re-fitted by vae-fca and mixed in; "
        "a note says which ran and why)",
    )  # fmt: skip
    p.add_argument(
        "--n-src", type=count("2"), metavar="N",
        help="speakers to separate (default 2, vae-nmf 1; a Neural FCA model: 1 to its own, "
        "default its own; under auto another count runs fastmnmf2)",
    )  # fmt: skip
    p.add_argument(
        "--model", metavar="CKPT",
        help="Neural FCA model.pt, or the speech prior of a VAE method: a model.pt or a shipped "
        "name (default: the method's shipped one; `vae-audio models` lists them)",
    )  # fmt: skip
    p.add_argument(
        "--device", choices=("cpu", "cuda"), help="default: cuda when available, else cpu"
    )
    p.add_argument(
        "--iters", type=ITERATIONS, metavar="K",
        help="iterations (default: the method's; Neural FCA: refinement steps, default 200 "
        "as published, 0 = amortised only)",
    )  # fmt: skip
    p.add_argument(
        "--chunk", type=seconds("10", minimum=2 * _OVERLAP_S), metavar="SEC",
        help="separate long inputs in chunks of SEC seconds (1-s overlap)",
    )  # fmt: skip
    p.add_argument("--plot", action="store_true", help="also write spectrogram.png per input")
    p.add_argument("--overwrite", action="store_true", help="redo inputs with finished outputs")
    p.add_argument(
        "--layout", choices=("folders", "librimix"), default="folders",
        help="folders: OUTDIR/<name>/src1.wav ... (default); librimix: OUTDIR/s1/<name>.wav, "
        "OUTDIR/s2/<name>.wav ..., OUTDIR/noise/<name>.wav and the record "
        "OUTDIR/separation/<name>.json, as LibriMix and wsj0-2mix store their sources",
    )  # fmt: skip
    p.add_argument(
        "--batch-size", type=count("8"), metavar="B",
        help="inputs of equal length and channel count per batch (default 8 on cuda, 1 on cpu)",
    )  # fmt: skip
    p.add_argument("--seed", type=SEED, default=0, help="initialisation seed (default 0)")
    p.add_argument(
        "--wpe", action="store_true",
        help="dereverberate every input (every chunk) by WPE before separating (needs "
        "nara_wpe: pip install 'vae_audio[wpe]'); outputs estimate the dry + early images",
    )  # fmt: skip
    p.add_argument(
        "--starts", type=count("4"), metavar="K",
        help="fit every input from K random starts and average the K separations (talkers "
        "matched first); K times the time, a steadier and usually better result for the "
        "methods with a random start (not the Neural FCA models); default 4 where auto runs "
        "fastmnmf2, else 1",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)

"""The GPU check: CUDA tests, a 2-epoch run of the published-scale recipes, and batched
separation throughput, in one command sized for 8 minutes on one GPU (not yet timed on one).

    # on a machine with the corpora (CPU is fine): 32 + 4 simulated 4-mic mixtures, ~40 MB
    .venv/bin/python egs/neural_fca/gpu_check.py prepare --corpus data/tts/train.jsonl \\
        --out gpu_check
    # on the GPU machine, with the package and its dependencies installed
    python egs/neural_fca/gpu_check.py run --data gpu_check --out exp/gpu_check

``run`` does, in order, and writes ``OUT/report.md`` (also printed):

1. ``pytest -m cuda``: the tests that compare CUDA with the CPU and check that bfloat16
   autocast stays inside the networks (skipped on machines without a GPU).
2. ``recipes/neural_fca/paper.yaml`` (Neural FCA) and ``fastfca_paper.yaml`` (Neural FastFCA)
   unchanged but for the data, the shipped speech prior and ``trainer.max_epochs=2``: batch
   16 of 4-s chunks, ``trainer.precision: bf16-mixed``, on one GPU through Lightning's DDP
   strategy (``trainer.devices=1 trainer.strategy=ddp``: the process group, the distributed
   sampler and the gradient all-reduce of a multi-GPU run, in one process). Wall time,
   optimiser steps, seconds per step, peak GPU memory of the process, the last training loss.
3. ``separate()`` on batches of 1, 8 and 32 of the mixtures (cut to 4 s) with the shipped
   Neural FastFCA model (amortised, and refined with 200 steps) and FastMNMF2 (100
   iterations): seconds per batch, mixtures per second, real-time factor, peak memory.

``--device cpu --smoke`` runs the same steps on the CPU with a tiny encoder, batch 2 of 1-s
chunks and batches of 1 and 2, to check the script itself (the test suite does).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ("paper", "fastfca_paper")
PRIOR = ROOT / "vae_audio" / "_pretrained" / "speech_vae.pt"
MODEL = ROOT / "vae_audio" / "_pretrained" / "neural_fca.pt"
SMOKE = [
    "model.encoder={io_channels: 8, mid_channels: 8, n_blocks: 2, n_layers: 2}",
    "data.batch_size=2",
    "data.segment_seconds=1.0",
    "model.em_iterations=1",
]


def prepare(corpus: Path, out: Path, n_train: int, n_valid: int, jobs: int) -> None:
    """Simulate the check's mixtures with ``vae-audio simulate`` (default preset) and keep
    only what training and separation read (``mix.wav``, ``meta.json``, the manifest)."""
    from vae_audio import cli

    with tempfile.TemporaryDirectory() as tmp:
        for split, n in (("train", n_train), ("valid", n_valid)):
            sim = Path(tmp) / split
            argv = ["simulate", str(sim), "--corpus", str(corpus), "--split", "train"]
            argv += ["--n", str(n), "--seed", str(1 if split == "valid" else 0)]
            if cli.main([*argv, "--jobs", str(jobs), "-q"]) != 0:
                raise SystemExit(f"gpu_check: simulating {split} failed")
            dest = out / split
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(sim / "manifest.jsonl", dest / "manifest.jsonl")
            for item in sim.iterdir():
                if item.is_dir():
                    (dest / item.name).mkdir(exist_ok=True)
                    for name in ("mix.wav", "meta.json"):
                        shutil.copy(item / name, dest / item.name / name)
    print(f"gpu_check: {n_train} + {n_valid} mixtures in {out}")


def _tests(device: str) -> str:
    """``pytest -m cuda``; returns pytest's summary line."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider"]
    cmd.append(str(ROOT / "tests"))
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
    summary = lines[-1] if lines else done.stderr.strip()[-200:]
    return f"`pytest -m cuda` on {device}: {summary}"


def _train(recipe: str, data: Path, out: Path, device: str, smoke: bool) -> dict:
    """Two epochs of ``recipes/neural_fca/<recipe>.yaml`` on ``data``; its figures."""
    from vae_audio import cli

    run = out / recipe
    argv = [
        "train",
        "neural-fca",
        "--config",
        str(ROOT / "recipes" / "neural_fca" / f"{recipe}.yaml"),
    ]
    argv += [
        f"prior={PRIOR}",
        f"data.train_manifest={data / 'train' / 'manifest.jsonl'}",
        f"data.valid_manifest={data / 'valid' / 'manifest.jsonl'}",
        "data.num_workers=4",
        f"trainer.out_dir={run}",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "trainer.log_every_n_steps=1",
        "validation.examples=0",
    ]
    if device == "cpu":
        argv += ["trainer.accelerator=cpu", "data.num_workers=0"]
    else:
        argv += ["trainer.devices=1", "trainer.strategy=ddp"]
    argv += SMOKE if smoke else []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    code = cli.main(argv)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else math.nan
    rows = _metrics(run)
    losses = [float(r["train/loss_step"]) for r in rows if r.get("train/loss_step")]
    steps = 1 + max((int(r["step"]) for r in rows), default=-1)
    config = run / "config.yaml"
    precision = "?"
    if config.is_file():
        from vae_audio.core.config import load_config

        precision = load_config(config)["trainer"]["precision"]
    return {
        "recipe": recipe,
        "exit": code,
        "precision": precision,
        "seconds": seconds,
        "steps": steps,
        "per_step": seconds / steps if steps else math.nan,
        "peak_gib": peak,
        "last_loss": losses[-1] if losses else math.nan,
    }


def _metrics(run: Path) -> list[dict]:
    rows: list[dict] = []
    for path in sorted((run / "logs").glob("version_*/metrics.csv")):
        with path.open() as f:
            rows += list(csv.DictReader(f))
    return rows


def _throughput(data: Path, device: str, smoke: bool) -> list[dict]:
    """``separate()`` on batches of the check's mixtures, cut to 4 s (smoke: 1 s, batches of 1
    and 2, 5 refinement steps and 10 FastMNMF2 iterations)."""
    import soundfile as sf

    from vae_audio.separation import separate

    sizes, clip_s, steps = ([1, 2], 1, (5, 10)) if smoke else ([1, 8, 32], 4, (200, 100))
    items = [json.loads(line) for line in (data / "train" / "manifest.jsonl").open()]
    wavs = []
    for item in items[: max(sizes)]:
        path = data / "train" / item["id"] / "mix.wav"
        wav, sr = sf.read(path, dtype="float32", always_2d=True, frames=clip_s * 16000)
        wavs.append(torch.from_numpy(wav.T.copy()))
    S = min(w.shape[-1] for w in wavs)
    mixes = torch.stack([w[:, :S] for w in wavs])  # [B, M, S]
    methods = [
        ("neural-fastfca", {"n_iter": 0, "model": str(MODEL)}, "shipped Neural FastFCA, amortised"),
        ("neural-fastfca", {"n_iter": steps[0], "model": str(MODEL)},
         f"shipped Neural FastFCA, {steps[0]} steps"),
        ("fastmnmf2", {"n_iter": steps[1]}, f"FastMNMF2, {steps[1]} iterations"),
    ]  # fmt: skip
    rows = []
    for method, kwargs, label in methods:
        for B in sizes:
            batch = mixes[:B]
            separate(batch[:1, :, : sr // 2], method, n_src=2, sr=sr, device=device, **kwargs)
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            separate(batch, method, n_src=2, sr=sr, device=device, **kwargs)
            if device == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else math.nan
            audio = B * S / sr
            rows.append(
                {"method": label, "batch": B, "seconds": seconds, "per_s": B / seconds,
                 "rtf": seconds / audio, "peak_gib": peak}
            )  # fmt: skip
            print(f"gpu_check: {label}, batch {B}: {seconds:.2f} s", flush=True)
    return rows


def _report(device: str, tests: str, runs: list[dict], rows: list[dict]) -> str:
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    lines = [f"# GPU check ({name}, torch {torch.__version__})", "", tests, ""]
    lines += [
        "| recipe | exit | precision | wall (s) | steps | s / step | peak GPU memory (GiB) "
        "| last loss |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r['recipe']} | {r['exit']} | {r['precision']} | {r['seconds']:.1f} | {r['steps']} "
            f"| {r['per_step']:.3f} | {r['peak_gib']:.2f} | {r['last_loss']:.3f} |"
        )
    lines += ["", "| separation | batch | s / batch | mixtures / s | RTF | peak GPU memory (GiB) |"]
    lines.append("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['batch']} | {r['seconds']:.2f} | {r['per_s']:.2f} "
            f"| {r['rtf']:.4f} | {r['peak_gib']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def run(data: Path, out: Path, device: str, smoke: bool, tests: bool = True) -> str:
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "gpu_check: no CUDA device here; use --device cpu --smoke to try the script"
        )
    if not (data / "train" / "manifest.jsonl").is_file():
        raise SystemExit(f"gpu_check: {data}/train/manifest.jsonl missing; run `prepare` first")
    out.mkdir(parents=True, exist_ok=True)
    summary = _tests(device) if tests else "`pytest -m cuda`: not run (--no-tests)"
    print(summary, flush=True)
    runs = [_train(recipe, data, out, device, smoke) for recipe in RECIPES]
    rows = _throughput(data, device, smoke)
    text = _report(device, summary, runs, rows)
    tmp = out / "report.md.tmp"
    tmp.write_text(text)
    tmp.replace(out / "report.md")
    print(text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="simulate the check's mixtures (CPU)")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("gpu_check"))
    p.add_argument("--n-train", type=int, default=32)
    p.add_argument("--n-valid", type=int, default=4)
    p.add_argument("--jobs", type=int, default=2)
    r = sub.add_parser("run", help="the check itself (GPU)")
    r.add_argument("--data", type=Path, default=Path("gpu_check"))
    r.add_argument("--out", type=Path, default=Path("exp/gpu_check"))
    r.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    r.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script")
    r.add_argument("--no-tests", action="store_true", help="skip `pytest -m cuda`")
    args = parser.parse_args(argv)
    if args.cmd == "prepare":
        prepare(args.corpus, args.out, args.n_train, args.n_valid, args.jobs)
    else:
        run(args.data, args.out, args.device, args.smoke, tests=not args.no_tests)


if __name__ == "__main__":
    main()

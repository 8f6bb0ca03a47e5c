"""Benchmark: VAE (β = 1), β-VAE (β = 4) and β-TCVAE (β = 6) on procedural dSprites.

Each model is trained with the same budget through the ``image-vae`` recipe pipeline
(same data, network, optimiser, steps and seed), then scored on the validation ELBO (nats
per image) and the disentanglement metrics (encoder means as representation; protocol sizes
reduced for CPU, see ``EVAL``). Writes ``bench.md`` (Markdown table) and ``bench.json`` to
``--out``.

    python egs/dsprites/bench.py --out exp/dsprites/bench --steps 2500 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vae_audio.core.config import load_config
from vae_audio.fileio import atomic_write_text
from vae_audio.image.recipe import train_from_config

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "image_vae"
MODELS = [
    ("VAE (β=1)", "vae.yaml", []),
    ("β-VAE (β=4)", "beta_vae_h.yaml", ["objective.beta=4.0"]),
    ("β-TCVAE (β=6, MSS)", "beta_tcvae.yaml", ["objective.beta=6.0"]),
]
EVAL = {
    "mig": {"num_train": 10000},
    "factor_vae": {"num_train": 1000, "num_eval": 500, "num_variance_estimate": 5000},
    "beta_vae": {"num_train": 1000, "num_eval": 500},
    "chen_mig": {"num_points": 1000, "max_values_per_factor": 8},
}


def _row(name: str, metrics: dict, seconds: float) -> dict:
    dis = metrics["disentanglement"]
    return {
        "model": name,
        "elbo": metrics["val"]["elbo"],
        "nll": metrics["val"]["nll"],
        "kl": metrics["val"]["kl"],
        "mig": dis["mig"]["mig"],
        "chen_mig": dis["chen_mig"]["mig"],
        "factor_vae": dis["factor_vae"]["eval_accuracy"],
        "beta_vae": dis["beta_vae"]["eval_accuracy"],
        "train_seconds": seconds,
    }


def markdown(rows: list[dict], steps: int, batch: int, hidden: str) -> str:
    lines = [
        f"Procedural dSprites, {steps} steps × batch {batch}, MLP encoder/decoder {hidden}, "
        "D = 10, same seed. ELBO in nats per image (validation, 1 sample); metrics as "
        "fractions (reduced protocol sizes, see bench.py).",
        "",
        "| model | ELBO | NLL | KL | MIG | MIG (Chen, sampled) | FactorVAE | β-VAE metric |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['elbo']:.1f} | {r['nll']:.1f} | {r['kl']:.1f} | {r['mig']:.3f} "
            f"| {r['chen_mig']:.3f} | {r['factor_vae']:.3f} | {r['beta_vae']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="exp/dsprites/bench")
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", default="[256]", help="MLP widths (YAML list)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--accelerator", default="auto")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    rows = []
    for name, recipe, extra in MODELS:
        tag = recipe.removesuffix(".yaml")
        overrides = [
            f"trainer.out_dir={out / tag}",
            f"trainer.max_steps={args.steps}",
            f"trainer.seed={args.seed}",
            f"trainer.accelerator={args.accelerator}",
            "trainer.overwrite=true",
            "trainer.export=last",
            "trainer.tensorboard=false",
            "data.num_train=null",
            f"data.batch_size={args.batch_size}",
            f"model.hidden={args.hidden}",
            "model.network=mlp",
            "eval.metrics=[mig, chen_mig, factor_vae, beta_vae]",
            f"eval.params={json.dumps(EVAL)}",
            *extra,
        ]
        config = load_config(RECIPES / recipe, overrides)
        start = time.time()
        train_from_config(config)
        seconds = time.time() - start
        metrics = json.loads((out / tag / "metrics.json").read_text())
        rows.append(_row(name, metrics, seconds))
        print(f"{name}: {rows[-1]}", flush=True)
    table = markdown(rows, args.steps, args.batch_size, args.hidden)
    atomic_write_text(out / "bench.md", table)
    atomic_write_text(out / "bench.json", json.dumps(rows, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

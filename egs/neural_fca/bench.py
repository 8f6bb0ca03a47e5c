"""Neural FCA vs Neural FastFCA: training-step cost, and separation quality of a trained model.

    .venv/bin/python egs/neural_fca/bench.py step [--preset cpu|paper] [--batch 4]
        [--seconds 2] [--mics 4] [--em-iterations 5] [--jd-iterations 0] [--repeats 5]
        [--threads 1]
    .venv/bin/python egs/neural_fca/bench.py separate --model exp/neural_fca/cpu/model.pt \
        --manifest data/sim/test/manifest.jsonl [--n-mix 10] [--n-iter 200] [--lr 0.2]
    .venv/bin/python egs/neural_fca/bench.py amortised [--model PATH] [--mix WAV]
        [--seconds 10] [--repeats 9] [--threads 1]

``step``: the same random batch ``[B, M, S]`` (16 kHz, n_fft 512, hop 128, N = 3 slots,
random speech decoder with D = 16) goes through one full training step (STFT, forward,
loss, backward, Adam step) of Neural FCA (``spatial: full``, K EM iterations) and of Neural
FastFCA (``spatial: jd``, one ISS sweep after each stack but the last, then
``--jd-iterations`` MM updates of ``Q`` and ``g``), taking turns so that
load from other processes hits both; the table gives the median wall-clock seconds per step
over ``--repeats`` steps after one warm-up step, and the ratio FastFCA / FCA. ``--preset``
picks the encoder: ``cpu`` (64/128 channels, 2 x 4 layers) or ``paper`` (256/512, 4 x 8).

``separate``: a trained model separates the first ``--n-mix`` mixtures of a simulated set
(``vae-audio simulate``) amortised (encoder + EM / ISS, no refinement) and refined
(``--n-iter`` iterations, Adam lr ``--lr`` on z, as published: 200 and 0.2). Scores are
BSS Eval SDR/SIR/SAR and SI-SDR at mic 0 (dB; speaker estimates matched to the reverberant
references by SDR, the noise slot excluded) and the real-time factor (separation seconds /
mixture seconds). Prints Markdown tables (means over mixtures).

``amortised``: where the time of amortised inference goes (``separate(..., n_iter=0)``), for
the shipped model by default, on ``--mix`` (its first ``--seconds``) or on white noise of that
length at the model's mic count: the STFT, the encoder, the decoder, the JD spatial updates
after the encoder, the Wiener filter and the inverse STFT, each timed alone on the
pipeline's own inputs, then the whole of ``separate()`` and of its TorchScript export
(:func:`~vae_audio.neural_fca.export.trace_separator`); median milliseconds over
``--repeats`` runs after one warm-up, the real-time factor, and the median count of minor
page faults per run (memory that the allocator mapped afresh and the kernel had to
supply). It times whichever ``vae_audio`` Python imports, so ``PYTHONPATH=OTHER_CHECKOUT``
times another version with the same script.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]

ENCODERS = {
    "cpu": {"io_channels": 64, "mid_channels": 128, "n_blocks": 2, "n_layers": 4},
    "paper": {"io_channels": 256, "mid_channels": 512, "n_blocks": 4, "n_layers": 8},
}


def _step_config(spatial: str, args) -> dict:
    return {
        "stft": {"sample_rate": 16000, "n_fft": 512, "hop_length": 128},
        "model": {
            "n_mics": args.mics,
            "n_speakers": 2,
            "spatial": spatial,
            "em_iterations": args.em_iterations,
            "jd_iterations": args.jd_iterations if spatial == "jd" else 0,
            "encoder": ENCODERS[args.preset],
            "decoder": {"arch": "mlp", "latent_dim": 16, "hidden": 128},
        },
        "augment": {"mic_permutation": True},
        "loss": {"beta": 1.0},
        "trainer": {"seed": 0},
    }


def bench_step(args) -> None:
    from vae_audio.core.optim import OPTIM_DEFAULTS, build_optimizer
    from vae_audio.neural_fca.task import NeuralFCATask

    g = torch.Generator().manual_seed(0)
    wav = torch.randn(args.batch, args.mics, int(args.seconds * 16000), generator=g) * 0.05
    tasks, optims, times = {}, {}, {}
    for spatial in ("full", "jd"):
        tasks[spatial] = NeuralFCATask(_step_config(spatial, args))
        params = [p for p in tasks[spatial].parameters() if p.requires_grad]
        optims[spatial] = build_optimizer(params, {**OPTIM_DEFAULTS, "lr": 1e-3})
        times[spatial] = []

    def step(spatial: str) -> float:
        task, optim = tasks[spatial], optims[spatial]
        start = time.perf_counter()
        optim.zero_grad()
        loss = task.compute_loss({"mix": wav}, "train").loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(task.parameters(), 5.0)
        optim.step()
        return time.perf_counter() - start

    for spatial in tasks:  # warm-up
        step(spatial)
    for _ in range(args.repeats):
        for spatial in tasks:
            times[spatial].append(step(spatial))
    full, jd = statistics.median(times["full"]), statistics.median(times["jd"])
    n_params = {s: sum(p.numel() for p in t.model.encoder.parameters()) for s, t in tasks.items()}
    print(
        f"Training step, batch {args.batch} x {args.mics} mics x {args.seconds} s, encoder "
        f"'{args.preset}', N = 3, K = {args.em_iterations} EM iterations, "
        f"{args.jd_iterations} JD updates after the FastFCA encoder, "
        f"{torch.get_num_threads()} thread(s), median of {args.repeats}:\n"
    )
    print("| model | encoder params | s / step | relative |")
    print("|---|---|---|---|")
    print(f"| Neural FCA (full, EM) | {n_params['full']:,} | {full:.3f} | 1.00 |")
    print(f"| Neural FastFCA (JD, ISS) | {n_params['jd']:,} | {jd:.3f} | {jd / full:.2f} |")


def bench_separate(args) -> None:
    from vae_audio.audio.stft import istft, stft
    from vae_audio.data.datasets import MixtureDataset
    from vae_audio.eval.scoring import score_mixture
    from vae_audio.neural_fca import fit_neural_fca, load_neural_fca

    model = load_neural_fca(args.model)
    cfg = model.stft_config
    data = MixtureDataset(args.manifest, None, sr=cfg.sample_rate, with_sources=True)
    columns = ("sdr", "sir", "sar", "si_sdr", "si_sdr_i")
    rows = {}
    for label, n_iter in (("amortised", 0), (f"refined ({args.n_iter} it)", args.n_iter)):
        values, seconds, duration = {c: [] for c in columns}, 0.0, 0.0
        for i in range(min(args.n_mix, len(data))):
            item = data[i]
            mix = item["mix"]
            start = time.perf_counter()
            X = stft(mix[None], cfg)
            fit = fit_neural_fca(X, model, n_iter=n_iter, lr=args.lr)
            images = istft(fit.images(X), cfg, length=mix.shape[-1])[0].detach()  # [N, M, S]
            seconds += time.perf_counter() - start
            duration += mix.shape[-1] / cfg.sample_rate
            scores = score_mixture(
                item["sources"], images[:-1], mix, cfg.sample_rate, metrics=("sdr", "si-sdr")
            )
            for c in columns:
                values[c] += scores.values[c].tolist()
        rows[label] = {c: float(np.nanmean(v)) for c, v in values.items()}
        rows[label]["rtf"] = seconds / duration
    print(f"Model {args.model} ({model.config.spatial}), {args.n_mix} mixtures of {args.manifest}")
    print("\n| inference | " + " | ".join(columns) + " | RTF |")
    print("|---|" + "---|" * (len(columns) + 1))
    for label, r in rows.items():
        print(f"| {label} | " + " | ".join(f"{r[c]:.2f}" for c in columns) + f" | {r['rtf']:.3f} |")


def bench_amortised(args) -> None:
    import vae_audio
    from vae_audio.audio.io import load_audio
    from vae_audio.audio.stft import istft, stft
    from vae_audio.neural_fca import load_neural_fca
    from vae_audio.neural_fca.export import trace_separator
    from vae_audio.neural_fca.inference import fit_neural_fca
    from vae_audio.neural_fca.iss import jd_spatial_updates
    from vae_audio.separation import separate
    from vae_audio.separation.wiener import wiener_jd

    model = load_neural_fca(args.model) if args.model else vae_audio.pretrained("neural-fca")
    model.eval()
    cfg = model.stft_config
    length = round(args.seconds * cfg.sample_rate)
    if args.mix is None:
        M = model.n_mics or 4
        g = torch.Generator().manual_seed(0)
        wav = 0.05 * torch.randn(1, M, length, generator=g)
    else:
        mix, sr = load_audio(args.mix)
        if sr != cfg.sample_rate or mix.shape[-1] < length:
            raise SystemExit(f"{args.mix}: need at least {args.seconds} s at {cfg.sample_rate} Hz")
        wav = mix[None, :, :length]

    faults: dict[int, float] = {}  # id(fn) -> median minor page faults per run

    def median_ms(fn) -> float:
        fn()  # warm-up
        times, counts = [], []
        for _ in range(args.repeats):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
            counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        faults[id(fn)] = statistics.median(counts)
        return 1e3 * statistics.median(times)

    with torch.no_grad():
        X = stft(wav, cfg)
        xn, _ = model.normalise(X)
        enc = model.encode(xn)
        lam = model.psd(enc.posterior.mean * model.latent_mask[:, None], enc.log_gain,
                        enc.log_freq_gain)  # fmt: skip
        xf = xn.transpose(1, 2)
        n_jd = model.config.jd_iterations
        fit = fit_neural_fca(X, model)
        eps = fit.eps[:, None].expand(-1, X.shape[2])
        images = fit.images(X)
        stages = {
            "STFT": lambda: stft(wav, cfg),
            "encoder": lambda: model.encode(xn),
            "decoder (PSDs)": lambda: model.psd(
                enc.posterior.mean, enc.log_gain, enc.log_freq_gain
            ),  # fmt: skip
            f"JD updates ({n_jd})": lambda: jd_spatial_updates(
                xf, lam, enc.Q, enc.g, model.config.eps, n_jd, ordered=model.mic_equivariant
            ),
            "Wiener filter": lambda: wiener_jd(X, fit.lam, fit.g, fit.Q, eps),
            "inverse STFT": lambda: istft(images, cfg, length=length),
        }
        ms = {name: median_ms(fn) for name, fn in stages.items()}
        stage_faults = {name: faults[id(fn)] for name, fn in stages.items()}
        traced = trace_separator(model, wav.shape[1])

        def run_separate():
            return separate(wav[0], "neural-fastfca", sr=cfg.sample_rate, model=model, n_iter=0)

        def run_traced():
            return traced(wav)

        total = median_ms(run_separate)
        exported = median_ms(run_traced)
    print(
        f"Amortised inference, {wav.shape[1]} mics x {args.seconds} s, "
        f"{torch.get_num_threads()} thread(s), median of {args.repeats} (ms; minor page "
        "faults per run):\n"
    )
    print("| stage | ms | share of the stages | page faults |")
    print("|---|---:|---:|---:|")
    stage_sum = sum(ms.values())
    for name, value in ms.items():
        print(
            f"| {name} | {value:.1f} | {100 * value / stage_sum:.0f} % | {stage_faults[name]:.0f} |"
        )
    print(f"| sum of the stages | {stage_sum:.1f} | | |")
    for name, value, fn in (("`separate(..., n_iter=0)`", total, run_separate),
                            ("TorchScript export", exported, run_traced)):  # fmt: skip
        print(f"| {name} | {value:.1f} | RTF {value / 1e3 / args.seconds:.4f} | "
              f"{faults[id(fn)]:.0f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("step", help="training-step cost, Neural FCA vs Neural FastFCA")
    p.add_argument("--preset", choices=sorted(ENCODERS), default="cpu")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--mics", type=int, default=4)
    p.add_argument("--em-iterations", type=int, default=5)
    p.add_argument("--jd-iterations", type=int, default=0, help="MM updates after the JD encoder")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    s = sub.add_parser("separate", help="amortised vs refined separation of a trained model")
    s.add_argument("--model", required=True)
    s.add_argument("--manifest", required=True)
    s.add_argument("--n-mix", type=int, default=10)
    s.add_argument("--n-iter", type=int, default=200)
    s.add_argument("--lr", type=float, default=0.2)
    s.add_argument("--threads", type=int, default=1)
    a = sub.add_parser("amortised", help="where the time of amortised inference goes")
    a.add_argument("--model", default=None, help="a model.pt (default: the shipped model)")
    a.add_argument("--mix", default=None, help="a multichannel WAV (default: white noise)")
    a.add_argument("--seconds", type=float, default=10.0)
    a.add_argument("--repeats", type=int, default=9)
    a.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    {"step": bench_step, "separate": bench_separate, "amortised": bench_amortised}[args.what](args)


if __name__ == "__main__":
    main()

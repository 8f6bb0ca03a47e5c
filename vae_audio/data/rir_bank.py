"""A cached bank of simulated rooms for dynamic mixing (``vae-audio rir-bank``).

Entry ``r`` is one room drawn with ``numpy.random.default_rng([seed, r])`` from a preset:
RIRs of ``N`` talker positions (the preset's largest talker count) and ``K`` noise
positions to the ``M`` microphones. Banks are saved with ``torch.save`` as a dict of tensors
and plain values, loadable with ``torch.load(weights_only=True)``. RIRs are stored as
float16 (about 1e-3 relative error per tap, i.e. ~-60 dB) and zero-padded to the bank's
longest RIR; a bank of R rooms takes about ``2 R (N + K) M L`` bytes (R=200, N=2, K=8,
M=4, L=10 000: 160 MB), so pass ``noise_sources`` (e.g. 8) for a compact bank.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vae_audio.data.build_state import worker_map
from vae_audio.data.presets import SimulationPreset, load_preset
from vae_audio.data.rirs import sample_rirs
from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write

_FORMAT = "vae_audio.rir_bank.v1"


@dataclass
class RirBank:
    """``rirs [R, N, M, L]`` and ``noise_rirs [R, K, M, L]`` (float16), ``n_noise [R]`` (rows
    of ``noise_rirs`` beyond it are zero), ``rt60 [R]`` seconds, and the generating preset."""

    rirs: torch.Tensor
    noise_rirs: torch.Tensor
    n_noise: torch.Tensor
    rt60: torch.Tensor
    sample_rate: int
    preset: dict
    seed: int

    def __len__(self) -> int:
        return self.rirs.shape[0]

    def save(self, path: str | Path) -> Path:
        path = Path(path).expanduser()
        state = {
            "format": _FORMAT,
            "rirs": self.rirs,
            "noise_rirs": self.noise_rirs,
            "n_noise": self.n_noise,
            "rt60": self.rt60,
            "sample_rate": self.sample_rate,
            "preset": self.preset,
            "seed": self.seed,
        }
        with atomic_write(path) as tmp:
            torch.save(state, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> RirBank:
        path = Path(path).expanduser()
        if not path.is_file():
            raise VaeAudioError(
                f"RIR bank '{path}' does not exist; build it with "
                "`vae-audio rir-bank --preset default --n 200 OUT.pt`"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt file or not a torch file
            raise VaeAudioError(
                f"'{path}' is not a readable RIR bank ({exc}); rebuild it with `vae-audio rir-bank`"
            ) from exc
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise VaeAudioError(
                f"'{path}' is not an RIR bank made by `vae-audio rir-bank`; rebuild it"
            )
        return cls(**{k: v for k, v in state.items() if k != "format"})


def _one_room(job: tuple[dict, int, int, int | None]) -> tuple[np.ndarray, np.ndarray, float]:
    preset_dict, seed, index, noise_sources = job
    preset = load_preset(preset_dict)
    rng = np.random.default_rng([seed, index])
    rir = sample_rirs(preset, rng, n_speakers=preset.speakers.count[1], n_noise=noise_sources)
    return rir.rirs.astype(np.float16), rir.noise_rirs.astype(np.float16), rir.scene.rt60


def build_rir_bank(
    preset: str | Path | SimulationPreset,
    n: int,
    *,
    seed: int = 0,
    jobs: int = 1,
    noise_sources: int | None = None,
    progress: bool = True,
) -> RirBank:
    """Simulate ``n`` rooms; ``noise_sources`` fixes K (default: drawn from the preset)."""
    preset = load_preset(preset)
    if n < 1 or jobs < 1:
        raise VaeAudioError(f"--n and --jobs must be at least 1, got n={n}, jobs={jobs}")
    if noise_sources is not None and preset.noise.kind == "none":
        noise_sources = 0
    work = [(preset.to_dict(), seed, i, noise_sources) for i in range(n)]
    with worker_map(jobs) as pmap:
        bar = tqdm(
            pmap(_one_room, work), total=n, desc="rir bank", unit="room", disable=not progress
        )
        results = list(bar)
    n_spk, n_mics = results[0][0].shape[:2]
    k_max = max(r[1].shape[0] for r in results)
    length = max(max(r[0].shape[-1], r[1].shape[-1]) for r in results)
    rirs = torch.zeros(n, n_spk, n_mics, length, dtype=torch.float16)  # [R, N, M, L]
    noise = torch.zeros(n, k_max, n_mics, length, dtype=torch.float16)  # [R, K, M, L]
    for i, (r, nr, _) in enumerate(results):
        rirs[i, :, :, : r.shape[-1]] = torch.from_numpy(r)
        noise[i, : nr.shape[0], :, : nr.shape[-1]] = torch.from_numpy(nr)
    return RirBank(
        rirs=rirs,
        noise_rirs=noise,
        n_noise=torch.tensor([r[1].shape[0] for r in results], dtype=torch.int64),
        rt60=torch.tensor([r[2] for r in results], dtype=torch.float32),
        sample_rate=preset.sample_rate,
        preset=preset.to_dict(),
        seed=seed,
    )

"""How much memory a separation will take, and how much there is, so that a long input is
chunked (or refused with the ``--chunk`` to use) before it runs out of memory.

**Estimate.** The peak of one fit grows with the number of time-frequency bins ``F·T`` of
the STFT times a per-bin cost that depends on the spatial model:

* full-rank SCMs (FCA, MNMF, VAE-FCA, Neural FCA) hold several ``[F, T, M, M]`` complex
  tensors (model covariance, its inverse, the posterior statistics): ``c + k·M²`` bytes;
* jointly diagonalised SCMs (FastMNMF, FastMNMF2, VAE-FastFCA, Neural FastFCA) hold
  ``[F, 2M², T]`` real outer products for the IP update and ``[N, M, F, T]`` images:
  ``c + k·(M² + 2M·N)``;
* single-channel VAE-NMF: ``c`` (latents, NMF and the Wiener filter per bin).

The constants are upper envelopes of the peak resident-set growth measured with
:class:`vae_audio.bench.memory.PeakMemory` on 10- and 20-s inputs with 2, 4 and 8 mics and
2-3 talkers, float32 on the CPU (e.g. FastMNMF2, 4 mics, 2 talkers: 490-580 B/bin measured,
780 estimated; FCA, 8 mics: 4.8 kB/bin measured, 5.4 kB estimated). They include the
waveform in and out of :func:`~vae_audio.separation.separate`. The same run's peak varies by
up to a quarter from one process to the next (allocator arenas, BLAS work space: FCA with
4 mics measured 333-425 MiB on one 8-s input), so the estimate is the envelope times
``MARGIN`` = 1.5. float64 doubles it. A test checks that the estimate bounds the measured
peak, and not by more than a few times.

**Available.** On the CPU, the smallest of ``MemAvailable`` (``/proc/meminfo``), the cgroup's
``memory.max`` minus its ``memory.current`` (v2) or ``limit - usage`` (v1), and the
address-space limit ``RLIMIT_AS`` minus the process's ``VmSize``; on CUDA,
``torch.cuda.mem_get_info``'s free bytes. ``None`` where nothing can be read.
"""

from __future__ import annotations

import math
import resource
from pathlib import Path

import torch

# method -> (family, c, k): bytes per time-frequency bin at float32 (module docstring)
_COSTS: dict[str, tuple[str, float, float]] = {
    "fca": ("full", 400, 80),
    "mnmf": ("full", 400, 80),
    "vae-fca": ("full", 600, 80),
    "neural-fca": ("full", 700, 80),
    "fastmnmf": ("jd", 300, 12),
    "fastmnmf2": ("jd", 300, 12),
    "vae-fastfca": ("jd", 500, 12),
    "neural-fastfca": ("jd", 600, 12),
    "vae-nmf": ("single", 600, 0),
}
_UNKNOWN = ("full", 700, 80)  # a method registered elsewhere: the costliest family
MARGIN = 1.5  # over the measured envelope, for the run-to-run spread of the peak


def bytes_per_bin(method: str, channels: int, n_slots: int, dtype=torch.float32) -> float:
    """Estimated peak bytes per time-frequency bin of one fit (module docstring)."""
    family, c, k = _COSTS.get(method, _UNKNOWN)
    M = channels
    if family == "full":
        cost = c + k * M * M
    elif family == "jd":
        cost = c + k * (M * M + 2 * M * n_slots)
    else:
        cost = c
    return MARGIN * cost * (2 if dtype == torch.float64 else 1)


def fit_bytes(
    method: str, channels: int, n_slots: int, samples: int, hop: int, n_fft: int, batch: int = 1
) -> int:
    """Estimated peak bytes of separating ``batch`` inputs of ``samples`` samples."""
    frames = samples // hop + 1
    return math.ceil(bytes_per_bin(method, channels, n_slots) * (n_fft // 2 + 1) * frames * batch)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def proc_kib(path: str | Path, key: str) -> int | None:
    """The ``key:`` field of a ``/proc`` table (``/proc/meminfo``, ``/proc/self/status``) in
    KiB, or None when it cannot be read."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _proc_bytes(path: str, key: str) -> int | None:
    kib = proc_kib(path, key)
    return None if kib is None else kib * 1024


def _cgroup_free() -> int | None:
    root = Path("/sys/fs/cgroup")
    limit, used = _read_int(root / "memory.max"), _read_int(root / "memory.current")
    if limit is None:  # cgroup v1 (or v2 with "max": no limit)
        limit = _read_int(root / "memory" / "memory.limit_in_bytes")
        used = _read_int(root / "memory" / "memory.usage_in_bytes")
        if limit is not None and limit >= 1 << 60:  # v1's "unlimited"
            return None
    return None if limit is None or used is None else max(limit - used, 0)


def available_bytes(device: torch.device | str = "cpu") -> int | None:
    """Bytes this process can still allocate on ``device`` (module docstring), or None."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    found = [_proc_bytes("/proc/meminfo", "MemAvailable"), _cgroup_free()]
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        size = _proc_bytes("/proc/self/status", "VmSize")
        found.append(max(soft - size, 0) if size is not None else None)
    found = [b for b in found if b is not None]
    return min(found) if found else None

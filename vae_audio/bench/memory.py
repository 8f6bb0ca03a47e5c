"""Peak memory of one separation, measured inside the process that runs it.

**Host memory** (``rss_mb``): the growth of the process's peak resident set size during the
block over its resident size at the start, in MiB (2^20 bytes). It counts everything the
separation touched (NumPy, torch CPU tensors, BLAS work space, pyroomacoustics temporaries),
unlike ``tracemalloc`` (which misses torch's allocator). Before the block the garbage
collector runs and glibc's ``malloc_trim`` hands freed heap pages back to the kernel, so the
memory that earlier runs in the same worker left cached is not reused invisibly; then the
kernel's high-water mark is reset (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0) and read
back afterwards (``VmHWM`` minus ``VmRSS`` of ``/proc/self/status``). Where that interface is
missing (not Linux, or a sandbox forbids it) the fallback is the growth of
``resource.getrusage().ru_maxrss``, a lifetime peak: then a run that stays below an earlier
peak reads 0, so the number is a lower bound (``how`` says which measure was used). Code and
libraries loaded for the first time inside the block count too, which is why the benchmark
imports them before timing anything.

**GPU memory** (``cuda_mb``, only for runs on a CUDA device): ``torch.cuda.max_memory_allocated``
after ``reset_peak_memory_stats``, minus the memory allocated at the start: the tensors the
run itself allocated through torch's caching allocator (not the CUDA context or cached blocks).
"""

from __future__ import annotations

import ctypes
import gc
import math
import resource
import sys
from pathlib import Path

import torch

from vae_audio.separation.memory import proc_kib

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(key: str) -> int | None:
    return proc_kib(_STATUS, key)


def _reset_high_water_mark() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def _malloc_trim() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _maxrss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


class PeakMemory:
    """``with PeakMemory(device) as mem: ...`` then ``mem.rss_mb``, ``mem.cuda_mb`` (NaN off
    CUDA) and ``mem.how`` (``"vmhwm"`` or ``"ru_maxrss"``); see the module docstring."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.rss_mb = math.nan
        self.cuda_mb = math.nan
        self.how = ""

    def __enter__(self) -> PeakMemory:
        gc.collect()
        _malloc_trim()
        if _reset_high_water_mark():
            self.how, self._start = "vmhwm", _status_kib("VmRSS")
        else:
            self.how, self._start = "ru_maxrss", _maxrss_kib()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._cuda_start = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) - self._cuda_start
            self.cuda_mb = peak / 2**20
        end = _status_kib("VmHWM") if self.how == "vmhwm" else _maxrss_kib()
        if end is not None and self._start is not None:
            self.rss_mb = max(end - self._start, 0) / 1024

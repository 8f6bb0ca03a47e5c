"""Benchmarks: our separators side by side with pyroomacoustics peers, oracle ceilings and
the unprocessed mixture on a simulated set, scored by :mod:`vae_audio.eval`.

Names are imported on first use so that `vae-audio --help` (which registers the ``bench``
subcommand from :mod:`vae_audio.bench.cli`) does not load torch, mir_eval or pyroomacoustics.
"""

import importlib

_EXPORTS = {
    "PeakMemory": "memory",
    "available_methods": "methods",
    "candidates": "methods",
    "load_mixture": "methods",
    "resolve_methods": "methods",
    "oracle_irm": "oracles",
    "oracle_mwf": "oracles",
    "oracle_parameters": "oracles",
    "PEERS": "peers",
    "projection_back_images": "peers",
    "run_peer": "peers",
    "plot_bars": "report",
    "summarise": "report",
    "summary_table": "report",
    "write_outputs": "report",
    "BenchResult": "runner",
    "BenchSettings": "runner",
    "run_bench": "runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vae_audio.bench' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vae_audio.bench.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

"""User-facing applications on top of the library: ``vae-audio separate`` (any registered
method on files, folders or manifests, batched, resumable, shardable over ranks) and
``vae-audio demo`` (simulate, separate and score one mixture from bundled utterances).

Importing this package is cheap; the heavy modules load when a command runs.
"""

import importlib

_EXPORTS = {
    "JobSummary": "vae_audio.apps.separate",
    "separate_files": "vae_audio.apps.separate",
    "run_demo": "vae_audio.apps.demo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vae_audio.apps' has no attribute '{name}'")

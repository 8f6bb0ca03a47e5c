"""Resumable, reproducible builds: settings records and worker processes.

An output folder remembers the settings it was built with.

A builder (TTS corpus, simulated set, RIR bank) writes ``OUT/<name>.json`` with its settings
before producing files. Rebuilding into the same folder with the same settings skips the
files that are already finished (every file is written atomically, so a file that exists is
complete): an interrupted build resumes, and ``--hours`` / ``--n`` can grow an existing
build because item ``i`` depends only on the seed and ``i``. Different settings are refused.

Workers (:func:`worker_map`) run torch and pyroomacoustics on one thread each, in-process
too, so floating-point results do not depend on ``jobs`` or on the machine's core count.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
from collections.abc import Callable, Iterator
from pathlib import Path

import pyroomacoustics as pra
import torch

from vae_audio.errors import VaeAudioError
from vae_audio.fileio import atomic_write_text


def claim_output_folder(out: Path, name: str, settings: dict, *, grow_keys=()) -> None:
    """Create ``out`` or check that it was built with ``settings``; record them.

    Keys in ``grow_keys`` (the amount to build) may differ from the recorded value.
    """
    out.mkdir(parents=True, exist_ok=True)
    record = out / f"{name}.json"
    settings = json.loads(json.dumps(settings))  # normalise tuples -> lists etc.
    if record.exists():
        try:
            old = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise VaeAudioError(
                f"'{record}' is unreadable ({exc}); delete the folder '{out}' or choose "
                "another output folder"
            ) from exc
        diff = sorted(
            k
            for k in set(old) | set(settings)
            if k not in grow_keys and old.get(k) != settings.get(k)
        )
        if diff:
            raise VaeAudioError(
                f"'{out}' was built with different settings ({', '.join(diff)} differ, see "
                f"'{record}'); choose a new output folder or repeat the original settings "
                "to resume or grow it"
            )
    else:
        extra = [p.name for p in out.iterdir() if not p.name.startswith(".")]
        if extra:
            raise VaeAudioError(
                f"output folder '{out}' is not empty and was not made by this command; "
                "choose a new or empty folder"
            )
    atomic_write_text(record, json.dumps(settings, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch and pyroomacoustics on one thread inside the block, then restore."""
    old_torch, old_pra = torch.get_num_threads(), pra.constants.get("num_threads")
    torch.set_num_threads(1)
    pra.constants.set("num_threads", 1)
    try:
        yield
    finally:
        torch.set_num_threads(old_torch)
        pra.constants.set("num_threads", old_pra)


def _worker_init(initializer: Callable | None, initargs: tuple) -> None:
    torch.set_num_threads(1)
    pra.constants.set("num_threads", 1)
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def worker_map(
    jobs: int, initializer: Callable | None = None, initargs: tuple = ()
) -> Iterator[Callable]:
    """Yield an ordered, lazy ``map(fn, items)``: in-process for ``jobs == 1``, else over a
    pool of ``jobs`` spawned processes (``fn`` and ``initializer`` must be module-level)."""
    if jobs == 1:
        with single_threaded():
            _worker_init(initializer, initargs)
            yield map
        return
    pool = multiprocessing.get_context("spawn").Pool(
        jobs, initializer=_worker_init, initargs=(initializer, initargs)
    )
    try:
        yield pool.imap
    finally:
        pool.terminate()

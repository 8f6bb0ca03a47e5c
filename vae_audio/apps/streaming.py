"""Long inputs of ``vae-audio separate``: memory planning and chunk-by-chunk streaming.

**Planning** (:func:`plan_chunks`). Before an input is fitted, the memory its separation
needs is estimated (:mod:`vae_audio.separation.memory`) and compared with what the process
can still allocate, keeping 30 % spare. An input that fits runs whole, unless ``--chunk``
asks otherwise. One that does not is separated in chunks of the longest length that fits
(whole seconds, with a note saying so); a ``--chunk`` whose chunks would not fit, or an input
for which even 2-s chunks would not, fails with the ``--chunk`` value to use, and the job's
other inputs go on.

**Streaming** (:func:`separate_streaming`). A chunked input is read block by block
(:class:`BlockReader`: ``soundfile`` seeks, resampling each block with enough context that
its samples equal those of resampling the whole file, up to float rounding), each chunk is
separated on its own, the chunks are joined as they come
(:class:`vae_audio.separation.chunking.ChunkJoiner`) and written block by block
(:class:`vae_audio.apps.outputs.StreamingOutputs`). So memory holds one chunk's fit and
waveforms, whatever the length of the recording. The outputs equal those of
``separate(x, chunk_seconds=...)`` on the whole waveform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from vae_audio.errors import VaeAudioError

SPARE = 0.3  # share of the available memory left free
MIN_CHUNK_S = 2.0


@dataclass(frozen=True)
class ChunkPlan:
    """How one input is separated: ``chunk_s`` None (whole) or seconds, and a ``note``."""

    chunk_s: float | None
    note: str = ""


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB"


def plan_chunks(item, plan, chunk: float | None, available: int | None) -> ChunkPlan:
    """Whole or in chunks, for ``item`` under ``plan`` (module docstring, "Planning")."""
    from vae_audio.separation.memory import fit_bytes

    sr = plan.sample_rate or item.sample_rate
    stft = plan.stft_for(sr)
    slots = plan.n_src + 1

    def need(seconds: float) -> int:
        samples = math.ceil(seconds * sr)
        return fit_bytes(plan.method, item.channels, slots, samples, stft.hop_length, stft.n_fft)

    duration = item.frames / item.sample_rate
    if available is None:
        return ChunkPlan(chunk)
    budget = available * (1 - SPARE)
    per_s = need(10.0) / 10.0
    longest = math.floor(budget / (1.5 * per_s))  # a merged last chunk is 1.5x as long
    if chunk is not None:
        if need(min(1.5 * chunk, duration)) <= budget:
            return ChunkPlan(chunk)
        fix = f"pass --chunk {longest}" if longest >= MIN_CHUNK_S else _no_fit_fix()
        raise VaeAudioError(
            f"'{item.path}': chunks of {chunk:g} s with {plan.method} need about "
            f"{_gb(need(1.5 * chunk))}, {_gb(available)} available; {fix}"
        )
    whole = need(duration)
    if whole <= budget:
        return ChunkPlan(None)
    if longest < MIN_CHUNK_S:
        raise VaeAudioError(
            f"'{item.path}': {plan.method} needs about {_gb(need(1.5 * MIN_CHUNK_S))} even in "
            f"{MIN_CHUNK_S:g}-s chunks, {_gb(available)} available; {_no_fit_fix()}"
        )
    return ChunkPlan(
        float(longest),
        f"'{item.path}' ({duration:.0f} s, {item.channels} channels) would need about "
        f"{_gb(whole)} with {plan.method}, {_gb(available)} available; separating it in "
        f"{longest}-s chunks (choose with --chunk)",
    )


def _no_fit_fix() -> str:
    return "free memory, use fewer channels or a method with a lighter spatial model (fastmnmf2)"


class BlockReader:
    """Samples ``[start, end)`` at ``sr`` Hz of an audio file of rate ``file_sr``, read with
    ``soundfile`` seeks (module docstring, "Streaming"); ``[M, end - start]`` float32."""

    def __init__(self, path: Path, file_sr: int, sr: int, frames: int) -> None:
        self.path, self.file_sr, self.sr, self.frames = path, file_sr, sr, frames
        g = math.gcd(file_sr, sr)
        self.orig, self.new = file_sr // g, sr // g
        # windowed-sinc context of torchaudio's resampler (6 zero crossings), in output samples
        self.pad = 0 if file_sr == sr else 64 + 16 * math.ceil(self.orig / self.new)
        self.length = math.ceil(frames * self.new / self.orig)  # resampled length

    def _read(self, start: int, stop: int) -> torch.Tensor:
        import numpy as np
        import soundfile as sf

        with sf.SoundFile(self.path) as fh:
            fh.seek(start)
            data = fh.read(stop - start, dtype="float32", always_2d=True)  # [L, M]
        if not np.isfinite(data).all():
            raise VaeAudioError(
                f"audio file '{self.path}' contains {int((~np.isfinite(data)).sum())} NaN/Inf "
                "samples; re-export it or fix the program that wrote it"
            )
        return torch.from_numpy(np.ascontiguousarray(data.T))

    def read(self, start: int, end: int) -> torch.Tensor:
        if self.file_sr == self.sr:
            return self._read(start, end)
        import torchaudio.functional as AF

        a = max(start - self.pad, 0) // self.new * self.new  # block start on the rate grid
        b = -(-min(end + self.pad, self.length) // self.new) * self.new
        first, last = a // self.new * self.orig, min(b // self.new * self.orig, self.frames)
        wav = AF.resample(self._read(first, last), self.file_sr, self.sr)
        return wav[:, start - a : end - a]

    def check(self, block_s: float = 60.0) -> None:
        """Read the whole file block by block, raising on NaN/Inf samples."""
        step = max(int(block_s * self.file_sr), 1)
        for start in range(0, self.frames, step):
            self._read(start, min(start + step, self.frames))


def separate_streaming(
    item, plan, target, chunk_s: float, overlap_s: float, *, device, iters, seed,
    record: dict, protect, plot: bool = False, wpe: bool = False, starts: int = 1,
) -> None:  # fmt: skip
    """Separate ``item`` chunk by chunk into ``target`` (an output folder, or
    :class:`~vae_audio.apps.outputs.OutputPaths`; module docstring, "Streaming")."""
    from vae_audio.apps.outputs import StreamingOutputs, as_output_paths
    from vae_audio.separation import separate
    from vae_audio.separation.chunking import ChunkJoiner, ChunkOutput, chunk_bounds

    target = as_output_paths(target)

    sr = plan.sample_rate or item.sample_rate
    stft = plan.stft_for(sr)
    reader = BlockReader(item.path, item.sample_rate, sr, item.frames)
    bounds = chunk_bounds(reader.length, round(chunk_s * sr), round(overlap_s * sr))
    joiner = ChunkJoiner(bounds)
    writer = None
    timings: dict[str, float] = {}
    settings: dict = {}
    try:
        for i, (start, end) in enumerate(bounds):
            res = separate(
                reader.read(start, end), method=plan.method, n_src=plan.n_src, sr=sr,
                stft=stft, n_iter=plan.iterations(iters), device=device, seed=seed,
                wpe=wpe, starts=starts, blend=plan.blend_entries(sr), refit=plan.refit_entry(),
                **dict(plan.opts),
            )  # fmt: skip
            noise = None if res.noise is None else res.noise[None].cpu()
            out = ChunkOutput(res.sources[None].cpu(), noise, res.objective[None])
            if writer is None:
                writer = StreamingOutputs(
                    target, res.sources.shape[0], noise is not None, sr, item.channels,
                    protect=protect, source=str(item.path),
                )  # fmt: skip
                settings = dict(res.settings)
            _, speakers, noise = joiner.push(i, out)
            writer.write(speakers[0], None if noise is None else noise[0])
            for key, value in res.timings.items():
                timings[key] = timings.get(key, 0.0) + value
        settings.update(chunk_seconds=chunk_s, overlap_seconds=overlap_s, streamed=True)
        writer.finish({**record, "settings": settings, "timings_s": timings})
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if plot:
        _plot_head(target, reader, stft, protect)


def _plot_head(target, reader: BlockReader, stft, protect, seconds: float = 30.0) -> None:
    """``spectrogram.png`` of the first ``seconds`` of the mixture and every output."""
    import json

    import soundfile as sf

    from vae_audio.apps.outputs import PLOT, plot_spectrograms, write_record

    n = min(reader.length, int(seconds * reader.sr))
    rows = [(f"mixture (mic 0, first {n / reader.sr:.0f} s)", reader.read(0, n)[0])]
    marker = target.marker
    record = json.loads(marker.read_text(encoding="utf-8"))
    for name in record["files"]:
        head, _ = sf.read(marker.parent / name, frames=n, dtype="float32", always_2d=True)
        rows.append((f"{target.label(name)} (mic 0)", torch.from_numpy(head[:, 0].copy())))
    plot = plot_spectrograms(target.file(PLOT), rows, stft, protect=protect)
    listed = [marker.parent / name for name in record.pop("files")]
    write_record(target, record, [*listed, plot], protect=protect)

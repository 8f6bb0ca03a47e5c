"""Chunked separation of long recordings with bounded memory.

The waveform is cut into overlapping chunks, each chunk is separated on its own (its own
STFT, fit and Wiener filter), the speaker order of every chunk is aligned to the previous
chunk's, and the chunks are cross-faded (linear ramps over the overlap, weights summing
to one) into the output. Only the input and output waveforms grow with the length; the
model's tensors are those of one chunk.

**Alignment.** In the overlap both chunks estimate the same source images, so slot ``p``
of the previous chunk and slot ``q`` of the current one are matched by the normalised
correlation ``|⟨c_p, c_q⟩| / (‖c_p‖ ‖c_q‖)`` of their multichannel images over the overlap
(inner product over mics and samples; it compares waveform and spatial image at once),
maximised over permutations with the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``), per batch item. The noise image is not
permuted. Chunks never overlap more than pairwise (``overlap <= chunk / 2``).

**Memory bound** (10-minute, 4-mic file at 16 kHz; ``chunk_seconds=10``, ``n_fft=512``,
``hop=128``, 2 speakers + noise slot, complex64). One chunk has ``T = 1251`` frames,
``F = 257``, ``F·T = 321 507`` bins (the last chunk may be up to 1.5 chunks long). Per-chunk
tensors: mixture STFT ``[M, F, T]`` 10.3 MB; FastMNMF2: ``x xᴴ`` coordinates for IP
``[F, 2M², T]`` float32 41 MB, ``x̃``, ``ŷ`` and temporaries ``[F, M, T]`` 5.1 MB each, PSDs
and statistics ``[N, F, T]`` 3.9 MB each, images ``[N, M, F, T]`` 31 MB; FCA/MNMF: ``Y``,
``Y⁻¹``, ``P = Y⁻¹xxᴴY⁻¹`` as packed planes ``[F, M², T]`` float32 21 MB each
(:mod:`~vae_audio.separation.packed`) plus the inverse's temporaries. Measured peak RSS
growth of one such chunk (fit + Wiener filter, CPU): FastMNMF2 175 MB, MNMF/FCA 400 MB
(measured when the FCA moments were dense ``[F, T, M, M]`` complex64 tensors, twice the size);
so at most 1.5x that per chunk, whatever the file length. What grows with the length is only
the waveform I/O: input ``[M, S]`` float32 154 MB and output speakers + noise ``[N, M, S]``
461 MB for this file. Unchunked, each FCA ``[F, M², T]`` tensor of the whole file would be
1.2 GB.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from scipy.optimize import linear_sum_assignment

from vae_audio.errors import VaeAudioError


@dataclass
class ChunkOutput:
    """What a per-chunk separator returns: ``speakers [B, N, M, S_c]``, ``noise [B, M, S_c]``
    or None, and ``objective [B, I + 1]``."""

    speakers: torch.Tensor
    noise: torch.Tensor | None
    objective: torch.Tensor


@dataclass
class ChunkedOutput:
    """Chunked result: ``speakers [B, N, M, S]``, ``noise [B, M, S]`` or None,
    ``objective [B, C, I + 1]`` (C chunks) and the chunk ``bounds`` (start, end) in samples."""

    speakers: torch.Tensor
    noise: torch.Tensor | None
    objective: torch.Tensor
    bounds: list[tuple[int, int]]


def chunk_bounds(num_samples: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """``(start, end)`` samples of chunks of ``chunk`` samples every ``chunk - overlap``
    samples; a last chunk shorter than ``chunk / 2`` is merged into the one before (so
    chunks have at most 1.5 ``chunk`` samples). One chunk if the input fits."""
    if not 0 <= 2 * overlap <= chunk:
        raise VaeAudioError(
            f"overlap of {overlap} samples must be between 0 and half the chunk ({chunk} "
            "samples); use a larger chunk_seconds or a smaller overlap"
        )
    hop = chunk - overlap
    bounds = [(0, min(chunk, num_samples))]
    while bounds[-1][1] < num_samples:
        start = bounds[-1][0] + hop
        end = min(start + chunk, num_samples)
        if end - start < chunk / 2 and end == num_samples:
            bounds[-1] = (bounds[-1][0], num_samples)
        else:
            bounds.append((start, end))
    return bounds


def align_to_previous(prev: torch.Tensor, cur: torch.Tensor) -> list[list[int]]:
    """Permutations ``perm[b]`` such that ``cur[b, perm[b][p]]`` matches ``prev[b, p]``.

    ``prev``, ``cur`` ``[B, N, M, O]``: the two chunks' images over the overlap.
    """
    B, N = prev.shape[:2]
    a = prev.reshape(B, N, -1)  # [B, N, M·O]
    b = cur.reshape(B, N, -1)
    corr = (a @ b.mT).abs()  # [B, N, N]
    norm = a.norm(dim=-1)[:, :, None] * b.norm(dim=-1)[:, None, :]  # [B, N, N]
    sim = (corr / norm.clamp_min(torch.finfo(norm.dtype).tiny)).cpu().numpy()
    return [linear_sum_assignment(-s)[1].tolist() for s in sim]


class ChunkJoiner:
    """Joins separated chunks into the output as they come, for streaming.

    ``push(i, out)`` takes chunk ``i`` of ``bounds`` (in order) and returns
    ``(start, speakers [B, N, M, L], noise [B, M, L] or None)``: the output samples
    ``[start, start + L)`` that no later chunk touches any more, i.e. up to where chunk
    ``i + 1`` begins (everything, for the last chunk). The part that overlaps the next chunk
    is kept, weighted by its fade-out, until that chunk arrives. Each output sample is thus
    computed exactly as in :func:`separate_in_chunks`, which joins through this class.
    """

    def __init__(self, bounds: list[tuple[int, int]]) -> None:
        self.bounds = bounds
        self.next = 0
        self.tail = self.tail_noise = None  # previous chunk's weighted overlap
        self.prev_tail = None  # previous chunk's aligned, unweighted overlap (for alignment)

    def push(self, i: int, out: ChunkOutput):
        if i != self.next:
            raise VaeAudioError(f"chunk {i} pushed, chunk {self.next} expected; push in order")
        self.next += 1
        start, end = self.bounds[i]
        spk = out.speakers  # [B, N, M, S_c]
        B = spk.shape[0]
        w = torch.ones(end - start, dtype=spk.dtype, device=spk.device)  # [S_c] cross-fade
        ov = self.bounds[i - 1][1] - start if i > 0 else 0  # overlap with the previous chunk
        if ov > 0:
            index = torch.tensor(
                align_to_previous(self.prev_tail, spk[..., :ov]), device=spk.device
            )
            spk = spk[torch.arange(B, device=spk.device)[:, None], index]  # [B, N, M, S_c]
            w[:ov] = _ramp(ov, w)
        ov_next = end - self.bounds[i + 1][0] if i + 1 < len(self.bounds) else 0
        if ov_next > 0:
            w[-ov_next:] = 1 - _ramp(ov_next, w)
        speakers = w * spk
        noise = None if out.noise is None else w * out.noise
        if ov > 0:
            speakers[..., :ov] += self.tail
            if noise is not None:
                noise[..., :ov] += self.tail_noise
        cut = end - start - ov_next
        self.prev_tail = spk[..., cut:]  # [B, N, M, ov_next]
        self.tail = speakers[..., cut:]
        self.tail_noise = None if noise is None else noise[..., cut:]
        return start, speakers[..., :cut], None if noise is None else noise[..., :cut]


def separate_in_chunks(
    mixture: torch.Tensor,
    separate_chunk: Callable[[torch.Tensor], ChunkOutput],
    chunk: int,
    overlap: int,
) -> ChunkedOutput:
    """Run ``separate_chunk`` on overlapping chunks of ``mixture [B, M, S]`` and join them
    (:class:`ChunkJoiner`).

    ``chunk``/``overlap`` in samples (see :func:`chunk_bounds`). If the input fits in one
    chunk the result is exactly ``separate_chunk(mixture)``.
    """
    B, M, S = mixture.shape
    bounds = chunk_bounds(S, chunk, overlap)
    joiner = ChunkJoiner(bounds)
    speakers = noise = None
    objectives = []
    for i, (start, end) in enumerate(bounds):
        out = separate_chunk(mixture[..., start:end])
        if speakers is None:
            speakers = out.speakers.new_zeros(*out.speakers.shape[:3], S)  # [B, N, M, S]
            noise = None if out.noise is None else out.noise.new_zeros(B, M, S)
        at, spk, nse = joiner.push(i, out)
        speakers[..., at : at + spk.shape[-1]] = spk
        if noise is not None:
            noise[..., at : at + nse.shape[-1]] = nse
        objectives.append(out.objective)
    return ChunkedOutput(speakers, noise, _stack_ragged(objectives), bounds)


def _ramp(n: int, like: torch.Tensor) -> torch.Tensor:
    """Fade-in weights ``(k + ½) / n`` for ``k < n`` (the fade-out is ``1 -`` these)."""
    return (torch.arange(n, dtype=like.dtype, device=like.device) + 0.5) / n


def _stack_ragged(objectives: list[torch.Tensor]) -> torch.Tensor:
    """``[B, I_c + 1]`` per chunk -> ``[B, C, I + 1]`` (NaN-padded if the lengths differ)."""
    n = max(o.shape[1] for o in objectives)
    padded = [torch.nn.functional.pad(o, (0, n - o.shape[1]), value=math.nan) for o in objectives]
    return torch.stack(padded, 1)

"""Vector quantisation with an EMA codebook, the bottleneck of the VQ-VAE.

van den Oord, Vinyals & Kavukcuoglu 2017 ("Neural discrete representation learning"):
an encoder output ``z_e`` is replaced by its nearest codebook vector ``e_k``, Eq. (1)–(2),
``k = argmin_j ‖z_e − e_j‖²``; the decoder reads ``z_q = e_k`` and its gradient is copied
to ``z_e`` (straight-through, Sec. 3.2). The codebook is not learned by gradient but by
exponential moving averages of the encoder outputs assigned to each code (Appendix A.1,
Eqs. (6)–(8)), with decay ``γ``:

``N_k ← γ N_k + (1 − γ) n_k``,  ``m_k ← γ m_k + (1 − γ) Σ_{i: k_i = k} z_e,i``,
``e_k = m_k / N_k``,

``N_k`` Laplace-smoothed (``(N_k + ε) / (Σ N + K ε) · Σ N``) so an unused code never
divides by zero. Codes whose usage ``N_k`` (assigned vectors per batch, EMA) falls below a
threshold are restarted on random encoder outputs of the batch (random restarts, Dhariwal
et al. 2020, Jukebox, Sec. 3.2), so that the whole codebook stays on the data.
The commitment loss ``‖z_e − sg(e_k)‖²`` (Eq. (3), third term) keeps the encoder close to
its codes. Pure functions first; :class:`VectorQuantizer` wires them with its buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


def nearest_code(z: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest code (squared Euclidean distance) for each row of ``z``.

    Args:
        z: ``[N, D]`` encoder outputs.
        codebook: ``[K, D]`` code vectors.

    Returns:
        ``[N]`` int64 indices in ``[0, K)`` (ties go to the lowest index).
    """
    # ‖z − e‖² = ‖z‖² − 2 z·e + ‖e‖²; the ‖z‖² term does not change the argmin.
    dist2 = codebook.pow(2).sum(1)[None, :] - 2.0 * z @ codebook.T  # [N, K]
    return dist2.argmin(1)


def code_histogram(indices: Tensor, num_codes: int) -> Tensor:
    """Number of uses of each code, ``[K]`` float, for indices of any shape."""
    return torch.bincount(indices.reshape(-1), minlength=num_codes).to(torch.float32)


def perplexity(counts: Tensor) -> Tensor:
    """``exp(−Σ_k p_k log p_k)`` of a code histogram ``[K]`` (1 … K effective codes)."""
    p = counts / counts.sum().clamp_min(1.0)  # [K]
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


def ema_update(
    cluster_size: Tensor,
    embed_sum: Tensor,
    counts: Tensor,
    sums: Tensor,
    decay: float,
    eps: float = 1e-5,
) -> tuple[Tensor, Tensor, Tensor]:
    """One EMA codebook update (van den Oord et al. 2017, Appendix A.1, Eqs. (6)–(8)).

    Args:
        cluster_size: ``[K]`` EMA usage counts ``N_k``.
        embed_sum: ``[K, D]`` EMA sums ``m_k`` of assigned encoder outputs.
        counts: ``[K]`` this batch's assignments ``n_k``.
        sums: ``[K, D]`` this batch's ``Σ_{i: k_i = k} z_i``.
        decay: ``γ`` in ``[0, 1)``.
        eps: Laplace smoothing of ``N_k``.

    Returns:
        ``(cluster_size [K], embed_sum [K, D], codebook [K, D])``, new tensors.
    """
    cluster_size = decay * cluster_size + (1.0 - decay) * counts
    embed_sum = decay * embed_sum + (1.0 - decay) * sums
    total = cluster_size.sum()
    k = cluster_size.shape[0]
    smoothed = (cluster_size + eps) / (total + k * eps) * total  # [K], same total mass
    return cluster_size, embed_sum, embed_sum / smoothed.clamp_min(eps)[:, None]


def assignment_sums(z: Tensor, indices: Tensor, num_codes: int) -> tuple[Tensor, Tensor]:
    """``(n_k [K], Σ_{i: k_i = k} z_i [K, D])`` for ``z [N, D]`` and ``indices [N]``."""
    counts = torch.bincount(indices, minlength=num_codes).to(z.dtype)  # [K]
    sums = torch.zeros(num_codes, z.shape[1], dtype=z.dtype, device=z.device)
    sums.index_add_(0, indices, z)  # [K, D]
    return counts, sums


def restart_dead_codes(
    codebook: Tensor,
    cluster_size: Tensor,
    embed_sum: Tensor,
    z: Tensor,
    threshold: float,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Move the codes used less than ``threshold`` (EMA count) onto random rows of ``z``.

    A restarted code gets ``N_k = threshold`` and ``m_k = threshold · z_i``, so it stays where it
    was put until the next EMA step moves it towards what it is assigned.

    Args:
        codebook, cluster_size, embed_sum: ``[K, D]``, ``[K]``, ``[K, D]``.
        z: ``[N, D]`` encoder outputs of the batch (candidates).
        threshold: minimum EMA usage (assigned vectors per batch).
        generator: random source of the candidate draw (on ``z``'s device).

    Returns:
        ``(codebook, cluster_size, embed_sum, dead [K] bool)``, new tensors.
    """
    dead = cluster_size < threshold  # [K]
    n_dead = int(dead.sum())
    if n_dead == 0:
        return codebook, cluster_size, embed_sum, dead
    pick = torch.randint(0, z.shape[0], (n_dead,), generator=generator, device=z.device)
    fresh = z[pick].to(codebook.dtype)  # [n_dead, D]
    codebook, cluster_size, embed_sum = codebook.clone(), cluster_size.clone(), embed_sum.clone()
    codebook[dead] = fresh
    cluster_size[dead] = threshold
    embed_sum[dead] = threshold * fresh
    return codebook, cluster_size, embed_sum, dead


@dataclass
class QuantizerOutput:
    """Result of :meth:`VectorQuantizer.forward`.

    Attributes:
        z_q: ``[B, D, h, w]`` quantised codes with the straight-through gradient to ``z_e``.
        indices: ``[B, h, w]`` code indices.
        commitment: ``[B]`` ``‖z_e − sg(z_q)‖²`` summed over D, h and w.
        perplexity: scalar ``exp`` entropy of the batch's code histogram.
        usage: scalar fraction of the K codes used in the batch.
    """

    z_q: Tensor
    indices: Tensor
    commitment: Tensor
    perplexity: Tensor
    usage: Tensor


class VectorQuantizer(nn.Module):
    """EMA vector quantiser over the channel axis of a ``[B, D, h, w]`` grid.

    Args:
        num_codes: ``K``.
        code_dim: ``D``.
        decay: EMA decay ``γ`` (0.99 in the paper).
        restart_threshold: restart codes whose EMA usage falls below this many assigned
            vectors per batch (0 disables restarts). Every code starts unused, so the first
            training batch places the whole codebook on encoder outputs.
        eps: Laplace smoothing of the usage counts.

    Buffers (saved with the weights): ``codebook [K, D]``, ``cluster_size [K]``,
    ``embed_sum [K, D]``; they change only in training mode.
    """

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        decay: float = 0.99,
        restart_threshold: float = 1.0,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.num_codes, self.code_dim = int(num_codes), int(code_dim)
        self.decay, self.eps = float(decay), float(eps)
        self.restart_threshold = float(restart_threshold)
        self.register_buffer("codebook", torch.randn(num_codes, code_dim))
        self.register_buffer("cluster_size", torch.zeros(num_codes))
        self.register_buffer("embed_sum", torch.zeros(num_codes, code_dim))

    def lookup(self, indices: Tensor) -> Tensor:
        """Code vectors of ``indices [B, h, w]`` as a grid ``[B, D, h, w]``."""
        return self.codebook[indices].permute(0, 3, 1, 2)  # [B, h, w, D] -> [B, D, h, w]

    def quantise(self, z_e: Tensor) -> Tensor:
        """Nearest-code indices ``[B, h, w]`` of ``z_e [B, D, h, w]`` (no update)."""
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)  # [B h w, D]
        return nearest_code(flat.detach(), self.codebook).reshape(b, h, w)

    def forward(self, z_e: Tensor) -> QuantizerOutput:
        """Quantise ``z_e [B, D, h, w]``; in training mode also update the codebook."""
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d).detach()  # [B h w, D]
        if self.training:
            self._update(flat)
        indices = nearest_code(flat, self.codebook)  # [B h w]
        counts = code_histogram(indices, self.num_codes)  # [K]
        indices = indices.reshape(b, h, w)
        z_q = self.lookup(indices).to(z_e.dtype)  # [B, D, h, w]
        commitment = (z_e - z_q.detach()).pow(2).sum((1, 2, 3))  # [B]
        z_st = z_e + (z_q - z_e).detach()  # straight-through: forward z_q, gradient to z_e
        usage = (counts > 0).float().mean()
        return QuantizerOutput(z_st, indices, commitment, perplexity(counts), usage)

    @torch.no_grad()
    def _update(self, flat: Tensor) -> None:
        """EMA step on the batch's assignments, then restarts (all ranks agree under DDP)."""
        flat = flat.to(self.codebook.dtype)
        indices = nearest_code(flat, self.codebook)  # [N]
        counts, sums = assignment_sums(flat, indices, self.num_codes)
        distributed = dist.is_available() and dist.is_initialized()
        if distributed:
            dist.all_reduce(counts)
            dist.all_reduce(sums)
            counts, sums = counts / dist.get_world_size(), sums / dist.get_world_size()
        size, total, codebook = ema_update(
            self.cluster_size, self.embed_sum, counts, sums, self.decay, self.eps
        )
        if self.restart_threshold > 0:
            codebook, size, total, _ = restart_dead_codes(
                codebook, size, total, flat, self.restart_threshold
            )
            if distributed:
                for t in (codebook, size, total):
                    dist.broadcast(t, src=0)
        self.cluster_size.copy_(size)
        self.embed_sum.copy_(total)
        self.codebook.copy_(codebook)

"""Autoregressive prior over a VQ-VAE code grid: a small causal transformer.

``p(c) = Π_i p(c_i | c_<i)`` over the ``P = h w`` positions of the grid in raster order
(row by row), the factorisation of the PixelCNN prior of van den Oord et al. 2017 (Sec. 3.3)
without its blind spot: position ``i`` attends to every earlier position (causal
self-attention, Vaswani et al. 2017; GPT-style pre-norm blocks). The input at position ``i``
is the embedding of ``c_{i−1}`` (a start token at ``i = 0``) plus a learned position
embedding; the output is ``K`` logits for ``c_i``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CodePrior(nn.Module):
    """Causal transformer ``p(c)`` over ``[h, w]`` grids of ``K`` codes.

    Args:
        num_codes: ``K``.
        grid_shape: ``(h, w)``.
        width: model width.
        layers: transformer blocks.
        heads: attention heads (divides ``width``).
    """

    def __init__(
        self,
        num_codes: int,
        grid_shape: tuple[int, int],
        width: int = 64,
        layers: int = 2,
        heads: int = 4,
    ) -> None:
        super().__init__()
        self.num_codes = int(num_codes)
        self.grid_shape = (int(grid_shape[0]), int(grid_shape[1]))
        positions = self.grid_shape[0] * self.grid_shape[1]
        self.embed = nn.Embedding(num_codes + 1, width)  # last row: the start token
        self.position = nn.Parameter(0.02 * torch.randn(positions, width))
        block = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_codes)
        mask = torch.full((positions, positions), float("-inf")).triu(1)  # [P, P]
        self.register_buffer("causal_mask", mask, persistent=False)

    def _logits(self, tokens: Tensor) -> Tensor:
        """Next-code logits ``[B, L, K]`` for input tokens ``[B, L]`` (start token first)."""
        n = tokens.shape[1]
        h = self.embed(tokens) + self.position[:n]  # [B, L, width]
        h = self.blocks(h, mask=self.causal_mask[:n, :n])  # position i sees tokens <= i
        return self.head(self.norm(h))  # [B, L, K]

    def logits(self, indices: Tensor) -> Tensor:
        """Logits ``[B, h, w, K]`` of ``p(c_i | c_<i)`` at each position of ``indices``."""
        b = indices.shape[0]
        flat = indices.reshape(b, -1)  # [B, P], raster order
        start = torch.full((b, 1), self.num_codes, dtype=flat.dtype, device=flat.device)
        tokens = torch.cat([start, flat[:, :-1]], dim=1)  # [B, P]: input i is c_{i-1}
        return self._logits(tokens).reshape(*indices.shape, self.num_codes)  # [B, h, w, K]

    def log_prob(self, indices: Tensor) -> Tensor:
        """``log p(c)`` per grid, ``[B]`` (nats, summed over the ``h w`` positions)."""
        logits = self.logits(indices)  # [B, h, w, K]
        nll = F.cross_entropy(logits.permute(0, 3, 1, 2), indices, reduction="none")  # [B, h, w]
        return -nll.sum((1, 2))

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> Tensor:
        """``n`` grids ``[n, h, w]`` drawn position by position (ancestral sampling).

        Uniform draws come from ``generator`` on the CPU (device-independent results) and pick
        the code by inverting the cumulative distribution.
        """
        device = self.position.device
        positions = self.position.shape[0]
        uniform = torch.rand(n, positions, generator=generator).to(device)  # [n, P]
        tokens = torch.full((n, 1), self.num_codes, dtype=torch.long, device=device)
        for i in range(positions):
            logits = self._logits(tokens)[:, -1] / temperature  # [n, K]
            cdf = torch.softmax(logits.float(), -1).cumsum(-1)  # [n, K]
            code = (cdf < uniform[:, i : i + 1]).sum(-1).clamp_max(self.num_codes - 1)  # [n]
            tokens = torch.cat([tokens, code[:, None]], dim=1)
        return tokens[:, 1:].reshape(n, *self.grid_shape)

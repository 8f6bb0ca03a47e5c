"""Ground-truth data: observations generated from discrete factors of variation.

The interface follows disentanglement_lib's ``GroundTruthData`` (Locatello et al. 2019) so
the metrics in :mod:`vae_audio.image.metrics` read like their reference protocols:

- ``factors_num_values``: number of values of each factor, e.g. ``[3, 6, 40, 32, 32]``;
- ``sample_factors(num, random_state) -> [B, K]`` integer factor indices;
- ``sample_observations_from_factors(factors, random_state) -> [B, C, H, W]`` float32;
- ``sample(num, random_state) -> (factors, observations)``.

Observations are channel-first float32 NumPy arrays (the layout torch modules take), so a
representation function is simply ``x -> encoder(torch.from_numpy(x)).mean.numpy()``.

:class:`FactorGrid` maps a full factor grid to a flat index in row-major (C) order, the
ordering of the published dSprites array (shape slowest, posY fastest):
``index = Σ_k factor_k · Π_{j>k} n_j``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from vae_audio.errors import VaeAudioError


class FactorGrid:
    """Bijection between factor indices ``[B, K]`` and flat row-major indices ``[B]``."""

    def __init__(self, sizes: Sequence[int]) -> None:
        self.sizes = np.asarray(sizes, dtype=np.int64)
        if self.sizes.ndim != 1 or np.any(self.sizes < 1):
            raise VaeAudioError(f"factor sizes {list(sizes)} must be positive integers")
        # bases[k] = Π_{j>k} n_j, e.g. [245760, 40960, 1024, 32, 1] for dSprites.
        self.bases = np.concatenate([np.cumprod(self.sizes[::-1])[::-1][1:], [1]]).astype(np.int64)

    def __len__(self) -> int:
        return int(np.prod(self.sizes))

    def latent_to_index(self, factors: np.ndarray) -> np.ndarray:
        """``[B, K]`` (or ``[K]``) integer factors -> ``[B]`` (or scalar) flat indices."""
        factors = np.asarray(factors, dtype=np.int64)
        if factors.shape[-1] != len(self.sizes):
            raise VaeAudioError(
                f"factors have {factors.shape[-1]} columns but the grid has "
                f"{len(self.sizes)} factors; pass one column per factor"
            )
        if np.any(factors < 0) or np.any(factors >= self.sizes):
            raise VaeAudioError(
                f"factor indices out of range for sizes {self.sizes.tolist()}; "
                "each column k must lie in [0, sizes[k])"
            )
        return factors @ self.bases  # [B, K] @ [K] -> [B]

    def index_to_latent(self, index: np.ndarray | int) -> np.ndarray:
        """``[B]`` (or scalar) flat indices -> ``[B, K]`` (or ``[K]``) integer factors."""
        index = np.asarray(index, dtype=np.int64)
        if np.any(index < 0) or np.any(index >= len(self)):
            raise VaeAudioError(f"index out of range [0, {len(self)}); pass a valid flat index")
        return (index[..., None] // self.bases) % self.sizes  # [B, 1] -> [B, K]


class GroundTruthData:
    """Abstract two-step generative data set: factors -> observations."""

    @property
    def factors_num_values(self) -> list[int]:
        raise NotImplementedError

    @property
    def factor_names(self) -> list[str]:
        return [f"factor_{k}" for k in range(self.num_factors)]

    @property
    def observation_shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` for images; ``(D,)`` for vector toy data."""
        raise NotImplementedError

    @property
    def num_factors(self) -> int:
        return len(self.factors_num_values)

    def sample_factors(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
        """``[num, K]`` integer factors, each uniform over its values."""
        sizes = self.factors_num_values
        return np.stack([random_state.randint(n, size=num) for n in sizes], axis=1)

    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: np.random.RandomState
    ) -> np.ndarray:
        """``[B, K]`` factors -> ``[B, *observation_shape]`` float32 observations."""
        raise NotImplementedError

    def sample(
        self, num: int, random_state: np.random.RandomState
    ) -> tuple[np.ndarray, np.ndarray]:
        """``([num, K] factors, [num, *observation_shape] observations)``."""
        factors = self.sample_factors(num, random_state)
        return factors, self.sample_observations_from_factors(factors, random_state)

    def sample_observations(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
        return self.sample(num, random_state)[1]


class GroundTruthDataset(Dataset):
    """A torch view of a :class:`GroundTruthData` with a full factor grid.

    Item ``i`` is ``{"x": [C, H, W] observation, "factors": [K] int64}`` at flat grid index
    ``indices[i]``. Batches are rendered at once through ``__getitems__`` (used by
    ``DataLoader``'s default fetcher); pass ``collate_fn=collate_batch`` to the loader.

    Args:
        data: ground-truth data exposing ``grid`` (a :class:`FactorGrid`).
        indices: flat indices to expose (default: the whole grid).
    """

    def __init__(self, data: GroundTruthData, indices: np.ndarray | None = None) -> None:
        grid = getattr(data, "grid", None)
        if grid is None:
            raise VaeAudioError(f"{type(data).__name__} has no factor grid; cannot index it")
        self.data = data
        self.indices = np.arange(len(grid)) if indices is None else np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}

    def __getitems__(self, items: list[int]) -> dict[str, torch.Tensor]:
        factors = self.data.grid.index_to_latent(self.indices[np.asarray(items)])  # [B, K]
        x = self.data.sample_observations_from_factors(factors, np.random.RandomState(0))
        return {"x": torch.from_numpy(x), "factors": torch.from_numpy(factors)}


def collate_batch(batch):
    """Collate that passes through batches already built by ``__getitems__`` (a dict)."""
    if isinstance(batch, dict):
        return batch
    return torch.utils.data.default_collate(batch)

"""Procedural dSprites: the published factor grid, rasterised on the fly with NumPy.

dSprites (Matthey et al. 2017; Higgins et al. 2017) holds every combination of

==============  ======  =================================
factor          values  range
==============  ======  =================================
shape           3       square, ellipse, heart
scale           6       ``linspace(0.5, 1, 6)``
orientation     40      ``linspace(0, 2π, 40)`` (radians)
position x      32      ``linspace(0, 1, 32)``
position y      32      ``linspace(0, 1, 32)``
==============  ======  =================================

as a 64×64 binary image: 737,280 images, flat index in row-major factor order (shape
slowest, posY fastest), as in the published ``.npz``. Here no file is needed: an image is a
pure function of its factors. A pixel is on when its centre falls inside the shape after
undoing translation, rotation (counter-clockwise on screen) and scaling. Rendering tests
a 24×24 window per image (tens of µs per image on one core), so images are generated per
batch instead of stored: nothing is written to disk and a data set is just an index list
(:meth:`DSprites.packed` gives the bit-packed array for users who want a file).

Geometry (unit image coordinates, ``[0, 1]²``): the sprite centre is
``0.2 + 0.6 · pos``; at scale 1 the square's half-side is ``0.12`` (about 15 px wide), so a
sprite never leaves the canvas at any rotation. The ellipse has semi-axes ``(1.25, 0.6)``
and the heart ``(x² + y² − 1)³ ≤ x² y³`` is scaled to a similar size. The pixel geometry is
ours; the factor grid and ordering match the published set.
"""

from __future__ import annotations

import numpy as np

from vae_audio.image.datasets.ground_truth import FactorGrid, GroundTruthData

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2.0 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
IMAGE_SIZE = 64

_HALF_SIDE = 0.12  # square half-side at scale 1, unit image coordinates
_CENTRE_MIN, _CENTRE_SPAN = 0.2, 0.6


_PATCH = 24  # rendering window (pixels) around the sprite centre; sprites reach 11 px at most


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Point-in-shape test in the sprite frame (the unit square is ``|u|, |v| ≤ 1``).

    Args:
        shape: shape id (0 square, 1 ellipse, 2 heart).
        u, v: sprite-frame coordinates of any shape (``v`` points up).

    Returns:
        Boolean mask, same shape as ``u``.
    """
    if shape == 0:
        return (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    if shape == 1:
        return (u / 1.25) ** 2 + (v / 0.6) ** 2 <= 1.0
    # Heart curve (x² + y² − 1)³ − x² y³ ≤ 0, shrunk to about the square's size (88 % of its area)
    # (the curve spans about [-1.14, 1.14] × [-1, 1.24]); centred on its bounding box.
    hx, hy = u * 1.05, v * 1.05 + 0.12
    return (hx * hx + hy * hy - 1.0) ** 3 - hx * hx * hy**3 <= 0.0


def rasterise(
    shape: np.ndarray,
    scale: np.ndarray,
    orientation: np.ndarray,
    pos_x: np.ndarray,
    pos_y: np.ndarray,
    size: int = IMAGE_SIZE,
) -> np.ndarray:
    """Render sprites from continuous factor values.

    Only a ``24 × 24`` window around each centre is tested (the sprites are at most 22 px
    across), then pasted into the blank canvas.

    Args:
        shape: ``[B]`` integer shape ids (0 square, 1 ellipse, 2 heart).
        scale: ``[B]`` scale (1 = largest sprite of the published grid).
        orientation: ``[B]`` rotation in radians, counter-clockwise on screen.
        pos_x, pos_y: ``[B]`` position in ``[0, 1]`` (x to the right, y downwards).
        size: image side in pixels (≥ 64 keeps the window inside the canvas).

    Returns:
        ``[B, size, size]`` uint8 binary images (1 = sprite).
    """
    shape = np.asarray(shape, dtype=np.int64).reshape(-1)  # [B]
    scale, orientation, pos_x, pos_y = (
        np.asarray(a, dtype=np.float32).reshape(-1, 1, 1)  # [B, 1, 1]
        for a in (scale, orientation, pos_x, pos_y)
    )
    n = shape.shape[0]
    cx = (_CENTRE_MIN + _CENTRE_SPAN * pos_x) * size  # [B, 1, 1] centre, pixels
    cy = (_CENTRE_MIN + _CENTRE_SPAN * pos_y) * size
    offsets = np.arange(_PATCH) - _PATCH // 2  # [P]
    cols = np.clip(np.floor(cx).astype(np.int64) + offsets[None, None, :], 0, size - 1)  # [B,1,P]
    rows = np.clip(np.floor(cy).astype(np.int64) + offsets[None, :, None], 0, size - 1)  # [B,P,1]
    dx = cols + 0.5 - cx  # [B, 1, P] pixel-centre offset, pixels
    dy = cy - (rows + 0.5)  # [B, P, 1], y up
    cos, sin = np.cos(orientation), np.sin(orientation)
    half = _HALF_SIDE * scale * size  # [B, 1, 1] half-side, pixels
    # Inverse rotation R(−θ) of the offset, then scaling: sprite frame.
    u = (cos * dx + sin * dy) / half  # [B, P, P]
    v = (-sin * dx + cos * dy) / half  # [B, P, P]
    patch = np.zeros((n, _PATCH, _PATCH), dtype=np.uint8)
    for s in np.unique(shape):
        sel = shape == s
        patch[sel] = _inside(int(s), u[sel], v[sel])
    out = np.zeros((n, size, size), dtype=np.uint8)
    batch = np.arange(n)[:, None, None]  # [B, 1, 1]
    out[batch, rows, cols] = patch  # scatter [B, P, P] windows into [B, size, size]
    return out


class DSprites(GroundTruthData):
    """The procedural dSprites grid as a :class:`GroundTruthData` (observations ``[B, 1, 64, 64]``).

    ``latent_to_index`` / ``index_to_latent`` map factor indices ``[B, 5]`` to the flat index
    of the published array and back.
    """

    def __init__(self) -> None:
        self.grid = FactorGrid(FACTOR_SIZES)

    @property
    def factors_num_values(self) -> list[int]:
        return list(FACTOR_SIZES)

    @property
    def factor_names(self) -> list[str]:
        return list(FACTOR_NAMES)

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (1, IMAGE_SIZE, IMAGE_SIZE)

    def __len__(self) -> int:
        return len(self.grid)

    def latent_to_index(self, factors: np.ndarray) -> np.ndarray:
        return self.grid.latent_to_index(factors)

    def index_to_latent(self, index: np.ndarray | int) -> np.ndarray:
        return self.grid.index_to_latent(index)

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """``[B, 5]`` factor indices -> ``[B, 5]`` float values (shape id, scale, rad, x, y)."""
        factors = np.asarray(factors, dtype=np.int64)
        return np.stack(
            [
                factors[:, 0].astype(np.float64),
                SCALES[factors[:, 1]],
                ORIENTATIONS[factors[:, 2]],
                POSITIONS[factors[:, 3]],
                POSITIONS[factors[:, 4]],
            ],
            axis=1,
        )

    def images(self, factors: np.ndarray) -> np.ndarray:
        """``[B, 5]`` factor indices -> ``[B, 64, 64]`` uint8 binary images."""
        values = self.factor_values(np.atleast_2d(factors))  # [B, 5]
        return rasterise(*values.T)

    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: np.random.RandomState
    ) -> np.ndarray:
        del random_state  # deterministic observations
        return self.images(factors)[:, None].astype(np.float32)  # [B, 1, 64, 64]

    def packed(self, indices: np.ndarray, batch: int = 4096) -> np.ndarray:
        """Bit-packed images (``np.packbits`` along W): ``[B, 64, 8]`` uint8, 1/8 the size.

        The whole grid packs to 377 MB (360 MiB), for users who want to write it out once.
        """
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), IMAGE_SIZE, IMAGE_SIZE // 8), dtype=np.uint8)
        for start in range(0, len(indices), batch):
            chunk = self.images(self.index_to_latent(indices[start : start + batch]))
            out[start : start + batch] = np.packbits(chunk, axis=-1)  # [b, 64, 64] -> [b, 64, 8]
        return out

"""Offline image data: dSprites grid and rasteriser, affine digits, local file loaders."""

import gzip

import numpy as np
import pytest
import scipy.ndimage
import torch
from torch.utils.data import DataLoader

from vae_audio.errors import VaeAudioError
from vae_audio.image.datasets import (
    AffineDigits,
    AffineRanges,
    DSprites,
    FactorGrid,
    GroundTruthDataset,
    IdxImages,
    ImageFolder64,
    affine_matrix,
    collate_batch,
    rasterise,
    read_idx,
    warp,
)
from vae_audio.image.datasets import dsprites as ds
from vae_audio.image.moments import image_moments

# --- dSprites factor grid --------------------------------------------------------------------


def test_dsprites_grid_matches_published_layout():
    data = DSprites()
    assert data.factors_num_values == [3, 6, 40, 32, 32] and len(data) == 737280
    np.testing.assert_allclose(ds.SCALES, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert len(ds.ORIENTATIONS) == 40 and ds.ORIENTATIONS[0] == 0.0
    assert ds.ORIENTATIONS[-1] == pytest.approx(2 * np.pi)
    np.testing.assert_allclose(ds.POSITIONS, np.linspace(0, 1, 32))


def test_index_latent_round_trip_against_numpy_ravel():
    data = DSprites()
    index = np.arange(len(data))
    factors = data.index_to_latent(index)  # [N, 5]
    # Row-major order as np.unravel_index / ravel_multi_index define it.
    np.testing.assert_array_equal(factors.T, np.unravel_index(index, (3, 6, 40, 32, 32)))
    np.testing.assert_array_equal(data.latent_to_index(factors), index)
    sampled = data.sample_factors(1000, np.random.RandomState(0))
    np.testing.assert_array_equal(data.index_to_latent(data.latent_to_index(sampled)), sampled)


def test_factor_grid_rejects_out_of_range():
    grid = FactorGrid([2, 3])
    with pytest.raises(VaeAudioError):
        grid.latent_to_index(np.array([[2, 0]]))
    with pytest.raises(VaeAudioError):
        grid.index_to_latent(6)


# --- rasterised sprites ----------------------------------------------------------------------


def test_square_pixel_count_scales_with_scale_squared():
    # Averaged over the 32 x 32 positions the sub-pixel offset is spread out, so the mean
    # pixel count of an axis-aligned square approaches its area side² (side in pixels).
    px, py = np.meshgrid(ds.POSITIONS, ds.POSITIONS)
    n = px.size
    counts = np.array(
        [
            rasterise([0] * n, [s] * n, [0.0] * n, px.ravel(), py.ravel()).sum() / n
            for s in ds.SCALES
        ]
    )
    side = 2 * ds._HALF_SIDE * ds.IMAGE_SIZE * ds.SCALES
    np.testing.assert_allclose(counts, side**2, rtol=0.05)
    np.testing.assert_allclose(counts / counts[-1], ds.SCALES**2, rtol=0.05)


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_area_is_roughly_rotation_invariant(shape):
    angles = np.linspace(0, 2 * np.pi, 13)
    n = len(angles)
    counts = rasterise([shape] * n, [1.0] * n, angles, [0.5] * n, [0.5] * n).sum((1, 2))
    assert counts.std() / counts.mean() < 0.05


@pytest.mark.parametrize(
    ("shape", "period"), [(0, np.pi / 2), (1, np.pi)], ids=["square", "ellipse"]
)
def test_symmetric_shapes_repeat_with_their_period(shape, period):
    theta = np.array([0.3, 1.1])
    a = rasterise([shape] * 2, [1.0] * 2, theta, [0.4] * 2, [0.6] * 2).astype(int)
    b = rasterise([shape] * 2, [1.0] * 2, theta + period, [0.4] * 2, [0.6] * 2).astype(int)
    assert np.abs(a - b).sum() <= 4  # boundary pixels may flip by rounding
    half = rasterise([shape] * 2, [1.0] * 2, theta + period / 2, [0.4] * 2, [0.6] * 2).astype(int)
    assert np.abs(a - half).sum() > 10  # half the period is a different image


def test_heart_has_no_half_turn_symmetry_and_grid_ends_coincide():
    data = DSprites()
    up = data.images(np.array([[2, 5, 0, 16, 16]]))
    down = rasterise([2], [1.0], [np.pi], [ds.POSITIONS[16]], [ds.POSITIONS[16]])
    assert np.abs(up.astype(int) - down).sum() > 20
    # Orientation 0 and 2π (first and last grid values) are the same image.
    last = data.images(np.array([[2, 5, 39, 16, 16]]))
    assert np.abs(up.astype(int) - last).sum() <= 4


def test_position_moves_the_centroid_linearly():
    pos = np.array([0.0, 0.5, 1.0])
    imgs = rasterise([0] * 3, [0.5] * 3, [0.0] * 3, pos, pos[::-1])
    rows, cols = np.indices((64, 64))
    cx = (imgs * cols).sum((1, 2)) / imgs.sum((1, 2)) + 0.5  # pixel-centre x, in pixels
    cy = (imgs * rows).sum((1, 2)) / imgs.sum((1, 2)) + 0.5
    expected = (0.2 + 0.6 * pos) * 64
    np.testing.assert_allclose(cx, expected, atol=0.6)
    np.testing.assert_allclose(cy, expected[::-1], atol=0.6)  # pos_y grows downwards


def test_dataset_batches_follow_the_index_and_pack():
    data = DSprites()
    indices = np.array([0, 12345, 737279, 400000])
    loader = DataLoader(GroundTruthDataset(data, indices), batch_size=4, collate_fn=collate_batch)
    batch = next(iter(loader))
    assert batch["x"].shape == (4, 1, 64, 64) and batch["x"].dtype == torch.float32
    np.testing.assert_array_equal(batch["factors"].numpy(), data.index_to_latent(indices))
    np.testing.assert_array_equal(batch["x"][:, 0].numpy(), data.images(batch["factors"].numpy()))
    packed = data.packed(indices)
    assert packed.shape == (4, 64, 8)
    np.testing.assert_array_equal(np.unpackbits(packed, axis=-1), batch["x"][:, 0].numpy())


# --- affine digits ---------------------------------------------------------------------------


def _scipy_warp(image, m):
    """Reference warp with scipy.ndimage (row/col coordinates) for a forward map ``m [2, 3]``."""
    h, w = image.shape
    ch, cw = (h - 1) / 2, (w - 1) / 2
    p = np.array([[0.0, 1.0], [-1.0, 0.0]])  # (row, col) offsets -> (x, y)
    s = np.array([-cw, ch])
    linv = np.linalg.inv(m[:, :2])
    matrix = np.linalg.inv(p) @ linv @ p
    offset = np.linalg.inv(p) @ (linv @ (s - m[:, 2]) - s)
    return scipy.ndimage.affine_transform(image, matrix, offset, order=1, mode="grid-constant")


def test_warp_matches_scipy_affine_transform():
    d = AffineDigits(4, seed=3)
    m = affine_matrix(*d.factors.numpy().astype(np.float64).T)  # [4, 2, 3]
    ours = warp(d.upright, torch.from_numpy(m).float())
    for i in range(4):
        ref = _scipy_warp(d.upright[i, 0].numpy().astype(np.float64), m[i])
        np.testing.assert_allclose(ours[i, 0].numpy(), ref, atol=1e-4)


def test_recorded_rotation_and_translation_are_measurable():
    ranges = AffineRanges(rotation=np.pi / 4, shear=0.0, scale=(1.0, 1.0), translation=0.0)
    d = AffineDigits(200, seed=1, ranges=ranges)
    before, after = image_moments(d.upright), image_moments(d.images)
    elongated = before.elongation > 0.3
    # Change of principal-axis angle vs the recorded rotation, compared modulo π.
    diff = (after.angle - before.angle - d.factors[:, 0] + np.pi / 2) % np.pi - np.pi / 2
    assert elongated.sum() > 50
    assert diff[elongated].abs().median() < 0.05

    shift = AffineRanges(rotation=0.0, shear=0.0, scale=(1.0, 1.0), translation=2.0)
    t = AffineDigits(50, seed=2, ranges=shift)
    m0, m1 = image_moments(t.upright), image_moments(t.images)
    np.testing.assert_allclose((m1.cx - m0.cx).numpy(), t.factors[:, 3].numpy(), atol=0.1)
    np.testing.assert_allclose((m1.cy - m0.cy).numpy(), t.factors[:, 4].numpy(), atol=0.1)


def test_digits_are_deterministic_and_labelled():
    a, b = AffineDigits(20, seed=5), AffineDigits(20, seed=5)
    torch.testing.assert_close(a.images, b.images)
    item = a[3]
    assert item["x"].shape == (1, 28, 28) and 0 <= int(item["label"]) <= 9
    assert item["factors"].shape == (5,)
    assert float(a.images.min()) >= 0 and float(a.images.max()) <= 1


# --- local loaders ---------------------------------------------------------------------------


def _write_idx(path, array, compress):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">i4").tobytes()
    raw = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(raw)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_folder_round_trip(tmp_path, compress):
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (5, 28, 28))
    labels = rng.randint(0, 10, 5)
    ext = ".gz" if compress else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{ext}", images, compress)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{ext}", labels, compress)
    np.testing.assert_array_equal(read_idx(tmp_path / f"train-images-idx3-ubyte{ext}"), images)
    ds_ = IdxImages(tmp_path, "train")
    assert len(ds_) == 5
    np.testing.assert_allclose(ds_[2]["x"][0].numpy(), images[2] / 255.0, atol=1e-6)
    assert int(ds_[2]["label"]) == labels[2]
    with pytest.raises(VaeAudioError, match="t10k-images"):
        IdxImages(tmp_path, "test")


def test_idx_bad_magic_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x12\x34\x56\x78")
    with pytest.raises(VaeAudioError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(
        bytes([0, 0, 8, 1]) + np.array([10], ">i4").tobytes() + b"\x00"
    )
    with pytest.raises(VaeAudioError, match="truncated"):
        read_idx(tmp_path / "short")


def test_image_folder_centre_crop(tmp_path):
    from PIL import Image

    arr = np.zeros((218, 178, 3), np.uint8)  # CelebA-aligned size (H, W)
    arr[35:183, 15:163] = 255  # the centred 148 x 148 square is white
    Image.fromarray(arr).save(tmp_path / "000001.jpg", quality=100)
    item = ImageFolder64(tmp_path)[0]["x"]
    assert item.shape == (3, 64, 64)
    assert float(item.mean()) > 0.97  # the crop keeps only the white square
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VaeAudioError, match="no .jpg"):
        ImageFolder64(empty)
    with pytest.raises(VaeAudioError, match="not a folder"):
        ImageFolder64(tmp_path / "missing")

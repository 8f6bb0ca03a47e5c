"""Image moments and the axial angle spread used by the affine benchmark."""

import numpy as np
import torch

from vae_audio.image.datasets import affine_matrix, warp
from vae_audio.image.moments import axial_std, image_moments


def test_axial_std_matches_wrapped_normal_and_ignores_half_turns():
    rng = np.random.RandomState(0)
    angles = torch.from_numpy(rng.normal(0.3, 0.1, 20000))
    assert abs(axial_std(angles) - 0.1) < 0.005  # small spread: circular std ≈ σ
    flipped = angles + np.pi * torch.from_numpy(rng.randint(0, 2, 20000))  # axes mod π
    assert abs(axial_std(flipped) - axial_std(angles)) < 1e-9
    assert axial_std(torch.zeros(5)) == 0.0


def test_bar_angle_follows_rotation():
    bar = torch.zeros(1, 1, 28, 28)
    bar[0, 0, 13:15, 5:23] = 1.0  # horizontal bar: angle 0, strongly elongated
    base = image_moments(bar)
    assert abs(float(base.angle)) < 1e-6 and float(base.elongation) > 0.9
    for theta in (-0.7, 0.2, 1.2):
        m = affine_matrix(np.array([theta]), np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1))
        rotated = image_moments(warp(bar, torch.from_numpy(m).float()))
        assert abs(float(rotated.angle) - theta) < 0.02

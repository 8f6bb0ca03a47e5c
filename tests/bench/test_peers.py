"""pyroomacoustics peers: shapes, determinism, and projection back against its closed form."""

import numpy as np
import pytest

from vae_audio.bench import PEERS, projection_back_images, run_peer
from vae_audio.errors import VaeAudioError


def _tiny(M=3, F=33, T=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((M, F, T)) + 1j * rng.standard_normal((M, F, T))  # [M, F, T]


@pytest.mark.parametrize("name", sorted(PEERS))
@pytest.mark.parametrize("M, n_src", [(2, 1), (3, 2)])
def test_peers_return_candidate_images_at_every_mic(name, M, n_src):
    X = _tiny(M)
    out = run_peer(name, X, n_src, n_iter=2, seed=3)
    N = M if PEERS[name].determined else n_src + 1
    assert out.shape == (N, M, *X.shape[1:])
    assert np.iscomplexobj(out) and np.isfinite(out).all()
    np.testing.assert_array_equal(out, run_peer(name, X, n_src, n_iter=2, seed=3))  # seeded


def test_full_rank_peers_images_sum_to_the_mixture():
    # Wiener-filtered images of an FCA-type model add up to the mixture (no ε floor in pra).
    X = _tiny(2)
    out = run_peer("pra-fastmnmf2", X, 1, n_iter=3)
    np.testing.assert_allclose(out.sum(0), X, rtol=1e-6, atol=1e-8)


def test_projection_back_recovers_the_mixing_of_uncorrelated_outputs():
    # Y = A⁻¹ X with outputs orthogonal over time: the least-squares scale onto mic m is A_mn,
    # so the images are A_mn y_n (the minimal-distortion images) and add up to X.
    rng = np.random.default_rng(0)
    T, F, M = 50, 4, 3
    Y = np.empty((T, F, M), complex)
    A = rng.standard_normal((F, M, M)) + 1j * rng.standard_normal((F, M, M))
    for f in range(F):
        q, _ = np.linalg.qr(rng.standard_normal((T, M)) + 1j * rng.standard_normal((T, M)))
        Y[:, f] = q * rng.uniform(0.5, 2.0, M)  # orthogonal columns over t
    X = np.einsum("fmn,tfn->tfm", A, Y)  # [T, F, M]
    images = projection_back_images(Y, X)  # [N, M, F, T]
    expected = np.einsum("fmn,tfn->nmft", A, Y)
    np.testing.assert_allclose(images, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(images.sum(0), X.transpose(2, 1, 0), atol=1e-10)


def test_determined_peer_refuses_more_sources_than_mics():
    with pytest.raises(VaeAudioError, match="at most M = 2"):
        run_peer("pra-ilrma", _tiny(2), 3, n_iter=1)

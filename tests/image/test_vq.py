"""VQ-VAE pieces: nearest-code assignment, straight-through gradient, EMA codebook updates
and restarts, and the autoregressive code prior."""

import itertools

import pytest
import torch

from vae_audio.image.build import build_model
from vae_audio.image.networks import CodePrior
from vae_audio.image.vq import (
    VectorQuantizer,
    assignment_sums,
    ema_update,
    nearest_code,
    perplexity,
    restart_dead_codes,
)


@pytest.mark.parametrize(("n", "k", "d"), [(1, 1, 1), (50, 7, 3), (200, 64, 16)])
def test_nearest_code_matches_brute_force(n, k, d):
    g = torch.Generator().manual_seed(n + k + d)
    z, codebook = torch.randn(n, d, generator=g), torch.randn(k, d, generator=g)
    expected = []
    for i in range(n):  # explicit loop over codes, no matrix tricks
        dists = [float(((z[i] - codebook[j]) ** 2).sum()) for j in range(k)]
        expected.append(min(range(k), key=dists.__getitem__))
    assert nearest_code(z, codebook).tolist() == expected


def test_quantiser_returns_the_nearest_codes_on_the_grid():
    torch.manual_seed(0)
    vq = VectorQuantizer(num_codes=5, code_dim=3).eval()
    z_e = torch.randn(2, 3, 4, 4)  # [B, D, h, w]
    out = vq(z_e)
    for b, i, j in itertools.product(range(2), range(4), range(4)):
        dists = ((vq.codebook - z_e[b, :, i, j]) ** 2).sum(1)
        assert out.indices[b, i, j] == dists.argmin()
        torch.testing.assert_close(out.z_q[b, :, i, j], vq.codebook[dists.argmin()])
    expected = ((z_e - vq.lookup(out.indices)) ** 2).sum((1, 2, 3))
    torch.testing.assert_close(out.commitment, expected)


def test_straight_through_gradient_reaches_the_encoder():
    torch.manual_seed(0)
    model = build_model({"codebook_size": 8, "code_dim": 4, "channels": 8}, "vq_vae", (1, 28, 28))
    x = (torch.rand(4, 1, 28, 28) > 0.7).float()
    out = model(x)
    out.recon_nll.mean().backward()  # reconstruction only: no commitment term
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)

    # The gradient w.r.t. z_e is exactly the gradient w.r.t. z_q (identity copy).
    z_e = model.encoder(x).detach().requires_grad_(True)
    q = model.quantizer(z_e)
    z_q = q.z_q.detach().requires_grad_(True)
    w = torch.randn_like(z_q)
    (q.z_q * w).sum().backward()
    torch.testing.assert_close(z_e.grad, w)
    torch.testing.assert_close(q.z_q, model.quantizer.lookup(q.indices))


def _clusters(n_per=100, seed=0):
    """Four tight clusters in 2-D at (±3, ±3): [4 n_per, 2], and their means [4, 2]."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[3.0, 3.0], [-3.0, 3.0], [3.0, -3.0], [-3.0, -3.0]])
    z = centres.repeat_interleave(n_per, 0) + 0.3 * torch.randn(4 * n_per, 2, generator=g)
    means = torch.stack([z[i * n_per : (i + 1) * n_per].mean(0) for i in range(4)])
    return z, means


def test_ema_step_moves_each_code_toward_its_assigned_outputs():
    z, _ = _clusters()
    codebook = torch.tensor([[1.0, 1.0], [-1.0, 2.0], [2.0, -1.0], [-2.0, -2.0]])
    idx = nearest_code(z, codebook)
    counts, sums = assignment_sums(z, idx, 4)
    size, total, new = ema_update(counts.clone(), codebook * counts[:, None], counts, sums, 0.5)
    target = sums / counts[:, None]  # mean of the assigned outputs [K, D]
    before = (codebook - target).norm(dim=1)
    after = (new - target).norm(dim=1)
    assert bool((after < before).all())
    # With N_k = n_k the update is the exact midpoint between the code and the mean.
    torch.testing.assert_close(new, 0.5 * (codebook + target), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(size, counts)
    torch.testing.assert_close(total, 0.5 * (codebook * counts[:, None] + sums))


def test_ema_codebook_converges_onto_the_data_and_restarts_dead_codes():
    z, means = _clusters()
    torch.manual_seed(0)
    vq = VectorQuantizer(num_codes=4, code_dim=2, decay=0.8, restart_threshold=1.0)
    vq.codebook.copy_(torch.tensor([[100.0, 100.0]] * 4))  # far from the data, all equal
    grid = z.T.reshape(1, 2, 20, 20)  # [B, D, h, w]: the 400 points as one grid
    for _ in range(200):
        vq(grid)
    lo, hi = z.min(0).values, z.max(0).values
    assert bool(((vq.codebook >= lo) & (vq.codebook <= hi)).all()), vq.codebook
    # Every cluster owns one code, at its mean (the k-means fixed point).
    dist = torch.cdist(means, vq.codebook)  # [4 clusters, 4 codes]
    assert sorted(dist.argmin(1).tolist()) == [0, 1, 2, 3]
    assert float(dist.min(1).values.max()) < 0.05
    assert float(vq(grid).perplexity) == pytest.approx(4.0, rel=1e-3)


def test_restart_puts_only_dead_codes_on_data_points():
    z = torch.arange(20.0).reshape(10, 2)
    codebook = torch.full((3, 2), -5.0)
    size = torch.tensor([5.0, 0.1, 0.0])
    new, new_size, new_sum, dead = restart_dead_codes(codebook, size, codebook * 5, z, 1.0)
    assert dead.tolist() == [False, True, True]
    torch.testing.assert_close(new[0], codebook[0])
    for k in (1, 2):
        assert any(torch.equal(new[k], row) for row in z)
        assert new_size[k] == 1.0 and torch.equal(new_sum[k], new[k])


def test_perplexity_counts_effective_codes():
    assert float(perplexity(torch.tensor([5.0, 5.0, 5.0, 5.0]))) == pytest.approx(4.0)
    assert float(perplexity(torch.tensor([9.0, 0.0, 0.0]))) == pytest.approx(1.0)


def test_code_prior_is_causal_and_normalised():
    torch.manual_seed(0)
    prior = CodePrior(num_codes=5, grid_shape=(3, 4), width=16, layers=2, heads=2)
    c = torch.randint(0, 5, (2, 3, 4))
    logits = prior.logits(c).reshape(2, 12, 5)
    changed = c.clone()
    changed.view(2, 12)[:, 6] = (changed.view(2, 12)[:, 6] + 1) % 5  # change position 6
    after = prior.logits(changed).reshape(2, 12, 5)
    torch.testing.assert_close(after[:, :7], logits[:, :7])  # positions <= 6 cannot see it
    assert not torch.allclose(after[:, 7:], logits[:, 7:])
    # log p(c) sums the conditionals: all 5^2 grids of a 1x2 prior sum to probability 1.
    small = CodePrior(num_codes=5, grid_shape=(1, 2), width=16, layers=1, heads=2)
    grids = torch.tensor(list(itertools.product(range(5), repeat=2))).reshape(25, 1, 2)
    with torch.no_grad():
        total = float(small.log_prob(grids).exp().sum())
    assert total == pytest.approx(1.0, rel=1e-5)


def test_prior_samples_decode_to_images_and_learn_a_fixed_grid():
    torch.manual_seed(0)
    cfg = {"codebook_size": 4, "code_dim": 4, "channels": 8, "prior_width": 16, "prior_layers": 1}
    model = build_model(cfg, "vq_vae", (1, 28, 28))
    assert model.grid_shape == (7, 7)
    images = model.sample(3, torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    # Data generated from a known distribution: one fixed grid. The fitted prior samples it.
    target = (torch.arange(49).reshape(1, 7, 7) * 3 // 7) % 4
    opt = torch.optim.Adam(model.prior.parameters(), lr=3e-2)
    for _ in range(60):
        loss = -model.prior.log_prob(target.expand(8, 7, 7)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    codes = model.prior.sample(4, torch.Generator().manual_seed(1))
    assert torch.equal(codes, target.expand(4, 7, 7))
    decoded = model.decode_codes(codes)
    torch.testing.assert_close(decoded, model.decode_codes(target).expand(4, -1, -1, -1))

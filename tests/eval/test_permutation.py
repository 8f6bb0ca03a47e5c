"""Permutation solving: exact optimum (vs brute force), subset selection, non-finite scores."""

import itertools

import numpy as np
import pytest

from vae_audio.errors import VaeAudioError
from vae_audio.eval import solve_permutation


def _brute_force(scores: np.ndarray) -> float:
    n_ref, n_est = scores.shape
    return max(
        scores[np.arange(n_ref), list(p)].mean()
        for p in itertools.permutations(range(n_est), n_ref)
    )


@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (2, 3), (3, 5), (1, 4)])
def test_matches_brute_force_optimum(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        scores = rng.normal(0.0, 10.0, shape)
        result = solve_permutation(scores)
        assert result.mean_score == pytest.approx(_brute_force(scores), abs=1e-12)
        assert sorted(set(result.perm.tolist()) | set(result.dropped)) == list(range(shape[1]))
        assert len(result.dropped) == shape[1] - shape[0]


def test_recovers_shuffle_of_diagonal_scores():
    rng = np.random.default_rng(0)
    order = rng.permutation(4)  # estimate order[k] is reference k
    scores = rng.normal(0.0, 1.0, (4, 4))
    scores[np.arange(4), order] += 30.0
    result = solve_permutation(scores)
    np.testing.assert_array_equal(result.perm, order)
    assert result.dropped == ()
    np.testing.assert_array_equal(result.scores, scores[np.arange(4), order])


def test_subset_drops_the_worst_estimate_and_reports_it():
    # 3 estimates for 2 references: estimate 1 matches nothing (e.g. a noise slot).
    scores = np.array([[0.5, -3.0, 20.0], [18.0, -2.0, 1.0]])
    result = solve_permutation(scores)
    np.testing.assert_array_equal(result.perm, [2, 0])
    assert result.dropped == (1,)
    assert result.mean_score == pytest.approx(19.0)


def test_nan_and_minus_inf_are_never_preferred_and_inf_always_is():
    scores = np.array([[np.nan, 5.0, -np.inf], [np.inf, 4.0, 3.0]])
    result = solve_permutation(scores)
    np.testing.assert_array_equal(result.perm, [1, 0])
    assert result.dropped == (2,)


def test_fewer_estimates_than_references_is_an_error():
    with pytest.raises(VaeAudioError, match="1 estimate.*2 reference"):
        solve_permutation(np.zeros((2, 1)))

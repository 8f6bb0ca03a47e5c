"""A toy ground-truth data set whose observations are the factors themselves."""

import numpy as np

from vae_audio.image.datasets import GroundTruthData


class IdentityData(GroundTruthData):
    """``K`` factors with ``n`` values each; the observation is the factor vector itself
    (as disentanglement_lib's ``IdentityObservationsData``)."""

    def __init__(self, num_factors: int = 4, num_values: int = 10):
        self.sizes = [num_values] * num_factors

    @property
    def factors_num_values(self):
        return self.sizes

    @property
    def observation_shape(self):
        return (len(self.sizes),)

    def sample_observations_from_factors(self, factors, random_state):
        return np.asarray(factors, dtype=np.float32)

"""Shared fixtures of the image tests."""

import pytest

from .toy_data import IdentityData


@pytest.fixture
def identity_data():
    return IdentityData()

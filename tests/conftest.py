"""Shared fixtures and helpers for the engine tests (kernels, backprop, model, training, CLI)."""
import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, split as ``pckernels.load_dataset("digits")`` does."""
    from pckernels.data import load_dataset
    return load_dataset("digits")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)

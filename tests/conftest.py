"""Shared fixtures. TensorFlow's start-up chatter is silenced before it is imported."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mnist():
    """MNIST from $VAELIB_DATA (or the keras cache)."""
    import vaelib

    return vaelib.load_mnist()


@pytest.fixture
def binary_batch():
    rng = np.random.default_rng(0)
    return (rng.random((16, 28, 28)) < 0.3).astype(np.float32)


@pytest.fixture
def linear_gaussian():
    """A linear-Gaussian model (N_z = 3, 6-dimensional x), whose posterior and evidence are known exactly."""
    import vaelib

    return vaelib.LinearGaussianModel.random(latent_dim=3, data_dim=6, noise_std=0.7, seed=0)

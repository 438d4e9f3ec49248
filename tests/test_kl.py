"""The closed-form KL against TFP's, and the Monte Carlo estimate against the closed form."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import vaelib
from vaelib.kl import diagonal_gaussian, standard_normal

tfd = tfp.distributions


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_closed_form_matches_tfp(dtype, rtol):
    # rtol: float64 rounding over ~10 terms is ~1e-15; float32 is ~1e-7, with margin for the sum.
    rng = np.random.default_rng(1)
    mean = rng.normal(0, 2, size=(50, 8)).astype(dtype)
    log_var = rng.normal(0, 1.5, size=(50, 8)).astype(dtype)
    ours = vaelib.gaussian_kl(mean, log_var).numpy()
    q = tfd.MultivariateNormalDiag(loc=mean, scale_diag=np.exp(0.5 * log_var))
    truth = tfd.kl_divergence(q, tfd.MultivariateNormalDiag(loc=np.zeros(8, dtype))).numpy()
    assert ours.shape == (50,)
    np.testing.assert_allclose(ours, truth, rtol=rtol)


def test_kl_is_zero_only_at_the_prior():
    assert vaelib.gaussian_kl(np.zeros((1, 3)), np.zeros((1, 3))).numpy() == pytest.approx([0.0])
    assert vaelib.gaussian_kl(np.full((1, 3), 0.1), np.zeros((1, 3))).numpy()[0] > 0


def test_monte_carlo_kl_within_standard_errors():
    rng = np.random.default_rng(2)
    mean = rng.normal(0, 1, size=(20, 5))
    log_var = rng.normal(0, 0.5, size=(20, 5))
    estimate, stderr = vaelib.monte_carlo_kl(mean, log_var, num_samples=4000, seed=3, return_stderr=True)
    exact = vaelib.gaussian_kl(mean, log_var)
    # The estimator is unbiased with ~Gaussian error at L=4000: |z| < 4 fails with probability ~6e-5 each.
    z = ((estimate - exact) / stderr).numpy()
    assert np.all(np.abs(z) < 4), z
    assert np.all(stderr.numpy() < 0.1)


def test_monte_carlo_kl_is_reproducible_with_a_seed():
    mean, log_var = np.ones((2, 3)), np.zeros((2, 3))
    a = vaelib.monte_carlo_kl(mean, log_var, 10, seed=5).numpy()
    b = vaelib.monte_carlo_kl(mean, log_var, 10, seed=5).numpy()
    np.testing.assert_array_equal(a, b)


def test_kl_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        vaelib.gaussian_kl(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="num_samples"):
        vaelib.monte_carlo_kl(np.zeros((2, 3)), np.zeros((2, 3)), num_samples=0)
    with pytest.raises(TypeError, match="num_samples"):
        vaelib.monte_carlo_kl(np.zeros((2, 3)), np.zeros((2, 3)), num_samples=2.5)


def test_distribution_shapes():
    q = diagonal_gaussian(tf.zeros((4, 3)), tf.zeros((4, 3)))
    assert q.batch_shape == (4,) and q.event_shape == (3,)
    prior = standard_normal(3)
    assert prior.batch_shape == () and prior.event_shape == (3,)

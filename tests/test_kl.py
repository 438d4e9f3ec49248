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


@pytest.mark.parametrize("batch_shape", [(), (1,), (4,), (5, 4)])
@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_reparameterized_sample_draws_tfps_numbers_and_gradients(batch_shape, mode):
    """The same z as q.sample at the same stateless seed, bit for bit, and the same gradients in mu and sigma.

    Bit for bit because the draws are the same Philox numbers, moved and scaled by the same operations;
    under XLA the generator's numbers depend on the shape of the draw, so this also checks the shape.
    """
    mean = tf.Variable(tf.random.stateless_normal((*batch_shape, 20), seed=[1, 2]))
    log_var = tf.Variable(tf.random.stateless_normal((*batch_shape, 20), seed=[3, 4]))
    seed = tf.constant([4, 5])

    def both():
        with tf.GradientTape(persistent=True) as tape:
            q = diagonal_gaussian(mean, log_var)
            ours, tfps = vaelib.reparameterized_sample(q, 7, seed), q.sample(7, seed=seed)
            f_ours, f_tfps = tf.reduce_sum(tf.sin(ours)), tf.reduce_sum(tf.sin(tfps))
        return ours, tfps, tape.gradient(f_ours, [mean, log_var]), tape.gradient(f_tfps, [mean, log_var])

    run = both if mode == "eager" else tf.function(both, jit_compile=mode == "xla")
    ours, tfps, grad_ours, grad_tfps = run()
    assert ours.shape == (7, *batch_shape, 20)
    np.testing.assert_array_equal(ours, tfps)
    for a, b in zip(grad_ours, grad_tfps):
        np.testing.assert_array_equal(a, b)


def test_reparameterized_sample_leaves_other_distributions_to_tfp():
    seed = tf.constant([4, 5])
    for q in (standard_normal(3), tfp.distributions.Normal(tf.zeros(4), 1.0)):  # identity scale; not MVN
        np.testing.assert_array_equal(vaelib.reparameterized_sample(q, 6, seed), q.sample(6, seed=seed))

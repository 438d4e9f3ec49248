"""Full-covariance and best diagonal Gaussian encoders on the linear-Gaussian model, against independent truths."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import vaelib
from vaelib.kl import diagonal_gaussian

tfd = tfp.distributions


@pytest.fixture
def model(linear_gaussian):
    return linear_gaussian


@pytest.fixture
def data(model):
    return model.sample_data(5, seed=1)


def random_full_covariance_q(n, k, seed):
    """A full-covariance Gaussian q with random means and random lower-triangular factors."""
    rng = np.random.default_rng(seed)
    tril = np.tril(rng.normal(0, 0.5, (n, k, k)), -1) + np.einsum(
        "nk,kj->nkj", rng.uniform(0.3, 1.5, (n, k)), np.eye(k)
    )
    return tfd.MultivariateNormalTriL(loc=tf.constant(rng.normal(0, 1, (n, k))), scale_tril=tf.constant(tril))


def test_exact_bound_of_a_full_covariance_q_matches_monte_carlo(model, data):
    # Independent truth: the average of log p(x, z) - log q(z) over z ~ q, by sampling, not the closed form.
    q = random_full_covariance_q(5, 3, seed=2)
    num_samples = 200_000
    z = q.sample(num_samples, seed=3)  # (L, N, K)
    log_ratio = (model.decode(z).log_prob(data) + model.prior.log_prob(z) - q.log_prob(z)).numpy()
    mean, stderr = log_ratio.mean(axis=0), log_ratio.std(axis=0, ddof=1) / np.sqrt(num_samples)
    exact = model.exact_elbo(data, q).numpy()
    # an unbiased mean of 200,000 draws: |z| > 4.5 has probability below 1e-5 for each of the 5 points
    assert np.all(np.abs(mean - exact) < 4.5 * stderr), (mean - exact) / stderr
    # and log p(x) = L_B + KL(q || p(z|x)) with the full covariance too (float64 rounding)
    gap = tfd.kl_divergence(q, model.posterior(data)).numpy()
    np.testing.assert_allclose(exact + gap, model.log_marginal(data).numpy(), atol=1e-9)


def test_best_diagonal_gaussian_is_the_mean_field_optimum(model, data):
    posterior = model.posterior(data)
    best = vaelib.best_diagonal_gaussian(posterior)
    assert isinstance(best, tfd.MultivariateNormalDiag)
    assert best.batch_shape == posterior.batch_shape == (5,) and best.event_shape == (3,)
    assert best.dtype == tf.float64
    # closed form, computed here with NumPy: mean m, variances 1 / diag(Sigma^{-1})
    covariance = posterior.covariance().numpy()
    precision = np.linalg.inv(covariance)
    np.testing.assert_allclose(best.mean().numpy(), posterior.mean().numpy(), atol=1e-12)
    np.testing.assert_allclose(best.variance().numpy(), 1 / np.einsum("nii->ni", precision), rtol=1e-10)
    # the gap it leaves: tfp's KL against 1/2 (sum_i log Lambda_ii - log det Lambda), and against log p(x) - L_B
    kl = tfd.kl_divergence(best, posterior).numpy()
    closed = 0.5 * (np.log(np.einsum("nii->ni", precision)).sum(-1) - np.linalg.slogdet(precision)[1])
    np.testing.assert_allclose(kl, closed, atol=1e-10)
    np.testing.assert_allclose(model.log_marginal(data).numpy() - model.exact_elbo(data, best).numpy(), kl, atol=1e-9)
    assert np.all(kl > 0.01)  # this posterior is correlated
    assert np.all(best.variance().numpy() < np.einsum("nii->ni", covariance))  # under-dispersed


def test_no_diagonal_gaussian_has_a_higher_bound(model, data):
    # Independent truth: gradient ascent on the closed-form bound over diagonal q, from the prior,
    # ends where the closed form says, and random diagonal q all have lower bounds.
    posterior = model.posterior(data)
    best = vaelib.best_diagonal_gaussian(posterior)
    mean, log_var = tf.Variable(np.zeros((5, 3))), tf.Variable(np.zeros((5, 3)))
    optimizer = tf.keras.optimizers.Adam(0.05)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = -tf.reduce_sum(model.exact_elbo(data, diagonal_gaussian(mean, log_var)))
        optimizer.apply_gradients(zip(tape.gradient(loss, [mean, log_var]), [mean, log_var]))

    for _ in range(3000):
        step()
    np.testing.assert_allclose(mean.numpy(), best.mean().numpy(), atol=1e-4)
    np.testing.assert_allclose(np.exp(log_var.numpy()), best.variance().numpy(), rtol=1e-3)
    top = model.exact_elbo(data, best).numpy()
    rng = np.random.default_rng(4)
    for _ in range(20):
        other = diagonal_gaussian(
            best.mean() + rng.normal(0, 0.1, (5, 3)), tf.math.log(best.variance()) + rng.normal(0, 0.1, (5, 3))
        )
        assert np.all(model.exact_elbo(data, other).numpy() < top)


def test_no_gap_when_the_posterior_is_already_diagonal():
    # W with orthogonal columns: Sigma = (I + W^T W / s^2)^{-1} is diagonal, and q* is the posterior.
    weights = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    model = vaelib.LinearGaussianModel(weights, np.zeros(3), noise_std=0.5)
    x = model.sample_data(3, seed=0)
    posterior = model.posterior(x)
    best = vaelib.best_diagonal_gaussian(posterior)
    np.testing.assert_allclose(best.covariance().numpy(), posterior.covariance().numpy(), atol=1e-12)
    np.testing.assert_allclose(tfd.kl_divergence(best, posterior).numpy(), 0.0, atol=1e-12)


def test_best_diagonal_gaussian_keeps_float32_and_a_single_distribution():
    target = tfd.MultivariateNormalTriL(loc=tf.zeros(2), scale_tril=tf.constant([[1.0, 0.0], [0.9, 0.5]]))
    best = vaelib.best_diagonal_gaussian(target)
    assert best.dtype == tf.float32 and best.batch_shape == () and best.event_shape == (2,)
    precision = np.linalg.inv(target.covariance().numpy())
    np.testing.assert_allclose(best.variance().numpy(), 1 / np.diag(precision), rtol=1e-5)


def test_best_diagonal_gaussian_bad_input():
    with pytest.raises(TypeError, match="multivariate normal"):
        vaelib.best_diagonal_gaussian(tfd.Independent(tfd.Normal(tf.zeros(2), 1.0), 1))
    with pytest.raises(TypeError, match="multivariate normal"):
        vaelib.best_diagonal_gaussian(np.eye(2))
    singular = tfd.MultivariateNormalTriL(
        loc=tf.zeros(2, tf.float64), scale_tril=tf.constant([[1.0, 0.0], [1.0, 0.0]], tf.float64)
    )
    with pytest.raises(ValueError, match="positive definite"):
        vaelib.best_diagonal_gaussian(singular)

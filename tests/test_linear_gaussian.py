"""log p(x) = L_B + KL(q || p(z|x)) on the linear-Gaussian model, whose posterior is known exactly."""

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
    return model.sample_data(40, seed=1)


def random_q(n, k, seed):
    rng = np.random.default_rng(seed)
    return diagonal_gaussian(tf.constant(rng.normal(0, 1, (n, k))), tf.constant(rng.normal(-1, 1, (n, k))))


def test_posterior_matches_gaussian_conditioning(model, data):
    # Independent truth: condition the joint Gaussian of (z, x) directly (no Woodbury identity).
    w, b, s2 = model.weights.numpy(), model.bias.numpy(), model.noise_std**2
    cov_x = w @ w.T + s2 * np.eye(6)
    gain = w.T @ np.linalg.inv(cov_x)
    post = model.posterior(data)
    np.testing.assert_allclose(post.mean().numpy(), (data - b) @ gain.T, atol=1e-10)
    np.testing.assert_allclose(post.covariance().numpy()[0], np.eye(3) - gain @ w, atol=1e-10)
    assert post.batch_shape == (40,) and post.event_shape == (3,)


def test_evidence_decomposition_for_any_gaussian_q(model, data):
    q = random_q(40, 3, seed=2)
    bound = model.exact_elbo(data, q).numpy()
    gap = tfd.kl_divergence(q, model.posterior(data)).numpy()
    log_px = model.log_marginal(data).numpy()
    # float64 throughout: the identity holds to ~1e-12; 1e-4 is the book's stated tolerance.
    np.testing.assert_allclose(bound + gap, log_px, atol=1e-4)
    assert np.all(gap > 0) and np.all(bound < log_px)


def test_bound_is_tight_at_the_exact_posterior(model, data):
    post = model.posterior(data)
    np.testing.assert_allclose(model.exact_elbo(data, post).numpy(), model.log_marginal(data).numpy(), atol=1e-8)
    # With q = p(z|x), log p(x, z) - log q(z|x) = log p(x) for every z: the MC bound has zero variance.
    estimates = [vaelib.elbo(model, data, num_samples=1, kl="mc", seed=s).numpy() for s in range(5)]
    np.testing.assert_allclose(np.array(estimates), np.tile(model.log_marginal(data).numpy(), (5, 1)), atol=1e-8)


def test_monte_carlo_bound_is_unbiased(model, data):
    q = random_q(40, 3, seed=3)
    draw = tf.function(lambda seed: vaelib.elbo(model, data, num_samples=1, posterior=q, seed=seed))  # traced once
    draws = np.stack([draw(tf.constant([s, 0])).numpy() for s in range(400)])
    stderr = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    z = (draws.mean(axis=0) - model.exact_elbo(data, q).numpy()) / stderr
    # 40 independent ~N(0,1) scores: all inside 4.5 fails with probability < 3e-4.
    assert np.all(np.abs(z) < 4.5), z


def test_iwae_is_above_the_elbo_and_approaches_log_px(model, data):
    q = random_q(40, 3, seed=4)
    log_px = model.log_marginal(data).numpy()
    elbo = model.exact_elbo(data, q).numpy().mean()
    bounds = {
        k: np.mean([vaelib.iwae_bound(model, data, k, seed=s, posterior=q).numpy().mean() for s in range(20)])
        for k in (1, 10, 100, 5000)
    }
    # L_1 = ELBO; L_k increases with k; L_5000 has closed most of the gap to log p(x).
    assert abs(bounds[1] - elbo) < 0.05 * abs(log_px.mean() - elbo)
    assert bounds[1] < bounds[10] < bounds[100] < bounds[5000] <= log_px.mean() + 0.01
    assert log_px.mean() - bounds[5000] < 0.1 * (log_px.mean() - elbo)


def test_log_likelihood_estimator_agrees_with_exact_evidence(model, data):
    # The encoder is the exact posterior, so every importance weight equals p(x): exact for any k.
    estimate = vaelib.log_likelihood(model, data, num_samples=50, batch_size=7, sample_batch_size=8, seed=0)
    np.testing.assert_allclose(estimate, model.log_marginal(data).numpy(), atol=1e-8)


def test_linear_gaussian_bad_input(model):
    with pytest.raises(ValueError, match="shape"):
        model.log_marginal(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        model.log_marginal(np.full((3, 6), np.nan))
    with pytest.raises(ValueError, match="noise_std"):
        vaelib.LinearGaussianModel(np.ones((2, 1)), np.zeros(2), 0.0)
    with pytest.raises(ValueError, match="bias"):
        vaelib.LinearGaussianModel(np.ones((2, 1)), np.zeros(3), 1.0)


def test_maximum_likelihood_is_where_the_exact_log_likelihood_is_flat_and_highest():
    """Tipping & Bishop's closed form, checked against the exact evidence: the gradient of the mean log p(x)
    with respect to W and b vanishes there (float64 round-off), and random moves of W and b, large and
    small, all lower it."""
    x = vaelib.LinearGaussianModel.random(latent_dim=2, data_dim=5, noise_std=0.7, seed=1).sample_data(500, seed=3)
    best = vaelib.LinearGaussianModel.maximum_likelihood(x, 2, 0.7)
    weights, bias = tf.Variable(best.weights), tf.Variable(best.bias)
    with tf.GradientTape() as tape:
        cov = tf.matmul(weights, weights, transpose_b=True) + 0.49 * tf.eye(5, dtype=tf.float64)
        mean_log_px = tf.reduce_mean(tfd.MultivariateNormalTriL(bias, tf.linalg.cholesky(cov)).log_prob(x))
    for gradient in tape.gradient(mean_log_px, [weights, bias]):
        assert np.abs(gradient.numpy()).max() < 1e-8
    rng = np.random.default_rng(0)
    value = float(np.mean(best.log_marginal(x)))
    for scale in (1e-3, 0.1, 1.0):
        weights = best.weights.numpy() + scale * rng.standard_normal((5, 2))
        moved = vaelib.LinearGaussianModel(weights, best.bias.numpy() + scale * rng.standard_normal(5), 0.7)
        assert float(np.mean(moved.log_marginal(x))) < value
    with pytest.raises(ValueError, match="latent_dim"):
        vaelib.LinearGaussianModel.maximum_likelihood(x, 6, 0.7)


def test_probabilistic_pca_is_the_linear_gaussian_model_it_reports():
    model = vaelib.ProbabilisticPCA(data_dim=5, latent_dim=2, noise_std=0.7)
    z = np.array([[0.5, -1.0], [2.0, 0.1], [0.0, 0.0]], np.float32)
    x = np.array([[1.0, 0.0, -1.0, 2.0, 0.5]], np.float32)
    exact = model.as_linear_gaussian()
    np.testing.assert_allclose(model.decode(z).log_prob(x).numpy(), exact.decode(z).log_prob(x).numpy(), rtol=1e-5)
    assert model.decode(np.zeros((4, 3, 2), np.float32)).batch_shape == (4, 3)  # leading dimensions, as HMC's
    with pytest.raises(ValueError, match="noise_std"):
        vaelib.ProbabilisticPCA(5, 2, 0.0)

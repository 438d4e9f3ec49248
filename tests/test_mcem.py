"""Monte Carlo EM: HMC draws in the E-step, decoder updates in the M-step, towards maximum likelihood."""

import keras
import numpy as np
import pytest

import vaelib
from vaelib import make_stream
from vaelib.paper import MonteCarloEM


def test_monte_carlo_em_reaches_the_maximum_likelihood_of_probabilistic_pca():
    """With the noise fixed, p(x) = N(b, W W^T + s^2 I) is maximised by b = the data's mean and
    W = U (Lambda - s^2 I)^(1/2) (Tipping & Bishop 1999: U, Lambda the top eigenvectors and eigenvalues of the
    data's covariance), so the exact log-likelihood of MCEM's W and b can be set against the optimum's.
    From 3.9 nats per point below it, 600 minibatches (each: an HMC transition per point, 5 Adam updates)
    came within 0.007; Monte Carlo noise keeps it from the optimum itself, so within 0.05 is required."""
    truth = vaelib.LinearGaussianModel.random(latent_dim=2, data_dim=5, noise_std=0.7, seed=1)
    x = truth.sample_data(500, seed=3).astype(np.float32)
    best = float(np.mean(vaelib.LinearGaussianModel.maximum_likelihood(x, 2, 0.7).log_marginal(x)))

    keras.utils.set_random_seed(0)
    generative = vaelib.ProbabilisticPCA(5, 2, 0.7)
    start = float(np.mean(generative.as_linear_gaussian().log_marginal(x)))
    em = MonteCarloEM(generative, dataset_size=len(x), seed=0)
    em.compile(optimizer=keras.optimizers.Adam(0.02))
    history = em.fit(
        make_stream(x, "gaussian", 100, seed=0, with_index=True),
        steps_per_epoch=100,
        epochs=6,
        verbose=0,
    )
    end = float(np.mean(generative.as_linear_gaussian().log_marginal(x)))
    assert best - start > 3.0 and best - end < 0.05, (start, end, best)
    assert 0.8 < history.history["acceptance"][-1] < 0.97  # the step sizes adapted to about 90%
    assert int(em.transitions.numpy()) == 600 and em.chains.shape == (500, 2)


def test_monte_carlo_em_trains_a_vae_decoder_and_needs_the_positions():
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    x = (np.random.default_rng(0).random((40, 28, 28)) < 0.3).astype(np.float32)
    em = MonteCarloEM(model, dataset_size=40, weight_decay=1 / 40)
    em.compile(optimizer=keras.optimizers.Adagrad(0.02))
    encoder_before = [v.numpy().copy() for v in model.encoder.trainable_variables]
    decoder_before = [v.numpy().copy() for v in model.decoder.trainable_variables]
    em.fit(make_stream(x, "bernoulli", 20, seed=0, with_index=True), steps_per_epoch=2, epochs=1, verbose=0)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(encoder_before, model.encoder.trainable_variables))
    assert not all(np.array_equal(a, v.numpy()) for a, v in zip(decoder_before, model.decoder.trainable_variables))
    assert np.all(np.isfinite(em.chains.numpy())) and np.any(em.chains.numpy() != 0)
    with pytest.raises(ValueError, match="with_index=True"):
        em.fit(make_stream(x, "bernoulli", 20, seed=0), steps_per_epoch=1, epochs=1, verbose=0)
    for bad in (
        {"dataset_size": 0},
        {"dataset_size": 40, "target_accept": 1.0},
        {"dataset_size": 40, "target_accept": float("nan")},
        {"dataset_size": 40, "weight_updates": 0},
        {"dataset_size": 40, "weight_decay": -0.1},
        {"dataset_size": 40, "weight_decay": float("nan")},
    ):
        with pytest.raises(ValueError):
            MonteCarloEM(model, **bad)
    with pytest.raises(TypeError, match="weight_decay"):
        MonteCarloEM(model, dataset_size=40, weight_decay="1/40")
    with pytest.raises(TypeError, match="target_accept"):
        MonteCarloEM(model, dataset_size=40, target_accept=None)


def test_the_m_step_loss_is_minus_the_mean_log_joint_plus_the_decoders_weight_penalty():
    """-(1/M) sum log p(x, z) + (lambda/2)||theta||^2, theta the decoder's weights only (the encoder takes no part)."""
    model = vaelib.VAE.mlp(data_shape=(4,), latent_dim=2, hidden_units=(3,))
    x = np.array([[0, 1, 1, 0], [1, 1, 0, 0]], np.float32)
    z = np.array([[0.3, -1.0], [1.2, 0.4]], np.float32)
    em = MonteCarloEM(model, dataset_size=2, weight_decay=0.5)
    log_joint = model.prior.log_prob(z) + model.decode(z).log_prob(x)
    squares = sum(float(np.sum(v.numpy() ** 2)) for v in model.decoder.trainable_variables)
    expected = -float(np.mean(log_joint)) + 0.25 * squares
    np.testing.assert_allclose(float(em.decoder_loss(x, z)), expected, rtol=1e-6)

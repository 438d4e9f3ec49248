"""Score-function and reparameterisation gradients agree in expectation; the latter varies less."""

import numpy as np
import pytest
import tensorflow as tf

import vaelib


def square(z):
    return tf.reduce_sum(tf.square(z), axis=-1)


MEAN = np.array([[0.5, -1.0, 2.0]])
LOG_VAR = np.array([[0.0, -1.0, 0.5]])


def test_both_estimators_are_unbiased_and_reparameterisation_varies_less():
    # E_q[sum z^2] = sum mu^2 + sigma^2: gradient 2 mu w.r.t. mu and sigma^2 w.r.t. log sigma^2.
    truth_mu, truth_log_var = 2 * MEAN, np.exp(LOG_VAR)
    repeats = 4000
    moments = {
        name: vaelib.gradient_moments(name, square, MEAN, LOG_VAR, num_samples=1, num_repeats=repeats, seed=1)
        for name in ("score_function", "reparameterization")
    }
    for m in moments.values():
        for key, truth in (("mu", truth_mu), ("log_var", truth_log_var)):
            stderr = np.sqrt(m[f"var_{key}"].numpy() / repeats)
            # 6 components per estimator, each mean of 4000 draws: |z| < 4.5 fails with probability < 1e-4.
            assert np.all(np.abs(m[f"mean_{key}"].numpy() - truth) < 4.5 * stderr)
    for key in ("var_mu", "var_log_var"):
        assert np.all(moments["reparameterization"][key].numpy() < moments["score_function"][key].numpy())


def test_reparameterisation_gradient_of_a_linear_function_is_exact():
    # f(z) = sum z: the reparameterised gradient w.r.t. mu is 1 for every draw (zero variance).
    g_mu, _ = vaelib.reparameterization_gradient(lambda z: tf.reduce_sum(z, -1), MEAN, LOG_VAR, 3, seed=0)
    np.testing.assert_allclose(g_mu.numpy(), np.ones_like(MEAN), atol=1e-12)


def test_gradient_of_a_vae_decoder_objective(binary_batch):
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(16,))
    mean, log_var = model.encoder_outputs(binary_batch[:4])

    def log_lik(z):
        return model.decode(z).log_prob(binary_batch[:4])

    for name in ("score_function", "reparameterization"):
        m = vaelib.gradient_moments(name, log_lik, mean, log_var, num_samples=1, num_repeats=50, seed=2)
        assert m["mean_mu"].shape == (4, 2) and np.all(np.isfinite(m["var_mu"].numpy()))


def test_gradient_bad_input():
    with pytest.raises(ValueError, match="estimator"):
        vaelib.gradient_moments("pathwise", square, MEAN, LOG_VAR)
    with pytest.raises(ValueError, match="num_repeats"):
        vaelib.gradient_moments("score_function", square, MEAN, LOG_VAR, num_repeats=1)
    with pytest.raises(ValueError, match="same shape"):
        vaelib.score_function_gradient(square, MEAN, LOG_VAR[:, :2])
    with pytest.raises(ValueError, match="f must map"):
        vaelib.score_function_gradient(lambda z: z, MEAN, LOG_VAR)

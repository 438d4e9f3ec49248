"""Training objectives beyond the plain bound: IWAE, the weight prior p(theta), and their checks."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import vaelib
from vaelib.bound import iwae_terms


def test_iwae_terms_are_exact_when_q_is_the_true_posterior():
    # With q(z|x) = p(z|x) every weight p(x, z)/q(z|x) equals p(x): L_k = L_1 = log p(x) for every draw.
    model = vaelib.LinearGaussianModel.random(latent_dim=2, data_dim=5, noise_std=0.4, seed=1)
    x = tf.constant(model.sample_data(30, seed=2))
    terms = iwae_terms(model, x, num_samples=7, seed=3)
    truth = model.log_marginal(x).numpy()
    np.testing.assert_allclose(terms["iwae"], truth, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms["elbo"], truth, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms["elbo"], terms["reconstruction"] - terms["kl"], rtol=1e-5, atol=1e-5)


def test_iwae_terms_match_iwae_bound_and_sit_above_the_elbo(binary_batch):
    model = vaelib.VAE.mlp(latent_dim=3, hidden_units=(8,))
    x = model.check_data(binary_batch)
    terms = iwae_terms(model, x, num_samples=10, seed=4)
    np.testing.assert_allclose(terms["iwae"], vaelib.iwae_bound(model, x, 10, seed=4), rtol=1e-5)
    # log of a mean of weights >= mean of their logs (Jensen), draw by draw
    assert np.all(terms["iwae"].numpy() >= terms["elbo"].numpy() - 1e-4)
    # with one sample the two coincide
    one = iwae_terms(model, x, num_samples=1, seed=5)
    np.testing.assert_allclose(one["iwae"], one["elbo"], rtol=1e-6)


def test_fit_trains_on_the_iwae_bound(mnist):
    (x_train, _), (x_test, _) = mnist
    x_eval = vaelib.fixed_binarize(x_test[:500])
    keras.utils.set_random_seed(0)
    model = vaelib.VAE.mlp(latent_dim=5, hidden_units=(64,))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), objective=vaelib.IWAE(5))
    before = vaelib.iwae_bound(model, x_eval, 5, seed=0).numpy().mean()
    history = model.fit(vaelib.make_dataset(x_train[:5000], "bernoulli", batch_size=100), epochs=2, verbose=0)
    after = vaelib.iwae_bound(model, x_eval, 5, seed=0).numpy().mean()
    # an untrained decoder sits near 784 log(1/2) = -543 nats; two epochs gain well over 100 nats
    assert after > before + 100
    # the reported loss is -L_5, and L_5 >= L_1, so the loss is below the reported negative ELBO
    assert history.history["loss"][-1] < -history.history["elbo"][-1]


def test_objectives_are_objects_with_checked_options():
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    for name in ("vi", "iwae"):  # a name other than "elbo": say which object to pass
        with pytest.raises(ValueError, match="objective"):
            model.compile(objective=name)
    with pytest.raises(TypeError):
        vaelib.IWAE(num_samples=5, beta=2.0)  # the IWAE bound has no KL weight
    for bad, error in ((0, ValueError), (2.5, TypeError)):
        with pytest.raises(error, match="num_samples"):
            vaelib.IWAE(bad)
    with pytest.raises(TypeError, match="beta"):
        vaelib.ELBO(beta="1")


def test_weight_decay_adds_the_log_prior_of_the_weights(binary_batch):
    # loss = -mean ELBO + (lambda / 2) sum theta^2: the terms come back with the loss, so the difference is exact
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    model.compile(weight_decay=0.01)
    loss, terms = model._loss_and_terms(model.check_data(binary_batch))
    assert math.isclose(
        float(model.weight_penalty()),
        0.005 * sum(float(tf.reduce_sum(v**2)) for v in model.trainable_variables),
        rel_tol=1e-5,
    )
    squares = sum(float(tf.reduce_sum(v**2)) for v in model.trainable_variables)
    elbo_loss = -float(tf.reduce_mean(terms["reconstruction"] - terms["kl"]))
    assert math.isclose(float(loss) - elbo_loss, 0.005 * squares, rel_tol=1e-4)
    # and (1/2)|theta|^2 is -log N(theta; 0, I) up to the constant (D/2) log 2 pi (TFP's density as the truth)
    theta = np.concatenate([v.numpy().ravel() for v in model.trainable_variables]).astype(np.float64)
    log_prior = float(tf.reduce_sum(tfp.distributions.Normal(np.float64(0), np.float64(1)).log_prob(theta)))
    assert math.isclose(0.5 * squares, -log_prior - 0.5 * theta.size * np.log(2 * np.pi), rel_tol=1e-5)


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_weight_decay_must_be_finite_and_non_negative(value):
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    with pytest.raises(ValueError, match="weight_decay"):
        model.compile(weight_decay=value)


def test_weight_decay_must_be_a_number():
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    with pytest.raises(TypeError, match="weight_decay"):
        model.compile(weight_decay="0.01")


def test_compile_options_survive_saving(tmp_path):
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    model.compile(optimizer="adagrad", objective=vaelib.IWAE(5), weight_decay=1e-4)
    x = (np.random.default_rng(0).random((20, 28, 28)) < 0.5).astype("float32")
    model.fit(x, batch_size=10, epochs=1, verbose=0)  # two steps: the optimizer has state to save
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert (loaded.objective, loaded.weight_decay) == (vaelib.IWAE(5), 1e-4)
    assert int(loaded.optimizer.iterations) == 2
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())

"""The wake-sleep algorithm: each phase updates what it should, towards what it should."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import vaelib
from vaelib.paper import WakeSleep, wake_sleep_terms

tfd = tfp.distributions


class LinearRecognition(tf.Module):
    """A recognition model q(z|x) = N(A^T x + c, diag(softplus(s))^2), in float64 like the generative model."""

    def __init__(self, data_dim: int, latent_dim: int) -> None:
        self.a = tf.Variable(tf.zeros([data_dim, latent_dim], tf.float64))
        self.c = tf.Variable(tf.zeros([latent_dim], tf.float64))
        self.s = tf.Variable(tf.zeros([latent_dim], tf.float64))

    def __call__(self, x: tf.Tensor) -> tfd.MultivariateNormalDiag:
        return tfd.MultivariateNormalDiag(loc=tf.matmul(x, self.a) + self.c, scale_diag=tf.nn.softplus(self.s))


class Helmholtz:
    """A linear-Gaussian generative model with a learnable linear recognition model: the protocol of vaelib.bound."""

    def __init__(self, generative: vaelib.LinearGaussianModel, recognition: LinearRecognition) -> None:
        self.generative, self.encode = generative, recognition
        self.prior, self.decode = generative.prior, generative.decode


def expected_kl_to_posterior(model: Helmholtz, x: np.ndarray) -> float:
    r""":math:`\frac1N\sum_n \mathrm{KL}(p(z|x_n) \| q(z|x_n))`, in closed form (both are Gaussian)."""
    return float(tf.reduce_mean(tfd.kl_divergence(model.generative.posterior(x), model.encode(x))))


def test_sleep_moves_q_to_the_exact_posterior_of_a_linear_gaussian_model():
    """The sleep phase alone fits q(z|x) to the generative model's own dreams.

    Its fixed point in this family is the exact posterior mean A^T x + c = Sigma W^T (x - b) / s^2 with the
    posterior's marginal variances diag(Sigma): the diagonal Gaussian closest to p(z|x) in
    KL(p || q). There the KL is 1/2 (sum log diag Sigma - log det Sigma), the part a diagonal q cannot
    remove. From q = N(0, softplus(0)^2 I), 1,500 gradient steps (step size 0.05) on 200 dreams each must
    remove all but 2% of the rest, and bring the mean's coefficients within 0.05 of the exact ones and the
    variances within 10% (dreams are random, so q ends within Monte Carlo noise of the fixed point).
    """
    generative = vaelib.LinearGaussianModel.random(latent_dim=2, data_dim=5, noise_std=0.7, seed=1)
    model = Helmholtz(generative, LinearRecognition(5, 2))
    x_check = generative.sample_data(2000, seed=2)
    exact = generative.posterior(x_check)
    cov = exact.covariance()[0].numpy()
    floor = 0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1])
    start = expected_kl_to_posterior(model, x_check)
    variables = list(model.encode.trainable_variables)
    x_wake = tf.constant(x_check[:200])

    @tf.function
    def sleep_step(seed):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(wake_sleep_terms(model, x_wake, seed)["sleep"])
        for variable, gradient in zip(variables, tape.gradient(loss, variables)):
            variable.assign_sub(0.05 * gradient)

    for step in range(1500):
        sleep_step(tf.constant([step, 7]))
    end = expected_kl_to_posterior(model, x_check)
    assert start - floor > 0.5  # a real distance to cover
    assert end - floor < 0.02 * (start - floor), (start, end, floor)
    precision = np.eye(2) + generative.weights.numpy().T @ generative.weights.numpy() / 0.7**2
    exact_a = (np.linalg.inv(precision) @ generative.weights.numpy().T / 0.7**2).T
    np.testing.assert_allclose(model.encode.a.numpy(), exact_a, atol=0.05)
    np.testing.assert_allclose(model.encode.c.numpy(), -generative.bias.numpy() @ exact_a, atol=0.05)
    np.testing.assert_allclose(tf.nn.softplus(model.encode.s).numpy() ** 2, np.diag(cov), rtol=0.1)


def by_hand_log_joint(model: vaelib.VAE, x: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
    r""":math:`\log p(x, z)` of a one-hidden-layer tanh decoder, written out: Bernoulli logits and N(0, I)."""
    kernel_1, bias_1, kernel_2, bias_2 = model.decoder.trainable_variables
    logits = tf.matmul(tf.tanh(tf.matmul(z, kernel_1) + bias_1), kernel_2) + bias_2
    x = tf.reshape(x, [tf.shape(x)[0], -1])
    log_likelihood = tf.reduce_sum(x * logits - tf.nn.softplus(logits), axis=-1)
    log_prior = -0.5 * tf.reduce_sum(tf.square(z), axis=-1) - 0.5 * z.shape[-1] * np.log(2 * np.pi)
    return log_likelihood + log_prior


def test_the_wake_phase_follows_the_gradient_of_log_p_x_z_and_the_sleep_phase_touches_only_q(binary_batch):
    """On a tiny model: the loss's decoder gradient is -grad mean log p(x, z) at the wake draws, by hand;
    its encoder gradient is -grad mean log q(dream z | dream x), by hand; neither phase reaches the other's
    parameters. The by-hand log p(x, z) is checked against the model's too (1e-5: float32 sums)."""
    model = vaelib.VAE.mlp(data_shape=(28, 28), latent_dim=2, hidden_units=(6,))
    x = model.check_data(binary_batch)
    seed = tf.constant([3, 4])
    with tf.GradientTape(persistent=True) as tape:
        terms = wake_sleep_terms(model, x, seed)
        loss = -tf.reduce_mean(terms["wake"] + terms["sleep"])
        wake = tf.reduce_mean(terms["wake"])
        sleep = tf.reduce_mean(terms["sleep"])
        by_hand_wake = tf.reduce_mean(by_hand_log_joint(model, x, terms["z"]))
        by_hand_sleep = tf.reduce_mean(model.encode(terms["dream_x"]).log_prob(terms["dream_z"]))
    decoder, encoder = model.decoder.trainable_variables, model.encoder.trainable_variables
    np.testing.assert_allclose(wake.numpy(), by_hand_wake.numpy(), rtol=1e-5)
    for got, want in zip(tape.gradient(loss, decoder), tape.gradient(by_hand_wake, decoder)):
        np.testing.assert_allclose(got.numpy(), -want.numpy(), rtol=1e-4, atol=1e-6)
    for got, want in zip(tape.gradient(loss, encoder), tape.gradient(by_hand_sleep, encoder)):
        np.testing.assert_allclose(got.numpy(), -want.numpy(), rtol=1e-4, atol=1e-6)
    assert all(g is None for g in tape.gradient(wake, encoder))  # z is a constant of the wake phase
    assert all(g is None for g in tape.gradient(sleep, decoder))  # so is the dream of the sleep phase
    assert set(np.unique(terms["dream_x"].numpy())) <= {0.0, 1.0}  # dreams are Bernoulli draws


def test_wake_sleep_trains_with_fit_and_reports_the_bound(binary_batch):
    """compile(objective=WakeSleep()) trains: fit reports the bound's terms, and the loss is what it says."""
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    model.compile(objective=WakeSleep(), seed=5)
    history = model.fit(binary_batch, batch_size=8, epochs=2, verbose=0)
    for name in ("elbo", "kl", "reconstruction", "loss"):
        assert np.all(np.isfinite(history.history[name])), name
    # the loss is -(wake + sleep), not the negative bound
    x = model.check_data(binary_batch)
    loss, terms = model._objective(x, tf.constant([1, 2]))
    np.testing.assert_allclose(loss.numpy(), -np.mean(terms["wake"] + terms["sleep"]), rtol=1e-6)
    assert not np.isclose(loss.numpy(), -np.mean(terms["elbo"]))


@pytest.mark.parametrize("options", [{"num_samples": 2}, {"kl": "mc"}, {"beta": 0.5}])
def test_wake_sleep_takes_no_options_of_the_bound(options):
    with pytest.raises(TypeError):
        WakeSleep(**options)


def test_wake_sleep_plugs_in_from_outside_the_model(tmp_path, binary_batch):
    """The model knows no training algorithm: vaelib.model imports none, and WakeSleep saves with the model."""
    import sys

    assert "vaelib.paper.wake_sleep" not in {m.__name__ for m in vars(sys.modules["vaelib.model"]).values()
                                              if isinstance(m, type(sys))}  # fmt: skip
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    model.compile(objective=WakeSleep())
    model.fit(binary_batch, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    assert keras.models.load_model(tmp_path / "m.keras").objective == WakeSleep()
    with pytest.raises(ValueError, match="WakeSleep"):
        model.compile(objective="wake_sleep")  # an unknown name says which object to pass


def test_logit_bernoulli_draws_what_tfp_draws_and_keeps_the_bernoulli_law_under_xla():
    """Outside XLA the Philox uniforms are TFP's own, so the draws are identical. Under XLA (where the sleep
    phase runs) the mean of 200 x 784 draws is the mean probability within 0.01: its standard error is
    at most 0.5 / sqrt(156,800) = 0.0013."""
    from vaelib.distributions import LogitBernoulli

    logits = tf.random.stateless_normal([200, 784], [1, 2])
    seed = tf.constant([5, 6])
    ours = LogitBernoulli(logits=logits, dtype=tf.float32).sample(seed=seed)
    np.testing.assert_array_equal(ours, tfd.Bernoulli(logits=logits, dtype=tf.float32).sample(seed=seed))

    def draw(s):
        return LogitBernoulli(logits=logits, dtype=tf.float32).sample(seed=s)

    compiled = tf.function(draw, jit_compile=True)(seed).numpy()
    assert set(np.unique(compiled)) <= {0.0, 1.0}
    assert abs(compiled.mean() - float(tf.reduce_mean(tf.sigmoid(logits)))) < 0.01

"""The VAE model: distribution shapes, training improves the bound, persistence, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import vaelib
from vaelib.distributions import LogitBernoulli

tfd = tfp.distributions


@pytest.mark.parametrize("build", [vaelib.VAE.mlp, vaelib.VAE.conv])
def test_distribution_shapes(build, binary_batch):
    model = build(latent_dim=4)
    q = model.encode(binary_batch)
    assert q.batch_shape == (16,) and q.event_shape == (4,)
    z = q.sample(3)
    p = model.decode(z)
    assert p.batch_shape == (3, 16) and p.event_shape == (28, 28)
    assert p.log_prob(binary_batch).shape == (3, 16)
    assert model.prior.event_shape == (4,) and model.prior.batch_shape == ()
    assert model.sample(5, seed=1).shape == (5, 28, 28)
    assert model.reconstruct(binary_batch).shape == (16, 28, 28)


def test_default_is_the_papers_mnist_model():
    model = vaelib.VAE.mlp()
    dense = [layer for layer in model.encoder.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [500, 40]  # 500 tanh units, then mu and sigma for N_z = 20
    assert dense[0].activation.__name__ == "tanh"
    assert isinstance(model.likelihood, vaelib.likelihoods.Bernoulli) and model.latent_dim == 20
    assert isinstance(model.objective, vaelib.ELBO) and model.objective.num_samples == 1


def test_encoder_variance_cannot_underflow_or_overflow(binary_batch):
    model = vaelib.VAE.mlp(latent_dim=3, hidden_units=(8,))
    last = model.encoder.layers[-1]
    for scale in (1e4, -1e4):  # pre-activations of +-1e4: exp() of them would overflow / underflow
        kernel, bias = last.get_weights()
        last.set_weights([np.full_like(kernel, scale), bias])
        mean, log_var = model.encoder_outputs(binary_batch)
        assert np.all(np.isfinite(log_var.numpy())) and np.all(log_var.numpy() >= 2 * np.log(1e-4) - 1e-3)
        assert np.all(np.isfinite(vaelib.elbo(model, binary_batch).numpy()))


def test_training_raises_the_test_bound(mnist):
    (x_train, _), (x_test, _) = mnist
    tf.random.set_seed(0)
    x_eval = vaelib.fixed_binarize(x_test[:1000])
    model = vaelib.VAE.mlp(latent_dim=10, hidden_units=(200,))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = model.evaluate(x_eval, batch_size=500, verbose=0, return_dict=True)["elbo"]
    model.fit(vaelib.make_dataset(x_train[:10000], "bernoulli", batch_size=100), epochs=3, verbose=0)  # 300 steps
    after = model.evaluate(x_eval, batch_size=500, verbose=0, return_dict=True)
    # An untrained model scores about -543 nats (784 log 2); 300 Adam steps reach about -150.
    # A margin of 200 nats cannot be met by noise (the evaluation's sampling spread is < 1 nat).
    assert after["elbo"] > before + 200, (before, after)
    assert after["kl"] > 0 and abs(after["elbo"] - (after["reconstruction"] - after["kl"])) < 1e-2
    # 1000 points in batches of 300: the last batch is smaller, and the loss is still a per-example mean
    logs = model.evaluate(x_eval, batch_size=300, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(-logs["elbo"], rel=1e-5)


def test_compile_options_are_used(binary_batch):
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    model.compile(objective=vaelib.ELBO(num_samples=3, kl="mc", beta=0.0))
    logs = model.evaluate(binary_batch, verbose=0, return_dict=True)
    # beta = 0: the loss is minus the reconstruction term alone
    assert logs["loss"] == pytest.approx(-logs["reconstruction"], rel=1e-5)
    with pytest.raises(ValueError, match="beta"):
        vaelib.ELBO(beta=-1.0)
    with pytest.raises(ValueError, match="kl"):
        vaelib.ELBO(kl="closed")
    with pytest.raises(ValueError, match="loss"):
        model.compile(loss="mse")
    with pytest.raises(ValueError, match="objective"):
        model.compile(objective="vi")


def test_save_and_load_round_trip(tmp_path, binary_batch):
    model = vaelib.VAE.mlp(latent_dim=3, hidden_units=(16,))
    model.compile(objective=vaelib.ELBO(num_samples=2, beta=0.5))
    model.fit(binary_batch, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded, vaelib.VAE)
    assert loaded.objective == vaelib.ELBO(num_samples=2, beta=0.5)
    np.testing.assert_array_equal(
        vaelib.elbo(model, binary_batch, seed=3).numpy(), vaelib.elbo(loaded, binary_batch, seed=3).numpy()
    )
    conv = vaelib.VAE.conv(latent_dim=2)
    conv.save(tmp_path / "c.keras")
    np.testing.assert_array_equal(
        conv.reconstruct(binary_batch), keras.models.load_model(tmp_path / "c.keras").reconstruct(binary_batch)
    )


def test_model_bad_input(binary_batch):
    with pytest.raises(ValueError, match="latent_dim"):
        vaelib.VAE.mlp(latent_dim=0)
    with pytest.raises(ValueError, match="likelihood"):
        vaelib.VAE.mlp(likelihood="poisson")
    with pytest.raises(TypeError, match="encoder must be a Keras model"):
        vaelib.VAE("an encoder", keras.Sequential([keras.layers.Dense(784)]))
    with pytest.raises(ValueError, match="divisible"):
        vaelib.VAE.conv(data_shape=(30, 30))
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    model.compile()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.fit(binary_batch * 255, verbose=0)
    with pytest.raises(TypeError, match="float"):
        model.fit((binary_batch * 255).astype(np.uint8), verbose=0)
    with pytest.raises(ValueError, match="shape"):
        model.fit(tf.data.Dataset.from_tensor_slices(np.zeros((4, 784), np.float32)).batch(2), verbose=0)
    with pytest.raises(ValueError, match="z must have shape"):
        model.decode(np.zeros((3, 5), np.float32))


@pytest.mark.parametrize("binary", [True, False])
def test_logit_bernoulli_log_prob_matches_tfp(binary):
    """The fused x*l - softplus(l) equals TFP's Bernoulli log-probability, for 0/1 pixels and grey levels.

    Tolerance: float32 rounding of a sum over 784 terms of size ~|l| <= 15, relative 1e-5.
    """
    rng = np.random.default_rng(1)
    logits = tf.constant(rng.normal(scale=5.0, size=(64, 28, 28)), tf.float32)
    x = rng.random((64, 28, 28))
    x = tf.constant((x < 0.3) if binary else x, tf.float32)
    ours = tfd.Independent(LogitBernoulli(logits=logits, dtype=tf.float32), 2).log_prob(x)
    reference = tfd.Independent(tfd.Bernoulli(logits=logits, dtype=tf.float32), 2).log_prob(x)
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-5)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        lp = tf.reduce_sum(LogitBernoulli(logits=logits, dtype=tf.float32).log_prob(x))
    np.testing.assert_allclose(tape.gradient(lp, logits).numpy(), (x - tf.sigmoid(logits)).numpy(), atol=1e-6)
    # its values are floats by default (TFP's Bernoulli would cast a NumPy grey level to the int 0)
    grey = LogitBernoulli(logits=tf.constant(3.0))
    assert grey.dtype == tf.float32
    np.testing.assert_allclose(grey.log_prob(np.float64(0.6)).numpy(), 0.6 * 3.0 - np.log1p(np.exp(3.0)), rtol=1e-6)


def test_a_model_whose_initializer_has_options_of_another_keras_version_loads(tmp_path):
    # A .keras file written by a newer Keras records initializer options an older one (Colab's) lacks.
    spec = {"class_name": "GlorotUniform", "config": {"seed": 3, "an_option_of_another_keras": None}}
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,), initializer=spec)
    assert model.get_config()["networks"]["initializer"] == spec  # recorded as given, not re-serialised
    assert vaelib.VAE.mlp(latent_dim=2).get_config()["networks"]["initializer"] == "glorot_uniform"
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises((TypeError, ValueError)):
        vaelib.VAE.mlp(latent_dim=2, initializer={"class_name": "NoSuchInitializer", "config": {}})


def test_xla_is_on_where_it_pays(monkeypatch, binary_batch):
    """jit_compile="auto": XLA for a fit that brings training to XLA_MIN_STEPS steps, never for convolutions on a CPU.

    A model compiled by default runs a short fit without XLA (compiling costs more than it saves), a long
    one with it; a conv model runs without XLA on a CPU whatever the length, and with it where a GPU is
    visible; an explicit jit_compile wins.
    """
    monkeypatch.setattr(vaelib.model, "XLA_MIN_STEPS", 6)
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    model.compile(steps_per_execution=1)
    model.fit(binary_batch, batch_size=8, epochs=2, verbose=0)  # 4 steps
    assert model.jit_compile is False
    model.fit(binary_batch, batch_size=8, epochs=1, verbose=0)  # to 6 steps in all
    assert model.jit_compile is True
    assert model.uses_xla(5) is False and model.uses_xla(6) is True and model.uses_xla(None) is True
    conv = vaelib.VAE.conv(latent_dim=2, filters=(4, 8), hidden_units=(8,))
    conv.compile()
    assert conv.uses_xla(10**6) is False
    for gpus in ([], ["a GPU"]):
        monkeypatch.setattr(
            tf.config, "list_physical_devices", lambda kind=None, gpus=gpus: gpus if kind == "GPU" else []
        )
        assert conv.uses_xla(1) is bool(gpus)
    conv.compile(jit_compile=True)  # an explicit choice wins
    assert conv.uses_xla(1) is True
    model.compile(jit_compile=False)
    model.fit(binary_batch, batch_size=8, epochs=4, verbose=0)
    assert model.jit_compile is False
    with pytest.raises(ValueError, match="jit_compile"):
        model.compile(jit_compile="sometimes")


def test_compile_without_an_optimizer_takes_adam_at_3e_3_with_a_moving_average_of_the_weights(tmp_path):
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    model.compile()
    optimizer = model.optimizer
    assert isinstance(optimizer, vaelib.AveragedAdam) and isinstance(optimizer, keras.optimizers.Adam)
    assert float(optimizer.learning_rate) == pytest.approx(3e-3) and optimizer.ema_momentum == pytest.approx(0.99)
    other = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    other.compile()
    assert other.optimizer is not optimizer  # each model its own optimizer and its own average
    model.fit(np.zeros((4, 28, 28), np.float32), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is vaelib.AveragedAdam and loaded.optimizer.get_config() == optimizer.get_config()
    model.compile(optimizer="adam")
    assert not model.optimizer.use_ema and float(model.optimizer.learning_rate) == pytest.approx(1e-3)


@pytest.mark.parametrize("momentum", [0.99, 0.2])
def test_fit_with_averaged_adam_leaves_the_moving_average_of_the_trained_weights(momentum):
    r"""The average :math:`\bar w_t = m_t \bar w_{t-1} + (1 - m_t) w_t`, :math:`m_t = \min(\beta, (t-1)/(t+9))`, of
    the weights that Adam at 3e-3 without the average takes step by step, on the same minibatches with the
    same noise (with :math:`\beta = 0.2` the minimum switches to :math:`\beta` from step 4)."""
    x = vaelib.fixed_binarize(np.random.default_rng(0).random((120, 6, 6)).astype(np.float32))

    def model(optimizer):
        keras.utils.set_random_seed(0)
        built = vaelib.VAE.mlp(data_shape=(6, 6), latent_dim=2, hidden_units=(8,))
        built.compile(optimizer=optimizer, seed=0)
        return built

    averaged, plain = model(vaelib.AveragedAdam(3e-3, ema_momentum=momentum)), model(keras.optimizers.Adam(3e-3))
    average = None
    for t in range(1, 7):  # one step per fit: the weights after every step
        plain.fit(x[20 * (t - 1) : 20 * t], batch_size=20, epochs=1, verbose=0, shuffle=False)
        weights = [w.numpy() for w in plain.trainable_weights]
        m = min(momentum, (t - 1) / (t + 9))
        average = weights if t == 1 else [m * a + (1 - m) * w for a, w in zip(average, weights)]
    averaged.fit(x, batch_size=20, epochs=1, verbose=0, shuffle=False)  # the six steps in one call
    got = [w.numpy() for w in averaged.trainable_weights]
    for g, a in zip(got, average, strict=True):
        np.testing.assert_allclose(g, a, rtol=1e-5, atol=1e-6)
    assert max(np.abs(g - w).max() for g, w in zip(got, weights)) > 1e-4  # the average, not the last step

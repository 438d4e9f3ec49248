"""A reader's own networks, likelihood, prior and data, through the public API as a reader's script uses it."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import vaelib

tfd = tfp.distributions
ROOT = Path(__file__).resolve().parents[1]
N_Z = 3


@keras.saving.register_keras_serializable(package="reader")
class MyEncoder(keras.Model):
    """A subclassed encoder that declares no input shape: the VAE learns it from the first data."""

    def __init__(self, latent_dim: int = N_Z, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.flatten = keras.layers.Flatten()
        self.hidden = keras.layers.Dense(32, activation="relu")
        self.out = keras.layers.Dense(2 * latent_dim)

    def call(self, x):
        return self.out(self.hidden(self.flatten(x)))

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim}


@keras.saving.register_keras_serializable(package="reader")
class MyDecoder(keras.Model):
    """A subclassed decoder giving two numbers per pixel as one flat vector: the mean's block, then the scale's."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(32, activation="relu")
        self.out = keras.layers.Dense(2 * 8 * 8)

    def call(self, z):
        return self.out(self.hidden(z))


def sequential_networks():
    encoder = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(2 * N_Z)])
    decoder = keras.Sequential([keras.Input((N_Z,)), keras.layers.Dense(64), keras.layers.Reshape((8, 8))])
    return encoder, decoder


def functional_networks():
    x = keras.Input((8, 8))
    h = keras.layers.Dense(16, activation="tanh")(keras.layers.Flatten()(x))
    encoder = keras.Model(x, keras.layers.Dense(2 * N_Z)(h))
    z = keras.Input((N_Z,))
    decoder = keras.Model(z, keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64)(z)))
    return encoder, decoder


def subclassed_networks():
    return MyEncoder(), MyDecoder()


NETWORKS = {"sequential": sequential_networks, "functional": functional_networks, "subclassed": subclassed_networks}


@pytest.fixture
def binary():
    return (np.random.default_rng(0).random((64, 8, 8)) < 0.4).astype(np.float32)


@pytest.fixture
def real():
    return np.random.default_rng(1).normal(size=(64, 8, 8)).astype(np.float32)  # standardised: half negative


@pytest.mark.parametrize("kind", NETWORKS)
def test_a_vae_of_the_readers_networks_trains_evaluates_saves_and_loads(kind, tmp_path, binary, real):
    encoder, decoder = NETWORKS[kind]()
    likelihood = "gaussian" if kind == "subclassed" else "bernoulli"  # two numbers per value: a Gaussian's
    data = real if kind == "subclassed" else binary
    keras.utils.set_random_seed(0)
    model = vaelib.VAE(encoder, decoder, likelihood=likelihood)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(data, batch_size=16, epochs=2, verbose=0).history
    assert model.data_shape == (8, 8) and model.latent_dim == N_Z  # read off the networks (or the data)
    assert set(history) == {"loss", "elbo", "kl", "reconstruction"} and history["elbo"][1] > history["elbo"][0]
    bound = vaelib.elbo(model, data, seed=1).numpy()
    assert bound.shape == (64,) and np.isfinite(bound).all()
    # L_B <= L^IW_k, and the importance-sampled estimate is L^IW_k: both above the ELBO on average
    iwae = vaelib.iwae_bound(model, data, 20, seed=1).numpy()
    assert iwae.mean() > bound.mean()
    log_px = vaelib.log_likelihood(model, data, num_samples=20, seed=1)
    assert np.isfinite(log_px).all()
    model.save(tmp_path / "mine.keras")
    loaded = keras.models.load_model(tmp_path / "mine.keras")
    assert type(loaded.likelihood) is type(model.likelihood) and loaded.latent_dim == N_Z
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(vaelib.elbo(loaded, data, seed=1).numpy(), bound)  # the same bound after loading
    loaded.fit(data, batch_size=16, epochs=1, verbose=0)  # and it trains on, with its optimizer's state
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) + 4


def test_a_network_that_declares_no_input_shape_is_built_by_the_first_data(binary):
    model = vaelib.VAE(MyEncoder(), keras.Sequential([keras.layers.Dense(64), keras.layers.Reshape((8, 8))]))
    assert not model.built and model.data_shape is None
    with pytest.raises(ValueError, match="not built yet"):
        model.prior  # noqa: B018
    q = model.encode(binary)
    assert model.built and model.data_shape == (8, 8) and q.event_shape == (N_Z,)
    with pytest.raises(ValueError, match=r"shape \(N, 8, 8\)"):
        model.encode(np.zeros((2, 9, 9), np.float32))


def test_networks_that_do_not_fit_together_are_clear_errors():
    encoder, decoder = sequential_networks()
    odd = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(5)])
    with pytest.raises(ValueError, match=r"2 x N_z numbers per datum"):
        vaelib.VAE(odd, decoder)
    wrong = keras.Sequential([keras.Input((N_Z,)), keras.layers.Dense(50)])
    with pytest.raises(ValueError, match=r"\(N, 8, 8\), \(N, 8, 8, k\) or \(N, k \* 64\); got shape \(N, 50\)"):
        vaelib.VAE(encoder, wrong)
    two = keras.Sequential([keras.Input((N_Z,)), keras.layers.Dense(128), keras.layers.Reshape((8, 8, 2))])
    with pytest.raises(ValueError, match="Bernoulli likelihood takes 1 number"):
        vaelib.VAE(encoder, two)  # two numbers per pixel mean nothing to a Bernoulli
    # flat data too: (N, 2 * D) from the decoder is the mean's block, then the scale's
    flat = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2 * N_Z)])
    blocks = keras.Sequential([keras.Input((N_Z,)), keras.layers.Dense(10)])
    model = vaelib.VAE(flat, blocks, likelihood="gaussian")
    z = np.ones((1, N_Z), np.float32)
    np.testing.assert_allclose(model.decode(z).mean().numpy(), blocks(z).numpy()[:, :5], rtol=1e-6)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        vaelib.VAE(encoder, decoder, likelihood="poisson")
    with pytest.raises(TypeError, match="prior must be"):
        vaelib.VAE(encoder, decoder, prior="normal")
    with pytest.raises(ValueError, match=r"event shape \(3,\)"):
        vaelib.VAE(encoder, decoder, prior=tfd.MultivariateNormalDiag(loc=tf.zeros(4)))


def test_the_gaussian_likelihood_has_an_identity_mean_and_a_learned_scale_per_value(real):
    encoder, decoder = sequential_networks()
    model = vaelib.VAE(encoder, decoder, likelihood="gaussian")
    z = np.random.default_rng(2).normal(size=(5, N_Z)).astype(np.float32) * 10
    p = model.decode(z)
    # identity link: the mean is the decoder's number itself, negative or above 1 included
    np.testing.assert_array_equal(p.mean().numpy(), decoder(z).numpy())
    assert p.mean().numpy().min() < 0 < 1 < p.mean().numpy().max()
    # one number per value: sigma is a weight per pixel, starting at softplus(log(e - 1)) + 1e-3 = 1.001
    scale = model.likelihood.raw_scale
    assert tuple(scale.shape) == (8, 8) and any(v is scale for v in model.trainable_variables)
    np.testing.assert_allclose(p.stddev().numpy(), 1.001, rtol=1e-6)
    # log p(x|z) is a Normal log-density, summed over the pixels (TFP's Normal as the truth)
    x = real[:5]
    want = tfd.Normal(decoder(z), 1.001).log_prob(x).numpy().sum(axis=(1, 2))
    np.testing.assert_allclose(p.log_prob(x).numpy(), want, rtol=1e-5)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(real, batch_size=16, epochs=2, verbose=0)
    assert not np.allclose(model.decode(z).stddev().numpy(), 1.001)  # the scale was learned
    # reconstructions cover the data's range (standardised data, half negative), unlike a sigmoid mean
    reconstructions = model.reconstruct(real)
    assert reconstructions.min() < 0 < reconstructions.max()


def test_a_gaussian_decoder_with_two_numbers_per_value_has_a_scale_that_depends_on_z(real):
    model = vaelib.VAE(*subclassed_networks(), likelihood="gaussian")
    model.encode(real[:2])  # built from the data
    assert model.likelihood.parameters == 2 and not model.likelihood.trainable_variables
    z = np.random.default_rng(3).normal(size=(2, N_Z)).astype(np.float32)
    out = model.decoder(z).numpy()
    p = model.decode(z)
    # the flat output is two blocks of 64: the mean's, then sigma's raw value
    np.testing.assert_allclose(p.mean().numpy().reshape(2, 64), out[:, :64], rtol=1e-6)
    np.testing.assert_allclose(p.stddev().numpy().reshape(2, 64), np.logaddexp(0, out[:, 64:]) + 1e-3, rtol=1e-5)
    assert not np.allclose(p.stddev().numpy()[0], p.stddev().numpy()[1])


def test_the_continuous_bernoulli_is_the_bernoulli_cross_entropy_plus_its_normaliser():
    """log p(x|l) = x l - softplus(l) + log C(l), C(l) = l / tanh(l / 2) (Loaiza-Ganem & Cunningham 2019)."""
    encoder, decoder = sequential_networks()
    continuous = vaelib.VAE(encoder, decoder, likelihood="continuous_bernoulli")
    bernoulli = vaelib.VAE(encoder, decoder)
    z = np.random.default_rng(4).normal(size=(3, N_Z)).astype(np.float32)
    x = np.random.default_rng(5).random((3, 8, 8)).astype(np.float32)
    logits = decoder(z).numpy().astype(np.float64)
    log_c = np.log(logits / np.tanh(logits / 2))
    want = (x * logits - np.logaddexp(0, logits) + log_c).sum(axis=(1, 2))
    np.testing.assert_allclose(continuous.decode(z).log_prob(x).numpy(), want, rtol=1e-4)
    gap = continuous.decode(z).log_prob(x).numpy() - bernoulli.decode(z).log_prob(x).numpy()
    np.testing.assert_allclose(gap, log_c.sum(axis=(1, 2)), rtol=1e-4)
    assert np.all(gap > 0)  # C(l) >= 2 > 1: the normaliser adds, so the two bounds are not comparable


def test_data_are_prepared_as_the_models_likelihood_needs_them(binary, real, tmp_path):
    encoder, decoder = sequential_networks()
    gaussian = vaelib.VAE(encoder, decoder, likelihood="gaussian")
    grey = np.random.default_rng(6).random((10, 8, 8)).astype(np.float32)
    # the default follows the model: binarised for a Bernoulli, as they are otherwise
    bernoulli_batch = next(iter(vaelib.make_dataset(grey, "bernoulli", 10, shuffle=False))).numpy()
    assert set(np.unique(bernoulli_batch)) <= {0.0, 1.0}
    for make in (vaelib.make_dataset, vaelib.make_stream):
        batch = next(iter(make(real[:10], gaussian, 10, **({"shuffle": False} if make is vaelib.make_dataset else {}))))
        if make is vaelib.make_dataset:
            np.testing.assert_array_equal(batch.numpy(), real[:10])
        else:
            assert sorted(map(bytes, batch.numpy())) == sorted(map(bytes, real[:10]))  # a permutation, unchanged
        with pytest.raises(ValueError, match="only a Bernoulli likelihood models"):
            make(grey, gaussian, binarize="dynamic")
    with pytest.raises(ValueError, match="only a Bernoulli likelihood models"):
        vaelib.train(_compiled(gaussian), real, 1, tmp_path / "run", binarize="fixed", verbose=0)
    assert not (tmp_path / "run").exists()


def _compiled(model):
    model.compile(optimizer="adam")
    return model


def test_data_outside_the_support_is_an_error_that_names_the_range_and_the_fix(real, tmp_path):
    bernoulli = _compiled(vaelib.VAE(*sequential_networks()))
    message = r"must lie in \[0, 1\] for a Bernoulli likelihood; got values in \[-\d.*likelihood='gaussian'"
    for call in (
        lambda: bernoulli.fit(real, verbose=0),
        lambda: bernoulli.evaluate(real, verbose=0),
        lambda: vaelib.train(bernoulli, real, 1, tmp_path / "run", verbose=0),
        lambda: vaelib.make_dataset(real, bernoulli),
        lambda: vaelib.make_stream(real, bernoulli),
        lambda: vaelib.elbo(bernoulli, real),
    ):
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(ValueError, match=r"continuous_?Bernoulli likelihood|ContinuousBernoulli likelihood"):
        vaelib.make_dataset(real, "continuous_bernoulli")
    for binarize in (vaelib.dynamic_binarize, vaelib.fixed_binarize):
        with pytest.raises(ValueError, match=r"must lie in \[0, 1\]; got values in \[-"):
            binarize(real)
    with pytest.raises(ValueError, match="NaN"):
        vaelib.make_dataset(np.full((4, 8, 8), np.nan, np.float32), "gaussian")
    assert not (tmp_path / "run").exists()


def test_compile_metrics_are_computed_on_the_reconstructions(binary):
    model = vaelib.VAE(*sequential_networks())
    model.compile(optimizer="adam", metrics=["mse"])
    history = model.fit(binary, batch_size=64, epochs=1, verbose=0).history
    assert "mse" in history
    logs = model.evaluate(binary, batch_size=64, verbose=0, return_dict=True)
    # y_true the data, y_pred what predict returns: the decoder's mean at the encoder's mean
    np.testing.assert_allclose(logs["mse"], np.mean((model.predict(binary, verbose=0) - binary) ** 2), rtol=1e-5)
    with pytest.raises(ValueError, match="weighted_metrics"):
        model.compile(weighted_metrics=["mse"])


def test_a_prior_of_the_readers_is_used_in_the_bound_and_saved(tmp_path, binary):
    prior = tfd.MultivariateNormalDiag(loc=tf.fill([N_Z], 0.5), scale_diag=tf.fill([N_Z], 2.0))
    model = vaelib.VAE(*sequential_networks(), prior=prior)
    q = model.encode(binary)
    terms = vaelib.elbo_terms(model, binary, seed=0)
    np.testing.assert_allclose(terms["kl"].numpy(), tfd.kl_divergence(q, prior).numpy(), rtol=1e-5)
    samples = vaelib.ELBO(num_samples=2000, kl="mc")(model, model.check_data(binary[:4]), tf.constant([1, 2]))[1]
    np.testing.assert_allclose(samples["kl"].numpy(), terms["kl"].numpy()[:4], atol=0.2)  # the MC estimate agrees
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.prior.stddev().numpy(), 2.0)
    np.testing.assert_array_equal(vaelib.elbo(loaded, binary, seed=3).numpy(), vaelib.elbo(model, binary, seed=3))


@pytest.mark.slow
def test_train_and_the_command_line_work_on_a_model_of_the_readers_networks(tmp_path, mnist):
    (x_train, _), _ = mnist
    x = x_train[:300]
    encoder = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(2 * N_Z)])
    decoder = keras.Sequential([keras.Input((N_Z,)), keras.layers.Dense(784), keras.layers.Reshape((28, 28))])
    model = vaelib.VAE(encoder, decoder, likelihood="gaussian")
    history = vaelib.train(_compiled(model), x, 2, tmp_path / "run", batch_size=100, verbose=0)
    assert len(history["elbo"]) == 2
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["binarize"] is None  # grey levels, as a Gaussian likelihood needs
    model.save(tmp_path / "mine.keras")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    options = ["--train-size", "300", "--test-size", "100", "--verbose", "0"]
    command = [sys.executable, "-m", "vaelib", "train", str(tmp_path / "cli"), "--model", str(tmp_path / "mine.keras")]
    done = subprocess.run([*command, "--epochs", "1", *options], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    evaluate = [
        sys.executable,
        "-m",
        "vaelib",
        "evaluate",
        str(tmp_path / "cli"),
        "--samples",
        "5",
        "--test-size",
        "100",
    ]
    done = subprocess.run(evaluate, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "cli" / "evaluation.json").read_text())
    assert result["likelihood"] == "Gaussian" and result["binarization"].startswith("none")
    assert math.isfinite(result["test_log_likelihood"]) and result["test_log_likelihood"] > result["test_elbo"]


THIN = """
import sys, importlib.abc

class NoMatplotlib(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"{name} is blocked")

sys.meta_path.insert(0, NoMatplotlib())
import vaelib
loaded = sorted(m for m in sys.modules if m.startswith("vaelib"))
print(" ".join(loaded))
"""


def test_import_vaelib_is_thin():
    """``import vaelib`` works without matplotlib and loads neither the plotting nor the paper's experiments."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", THIN], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = done.stdout.split()
    assert "vaelib.model" in loaded and "vaelib.training" in loaded and "vaelib.data" in loaded
    assert not [m for m in loaded if m.startswith(("vaelib.plotting", "vaelib.paper"))], loaded


def test_the_model_knows_no_training_algorithm_and_no_likelihood_by_name():
    """model.py imports no training algorithm (wake-sleep and Monte Carlo EM plug in from vaelib.paper), and
    compares no likelihood's or objective's name: likelihoods and objectives are objects."""
    import ast

    tree = ast.parse((ROOT / "vaelib" / "model.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not [m for m in imported if "paper" in m or "wake_sleep" in m or "mcem" in m], imported
    compared = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        for operand in [node.left, *node.comparators]
        for node in [operand]
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    names = {"bernoulli", "gaussian", "continuous_bernoulli", "elbo", "iwae", "wake_sleep"}
    assert not names & set(compared), compared


def test_the_papers_models_compute_what_the_committed_results_say(mnist):
    """The committed models, loaded by this vaelib, give the committed per-image estimates and curve points.

    ``log_likelihood`` at a fixed seed draws the same numbers for the first 100 test images as the
    evaluation that wrote ``results/equal_budget.npz``; the same code on the same CPU kind repeats them to
    the last bit, another CPU to float32 rounding of sums over 784 pixels (1e-3 nats leaves room for it).
    """
    _, (x_test, _) = mnist
    x = vaelib.fixed_binarize(x_test, 0)
    with np.load(ROOT / "results" / "equal_budget.npz") as per_image:
        for name in ("elbo", "iwae5", "iwae50"):
            model = keras.models.load_model(ROOT / "results" / f"equal_budget_{name}.keras")
            for k in (1, 50):
                got = vaelib.log_likelihood(model, x[:100], num_samples=k, seed=0)
                np.testing.assert_allclose(got, per_image[f"{name}_k{k}"][:100], rtol=0, atol=1e-3)
    from vaelib import paper

    for method in ("aevb", "wake_sleep"):
        run = paper.fig2_run_folder(ROOT / "runs" / "aevb_fig2", method, 5)
        model = keras.models.load_model(run / "model.keras")
        last = json.loads((run / "state.json").read_text())["rows"][-1]
        assert paper.mean_bound(model, x, seed=0) == pytest.approx(last["test_bound"], abs=1e-3)

"""One API convention: seeds, return types, argument names and the model family agree across vaelib."""

import inspect

import numpy as np
import pytest
import tensorflow as tf

import vaelib
from vaelib import networks


@pytest.fixture(scope="module")
def model():
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    model.compile()
    return model


@pytest.fixture(scope="module")
def x():
    return (np.random.default_rng(0).random((6, 28, 28)) < 0.4).astype(np.float32)


ESTIMATORS = {
    "elbo": lambda m, x, seed: vaelib.elbo(m, x, seed=seed),
    "elbo_terms": lambda m, x, seed: vaelib.elbo_terms(m, x, seed=seed)["elbo"],
    "minibatch_elbo": lambda m, x, seed: vaelib.minibatch_elbo(m, x, 60, seed=seed),
    "iwae_bound": lambda m, x, seed: vaelib.iwae_bound(m, x, 3, seed=seed),
    "log_likelihood": lambda m, x, seed: vaelib.log_likelihood(m, x, num_samples=3, seed=seed),
    "hmc_log_likelihood": lambda m, x, seed: vaelib.hmc_log_likelihood(m, x, num_samples=3, num_burnin=2, seed=seed),
    "dynamic_binarize": lambda m, x, seed: vaelib.dynamic_binarize(np.full_like(x, 0.5), seed=seed),
    "reparameterized_sample": lambda m, x, seed: vaelib.reparameterized_sample(m.encode(x), 2, seed=seed),
    "monte_carlo_kl": lambda m, x, seed: vaelib.monte_carlo_kl(*m.encoder_outputs(x), num_samples=2, seed=seed),
    "sample": lambda m, x, seed: m.sample(3, seed=seed, mean=False),
}


@pytest.mark.parametrize("name", ESTIMATORS)
def test_every_estimator_takes_the_same_seeds_and_defaults_to_fresh_randomness(name, model, x):
    draw = ESTIMATORS[name]
    assert inspect.signature(getattr(vaelib, name, getattr(vaelib.VAE, name, None))).parameters["seed"].default is None
    value = lambda seed: np.asarray(draw(model, x, seed))  # noqa: E731
    np.testing.assert_array_equal(value(5), value(5))  # an int: the same numbers every time
    pair = tf.constant([3, 4])
    np.testing.assert_array_equal(value(pair), value(pair))  # a stateless seed tensor: the same
    assert not np.array_equal(value(5), value(6))
    assert not np.array_equal(value(None), value(None))  # None: fresh randomness
    for bad, error in ((-1, ValueError), (2**31, ValueError), (1.5, TypeError), ("seven", TypeError)):
        with pytest.raises(error, match="seed"):
            draw(model, x, bad)


def test_what_defines_data_or_a_run_defaults_to_seed_zero():
    for function in (vaelib.fixed_binarize, vaelib.make_dataset, vaelib.make_stream, vaelib.train):
        assert inspect.signature(function).parameters["seed"].default == 0, function.__name__
    grey = np.full((4, 5), 0.5, np.float32)
    np.testing.assert_array_equal(vaelib.fixed_binarize(grey), vaelib.fixed_binarize(grey, seed=0))
    for bad, error in ((-1, ValueError), (1.5, TypeError), (None, TypeError)):
        with pytest.raises(error, match="seed"):
            vaelib.fixed_binarize(grey, seed=bad)


def test_differentiable_results_are_tensors_and_chunked_ones_arrays(model, x):
    for name in ("elbo", "iwae_bound", "dynamic_binarize"):
        assert isinstance(ESTIMATORS[name](model, x, 0), tf.Tensor), name
    assert isinstance(vaelib.log_likelihood(model, x, num_samples=2, seed=0), np.ndarray)
    assert isinstance(vaelib.fixed_binarize(x), np.ndarray)
    assert isinstance(model.sample(2, seed=0), np.ndarray) and isinstance(model.reconstruct(x), np.ndarray)


def test_the_shape_of_a_data_point_is_called_data_shape_everywhere():
    factories = (vaelib.VAE.mlp, vaelib.VAE.conv, vaelib.Autoencoder.mlp, vaelib.Autoencoder.conv)
    builders = (networks.mlp_encoder, networks.mlp_decoder, networks.conv_encoder, networks.conv_decoder)
    for function in (*factories, *builders):
        parameters = inspect.signature(function).parameters
        assert "data_shape" in parameters and "input_shape" not in parameters, function
    assert vaelib.VAE.mlp().data_shape == (28, 28)  # and the model reads it off its networks


def test_autoencoder_and_vae_are_siblings_and_the_bounds_refuse_an_autoencoder(x):
    autoencoder = vaelib.Autoencoder.mlp(latent_dim=2, hidden_units=(8,))
    autoencoder.compile()
    assert isinstance(autoencoder, vaelib.EncoderDecoder) and not isinstance(autoencoder, vaelib.VAE)
    assert issubclass(vaelib.VAE, vaelib.EncoderDecoder) and not hasattr(autoencoder, "prior")
    for bound in (
        lambda: vaelib.elbo(autoencoder, x),
        lambda: vaelib.iwae_bound(autoencoder, x, 2),
        lambda: vaelib.log_likelihood(autoencoder, x, num_samples=2),
        lambda: vaelib.hmc_log_likelihood(autoencoder, x, num_samples=2),
    ):
        with pytest.raises(TypeError, match="autoencoder|point mass|distribution|generative model"):
            bound()
    with pytest.raises(TypeError, match="objective"):
        autoencoder.compile(objective=vaelib.ELBO())

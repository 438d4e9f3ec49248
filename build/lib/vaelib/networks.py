"""The encoder and decoder networks: plain Keras 3 layers, no probability in them.

:class:`~vaelib.model.VAE` wraps their outputs in ``tfp.distributions``. Two families are built here:

* ``mlp``: the paper's MLPs (Kingma & Welling 2013, Appendix C): ``x -> tanh(W x + b) -> (mu, sigma)``
  for the encoder and ``z -> tanh(W z + b) -> logits`` for the decoder, with any number of hidden layers;
* ``conv``: two stride-2 3x3 convolutions each way, as in the Keras VAE example.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

__all__ = ["build_encoder", "build_decoder"]


def _dense(units: int, activation: str | None, initializer: str | keras.initializers.Initializer):
    return keras.layers.Dense(units, activation=activation, kernel_initializer=initializer)


def build_encoder(
    architecture: str,
    data_shape: Sequence[int],
    latent_dim: int,
    hidden_units: Sequence[int],
    activation: str,
    filters: Sequence[int],
    initializer: str | keras.initializers.Initializer = "glorot_uniform",
    outputs_per_latent: int = 2,
) -> keras.Sequential:
    """Encoder network: data of shape ``data_shape`` -> ``outputs_per_latent * latent_dim`` numbers.

    Two per latent dimension (mu and raw scale) for a VAE, one (the code itself) for an autoencoder.
    """
    layers: list[keras.layers.Layer] = [keras.Input(shape=tuple(data_shape))]
    if architecture == "mlp":
        layers.append(keras.layers.Flatten())
        layers += [_dense(units, activation, initializer) for units in hidden_units]
    else:
        if len(data_shape) == 2:
            layers.append(keras.layers.Reshape((*data_shape, 1)))
        layers += [
            keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", kernel_initializer=initializer)
            for f in filters
        ]
        layers.append(keras.layers.Flatten())
        layers += [_dense(units, "relu", initializer) for units in hidden_units]
    layers.append(_dense(outputs_per_latent * latent_dim, None, initializer))
    return keras.Sequential(layers, name="encoder")


def build_decoder(
    architecture: str,
    data_shape: Sequence[int],
    latent_dim: int,
    hidden_units: Sequence[int],
    activation: str,
    filters: Sequence[int],
    outputs_per_value: int,
    initializer: str | keras.initializers.Initializer = "glorot_uniform",
) -> keras.Sequential:
    """Decoder network: ``z`` -> ``outputs_per_value`` numbers per data value, shape ``(*data_shape, k)``.

    ``outputs_per_value`` is 1 for a Bernoulli decoder (the logits) and 2 for a Gaussian one (mean and
    raw scale).
    """
    data_shape = tuple(data_shape)
    layers: list[keras.layers.Layer] = [keras.Input(shape=(latent_dim,))]
    if architecture == "mlp":
        layers += [_dense(units, activation, initializer) for units in reversed(hidden_units)]
        layers.append(_dense(math.prod(data_shape) * outputs_per_value, None, initializer))
        layers.append(keras.layers.Reshape((*data_shape, outputs_per_value)))
    else:
        height, width = data_shape[0], data_shape[1]
        channels = data_shape[2] if len(data_shape) == 3 else 1
        shrink = 2 ** len(filters)
        layers += [_dense(units, "relu", initializer) for units in reversed(hidden_units)]
        layers.append(_dense((height // shrink) * (width // shrink) * filters[-1], "relu", initializer))
        layers.append(keras.layers.Reshape((height // shrink, width // shrink, filters[-1])))
        layers += [
            keras.layers.Conv2DTranspose(
                f, 3, strides=2, padding="same", activation="relu", kernel_initializer=initializer
            )
            for f in reversed(filters)
        ]
        layers.append(
            keras.layers.Conv2DTranspose(
                channels * outputs_per_value, 3, padding="same", kernel_initializer=initializer
            )
        )
        layers.append(keras.layers.Reshape((*data_shape, outputs_per_value)))
    return keras.Sequential(layers, name="decoder")

r"""The book's encoder and decoder networks: plain Keras 3 models, no probability in them.

:class:`~vaelib.VAE` takes any encoder and decoder; :meth:`VAE.mlp <vaelib.VAE.mlp>`
and :meth:`VAE.conv <vaelib.VAE.conv>` build them here:

* the paper's MLPs (Kingma & Welling 2013, appendix C): :math:`x \to \tanh(W x + b) \to (\mu, \sigma)` for the
  encoder and :math:`z \to \tanh(W z + b) \to` the likelihood's parameters for the decoder, with any number of
  hidden layers (:func:`mlp_encoder`, :func:`mlp_decoder`);
* two stride-2 3x3 convolutions each way, as in the Keras VAE example (:func:`conv_encoder`,
  :func:`conv_decoder`).

An encoder maps a batch of data, shape ``(N, *data_shape)``, to ``outputs_per_latent`` :math:`\times N_z`
numbers per datum (2 for a VAE: :math:`\mu`, then a raw value of :math:`\sigma`); a decoder maps
:math:`z`, shape ``(N, N_z)``, to ``outputs_per_value`` numbers per data value, shape
``(N, *data_shape, outputs_per_value)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

__all__ = ["mlp_encoder", "mlp_decoder", "conv_encoder", "conv_decoder", "has_convolutions"]

Initializer = str | dict | keras.initializers.Initializer
_CONVOLUTIONS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)


def has_convolutions(network: keras.layers.Layer) -> bool:
    """Whether any layer of ``network``, nested ones included, is a convolution."""
    return any(isinstance(layer, _CONVOLUTIONS) for layer in network._flatten_layers(include_self=True))


def _dense(units: int, activation: str | None, initializer: Initializer) -> keras.layers.Dense:
    return keras.layers.Dense(units, activation=activation, kernel_initializer=initializer)


def mlp_encoder(
    data_shape: Sequence[int],
    latent_dim: int,
    hidden_units: Sequence[int] = (500,),
    activation: str = "tanh",
    initializer: Initializer = "glorot_uniform",
    outputs_per_latent: int = 2,
) -> keras.Sequential:
    """The MLP encoder: flatten, ``hidden_units`` dense layers, then ``outputs_per_latent * latent_dim``."""
    layers: list[keras.layers.Layer] = [keras.Input(shape=tuple(data_shape)), keras.layers.Flatten()]
    layers += [_dense(units, activation, initializer) for units in hidden_units]
    layers.append(_dense(outputs_per_latent * latent_dim, None, initializer))
    return keras.Sequential(layers, name="encoder")


def mlp_decoder(
    data_shape: Sequence[int],
    latent_dim: int,
    hidden_units: Sequence[int] = (500,),
    activation: str = "tanh",
    initializer: Initializer = "glorot_uniform",
    outputs_per_value: int = 1,
) -> keras.Sequential:
    """The MLP decoder: the encoder's hidden layers in reverse, then ``outputs_per_value`` numbers per data value."""
    data_shape = tuple(data_shape)
    layers: list[keras.layers.Layer] = [keras.Input(shape=(latent_dim,))]
    layers += [_dense(units, activation, initializer) for units in reversed(hidden_units)]
    layers.append(_dense(math.prod(data_shape) * outputs_per_value, None, initializer))
    layers.append(keras.layers.Reshape((*data_shape, outputs_per_value)))
    return keras.Sequential(layers, name="decoder")


def _check_image_shape(data_shape: Sequence[int], filters: Sequence[int]) -> tuple[int, ...]:
    data_shape = tuple(data_shape)
    if len(data_shape) not in (2, 3):
        raise ValueError(f"the conv networks need images of shape (H, W) or (H, W, C), got {data_shape}")
    shrink = 2 ** len(filters)
    if data_shape[0] % shrink or data_shape[1] % shrink:
        raise ValueError(f"the conv networks need height and width divisible by {shrink}, got {data_shape}")
    return data_shape


def conv_encoder(
    data_shape: Sequence[int],
    latent_dim: int,
    filters: Sequence[int] = (32, 64),
    hidden_units: Sequence[int] = (16,),
    initializer: Initializer = "glorot_uniform",
    outputs_per_latent: int = 2,
) -> keras.Sequential:
    """Two (by default) stride-2 3x3 ReLU convolutions, ``hidden_units`` ReLU dense layers, a linear output layer."""
    data_shape = _check_image_shape(data_shape, filters)
    layers: list[keras.layers.Layer] = [keras.Input(shape=data_shape)]
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


def conv_decoder(
    data_shape: Sequence[int],
    latent_dim: int,
    filters: Sequence[int] = (32, 64),
    hidden_units: Sequence[int] = (16,),
    initializer: Initializer = "glorot_uniform",
    outputs_per_value: int = 1,
) -> keras.Sequential:
    """The conv encoder in reverse: dense layers, then stride-2 3x3 transposed convolutions up to the image."""
    data_shape = _check_image_shape(data_shape, filters)
    height, width = data_shape[0], data_shape[1]
    channels = data_shape[2] if len(data_shape) == 3 else 1
    shrink = 2 ** len(filters)
    layers: list[keras.layers.Layer] = [keras.Input(shape=(latent_dim,))]
    layers += [_dense(units, "relu", initializer) for units in reversed(hidden_units)]
    layers.append(_dense((height // shrink) * (width // shrink) * filters[-1], "relu", initializer))
    layers.append(keras.layers.Reshape((height // shrink, width // shrink, filters[-1])))
    layers += [
        keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu", kernel_initializer=initializer)
        for f in reversed(filters)
    ]
    layers.append(
        keras.layers.Conv2DTranspose(channels * outputs_per_value, 3, padding="same", kernel_initializer=initializer)
    )
    layers.append(keras.layers.Reshape((*data_shape, outputs_per_value)))
    return keras.Sequential(layers, name="decoder")

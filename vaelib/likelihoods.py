r"""The decoder's likelihoods :math:`p_\theta(x|z)`: what the decoder's numbers mean and which data they accept.

A decoder network maps :math:`z` to numbers; a *likelihood* turns them into a distribution over the data.
Each likelihood here owns three things, so that the model never asks which one it has:

* its **parameterisation**: how many numbers the decoder gives per data value, and what they mean;
* its **support**: the data values it assigns a density to (a datum outside is an error, not a NaN);
* its **binarisation default**: whether training data are binarised afresh every pass.

* :class:`Bernoulli`: support :math:`\{0, 1\}`; one number per value, the logit :math:`\ell`; data
  binarised afresh every pass by default;
* :class:`ContinuousBernoulli`: support :math:`[0, 1]`; one number per value, the logit :math:`\ell`;
* :class:`Gaussian`: support :math:`\mathbb{R}`; one number per value, the mean :math:`\mu` (with a learned
  :math:`\sigma` per value), or two, :math:`\mu` and a raw value of :math:`\sigma`.

The Bernoulli's support is :math:`\{0, 1\}`, but it accepts any :math:`x \in [0, 1]`: with grey levels
:math:`x\,\ell - \log(1 + e^{\ell})` is minus a cross-entropy, which the book uses on purpose (and
evaluation warns about). The continuous Bernoulli (Loaiza-Ganem & Cunningham 2019) is the proper density
on :math:`[0, 1]` with the same logit: :math:`p(x|\ell) = C(\ell)\,\sigma(\ell)^x (1 - \sigma(\ell))^{1-x}`,
whose normalising constant :math:`C(\ell)` the cross-entropy leaves out. The Gaussian's mean uses the
identity link (any real value), its scale is :math:`\sigma = \operatorname{softplus}(h) + 10^{-3}`.

Likelihoods are Keras layers only to own weights (the Gaussian's learned scale) and to be saved with the
model; call :meth:`Likelihood.distribution`, not the layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from vaelib.distributions import LogitBernoulli

tfd = tfp.distributions

__all__ = ["Likelihood", "Bernoulli", "ContinuousBernoulli", "Gaussian", "get"]

MIN_SCALE = 1e-3  # the Gaussian's sigma = softplus(h) + MIN_SCALE: it cannot collapse to 0


class Likelihood(keras.layers.Layer):
    r"""The distribution :math:`p_\theta(x|z)` of one data point given the decoder's numbers.

    Subclasses set ``support`` (the closed range of values accepted, ``(low, high)``),
    ``parameters_per_value`` (how many numbers per data value the decoder may give; the first is
    the default) and ``binarization`` (``"dynamic"`` or ``None``), and implement
    ``_distribution``.
    """

    support: tuple[float, float] = (-math.inf, math.inf)
    parameters_per_value: tuple[int, ...] = (1,)
    binarization: str | None = None
    fix_outside_support = ""  # what to tell a reader whose data lie outside the support

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_shape: tuple[int, ...] | None = None
        self.parameters = self.parameters_per_value[0]

    def build(self, data_shape: Sequence[int], parameters: int | None = None) -> None:
        """Fix the shape of one data point and the decoder's numbers per value (checked against the allowed)."""
        parameters = self.parameters_per_value[0] if parameters is None else int(parameters)
        if parameters not in self.parameters_per_value:
            allowed = " or ".join(map(str, self.parameters_per_value))
            raise ValueError(
                f"a {type(self).__name__} likelihood takes {allowed} number(s) per data value from the decoder, "
                f"got {parameters}"
            )
        data_shape = tuple(int(d) for d in data_shape)
        if self.data_shape is not None:  # built already (e.g. loaded with its model): for the same data only
            if (data_shape, parameters) != (self.data_shape, self.parameters):
                raise ValueError(
                    f"this {type(self).__name__} likelihood was built for data of shape {self.data_shape} with "
                    f"{self.parameters} number(s) per value; a model with data of shape {data_shape} and "
                    f"{parameters} needs a likelihood of its own"
                )
            return
        self.data_shape, self.parameters = data_shape, parameters
        self._create_weights()
        self.built = True

    def _create_weights(self) -> None:
        """The likelihood's own weights, once the data's shape is known (none by default)."""

    def distribution(self, outputs: tf.Tensor) -> tfd.Distribution:
        """:math:`p(x|z)` from the decoder's ``outputs`` of shape ``(..., *data_shape, parameters)``.

        The result has event shape ``data_shape`` and batch shape ``outputs.shape[:-1 - len(data_shape)]``.
        """
        if self.data_shape is None:
            raise ValueError(f"the {type(self).__name__} likelihood is not built: build(data_shape) first")
        return tfd.Independent(self._distribution(outputs), reinterpreted_batch_ndims=len(self.data_shape))

    def _distribution(self, outputs: tf.Tensor) -> tfd.Distribution:
        raise NotImplementedError

    def check_support(self, values: np.ndarray, name: str = "x") -> None:
        """Raise ``ValueError`` if ``values`` (finite) lie outside the support, naming the range found and the fix."""
        low, high = self.support
        if values.size and (values.min() < low or values.max() > high):
            raise ValueError(
                f"{name} must lie in [{low:g}, {high:g}] for a {type(self).__name__} likelihood; got values in "
                f"[{values.min():g}, {values.max():g}]. {self.fix_outside_support}"
            )

    def check_binarization(self, binarize: str | None) -> str | None:
        """``binarize`` if this likelihood allows it; ``"default"`` becomes ``binarization``."""
        if binarize == "default":
            return self.binarization
        if binarize not in ("dynamic", "fixed", None):
            raise ValueError(f"binarize must be 'default', 'dynamic', 'fixed' or None; got {binarize!r}")
        if binarize is not None and not isinstance(self, Bernoulli):
            raise ValueError(
                f"binarize={binarize!r} makes binary data, which only a Bernoulli likelihood models; this "
                f"likelihood is {type(self).__name__}: use binarize=None (or the default) for its data"
            )
        return binarize

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def call(self, outputs: tf.Tensor) -> tf.Tensor:
        """The mean of :meth:`distribution` (a layer must return tensors)."""
        return self.distribution(outputs).mean()

    def get_build_config(self) -> dict[str, Any] | None:
        if self.data_shape is None:
            return None
        return {"data_shape": list(self.data_shape), "parameters": self.parameters}

    def build_from_config(self, config: dict[str, Any]) -> None:
        self.build(config["data_shape"], config["parameters"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@keras.saving.register_keras_serializable(package="vaelib")
class Bernoulli(Likelihood):
    r"""Independent Bernoulli values with logits :math:`\ell`: :math:`\log p(x|\ell) = x\,\ell - \log(1 + e^{\ell})`.

    Data in :math:`[0, 1]`; by default binarised afresh every pass (:func:`vaelib.dynamic_binarize`).
    """

    support = (0.0, 1.0)
    binarization = "dynamic"
    fix_outside_support = (
        "Scale the data into [0, 1] (images / 255), or use a likelihood for real-valued data: likelihood='gaussian'."
    )

    def _distribution(self, outputs: tf.Tensor) -> tfd.Distribution:
        return LogitBernoulli(logits=outputs[..., 0], dtype=outputs.dtype)


@keras.saving.register_keras_serializable(package="vaelib")
class ContinuousBernoulli(Likelihood):
    r"""The continuous Bernoulli on :math:`[0, 1]` with logits :math:`\ell`, a normalised density for grey levels.

    :math:`\log p(x|\ell) = x\,\ell - \log(1 + e^{\ell}) + \log C(\ell)` with the normalising constant
    :math:`C(\ell) = \ell / \tanh(\ell/2)` (:math:`C(0) = 2`), which the Bernoulli's cross-entropy leaves out.
    This is TFP's ``ContinuousBernoulli``; its mean is not :math:`\sigma(\ell)`.
    """

    support = (0.0, 1.0)
    fix_outside_support = (
        "Scale the data into [0, 1] (images / 255), or use a likelihood for real-valued data: likelihood='gaussian'."
    )

    def _distribution(self, outputs: tf.Tensor) -> tfd.Distribution:
        return tfd.ContinuousBernoulli(logits=outputs[..., 0])


@keras.saving.register_keras_serializable(package="vaelib")
class Gaussian(Likelihood):
    r"""Independent Gaussian values: the mean :math:`\mu` by the identity link, :math:`\sigma` learned.

    The scale is :math:`\sigma = \operatorname{softplus}(h) + 10^{-3}`.

    With one number per value from the decoder, :math:`\sigma` is a learned weight per data value (the same
    for every :math:`z`), starting at 1; with two, the second number gives :math:`\sigma` as a function of
    :math:`z`, as in the paper's Frey Face decoder (its appendix C.2), which outputs :math:`\log\sigma^2` where
    this likelihood takes the raw value of :math:`\sigma = \operatorname{softplus}(h) + 10^{-3}`. The floor bounds
    the log-density of one value by :math:`-\log(10^{-3}\sqrt{2\pi}) \approx 5.99` nats.
    """

    parameters_per_value = (1, 2)
    fix_outside_support = "Replace or drop the NaN or infinite values."

    def _create_weights(self) -> None:
        if self.parameters == 1:
            # softplus(log(e - 1)) = 1: sigma starts at 1 + MIN_SCALE
            self.raw_scale = self.add_weight(
                name="raw_scale",
                shape=self.data_shape,
                initializer=keras.initializers.Constant(math.log(math.e - 1.0)),
            )

    def _distribution(self, outputs: tf.Tensor) -> tfd.Distribution:
        raw_scale = outputs[..., 1] if self.parameters == 2 else tf.convert_to_tensor(self.raw_scale)
        scale = tf.nn.softplus(raw_scale) + MIN_SCALE
        loc = outputs[..., 0]
        return tfd.Normal(loc=loc, scale=tf.broadcast_to(scale, tf.shape(loc)))


_NAMES = {"bernoulli": Bernoulli, "continuous_bernoulli": ContinuousBernoulli, "gaussian": Gaussian}


def get(likelihood: str | dict | Likelihood) -> Likelihood:
    """A likelihood from its name (``"bernoulli"``, ``"continuous_bernoulli"``, ``"gaussian"``), config, or itself."""
    if isinstance(likelihood, Likelihood):
        return likelihood
    if isinstance(likelihood, str) and likelihood in _NAMES:
        return _NAMES[likelihood]()
    if isinstance(likelihood, dict):
        return keras.saving.deserialize_keras_object(likelihood)
    raise ValueError(
        f"likelihood must be one of {', '.join(map(repr, _NAMES))} or a vaelib.likelihoods.Likelihood, "
        f"got {likelihood!r}"
    )

r"""Distributions: the decoder's Bernoulli, written for speed where TFP's general form is slow, and saving a prior.

:class:`LogitBernoulli` is ``tfp.distributions.Bernoulli`` with its log-probability written as one
fused expression of the logits :math:`\ell = \operatorname{logit} \pi`:

.. math::

    \begin{aligned}
    \log p(x \mid \ell) &= x \log \sigma(\ell) + (1 - x) \log(1 - \sigma(\ell)) \\
                        &= x\,\ell - \log(1 + e^{\ell}),
    \end{aligned}

using :math:`\log \sigma(\ell) = \ell - \operatorname{softplus}(\ell)` and
:math:`\log(1 - \sigma(\ell)) = -\operatorname{softplus}(\ell)`. It equals TFP's value for every
:math:`x \in [0, 1]` (for grey levels too, where it is the cross-entropy rather than a log-probability)
and costs half as much: the decoder's log-likelihood is computed for every pixel of every sample.

Its samples are TFP's too (:math:`x = [u < \sigma(\ell)]`, :math:`u \sim U(0, 1)`), with the uniforms
drawn by the Philox generator by name. Unnamed, TensorFlow lets XLA pick the generator, and with the
one it picks a 100 x 784 draw took 54-73 ms on a 2-core AMD EPYC, against 2.2 ms with Philox; outside XLA
TensorFlow picks Philox itself, so there the draws are exactly TFP's. Wake-sleep dreams such a batch
every step: its step on the 784-100-3 model went from 21.7 to 9.7 ms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

__all__ = ["LogitBernoulli", "serialize_distribution", "deserialize_distribution"]


class LogitBernoulli(tfp.distributions.Bernoulli):
    r"""A Bernoulli distribution (from logits) whose ``log_prob`` is :math:`x\,\ell - \operatorname{softplus}(\ell)`.

    Everything else (sampling, mean, entropy, batch slicing) is ``tfp.distributions.Bernoulli``'s, but for
    the default ``dtype``: float32, not TFP's int32, which would round grey levels to 0 before the
    log-probability sees them.
    """

    def __init__(
        self,
        logits: Any = None,
        probs: Any = None,
        dtype: tf.DType = tf.float32,
        validate_args: bool = False,
        allow_nan_stats: bool = True,
        name: str = "LogitBernoulli",
    ) -> None:
        parameters = dict(locals())
        super().__init__(
            logits=logits,
            probs=probs,
            dtype=dtype,
            validate_args=validate_args,
            allow_nan_stats=allow_nan_stats,
            name=name,
        )
        self._parameters = parameters

    @classmethod
    def _parameter_properties(cls, dtype: Any, num_classes: Any = None) -> dict[str, Any]:
        return tfp.distributions.Bernoulli._parameter_properties(dtype, num_classes=num_classes)

    def _sample_n(self, n: int, seed: int | tf.Tensor | None = None) -> tf.Tensor:
        probs = self._probs_parameter_no_checks()
        shape = tf.concat([[n], tf.shape(probs)], axis=0)
        uniform = tf.random.stateless_uniform(shape, tfp.random.sanitize_seed(seed), dtype=probs.dtype, alg="philox")
        return tf.cast(uniform < probs, self.dtype)

    def _log_prob(self, event: tf.Tensor) -> tf.Tensor:
        logits = self._logits_parameter_no_checks()
        return tf.cast(event, logits.dtype) * logits - tf.nn.softplus(logits)


def serialize_distribution(distribution: tfp.distributions.Distribution) -> dict[str, Any]:
    """A JSON-able description of a TFP distribution: its class and its parameters' values.

    For a model's prior, saved with the model: parameters may be numbers, arrays (tensors and variables are
    saved as their values), strings, dtypes and other distributions. Anything else is a ``TypeError``.
    """
    parameters: dict[str, Any] = {}
    for key, value in distribution.parameters.items():
        if value is None or isinstance(value, (bool, int, float, str)):
            parameters[key] = value
        elif isinstance(value, tfp.distributions.Distribution):
            parameters[key] = serialize_distribution(value)
        elif isinstance(value, tf.DType):
            parameters[key] = {"dtype": value.name}
        elif tf.is_tensor(value) or isinstance(value, (np.ndarray, np.generic)):
            array = np.asarray(value)
            parameters[key] = {"array": array.tolist(), "dtype": array.dtype.name}
        else:
            raise TypeError(
                f"{type(distribution).__name__}'s parameter {key} ({type(value).__name__}) cannot be saved: a saved "
                "prior's parameters must be numbers, arrays, dtypes or distributions"
            )
    return {"class_name": type(distribution).__name__, "parameters": parameters}


def deserialize_distribution(config: dict[str, Any]) -> tfp.distributions.Distribution:
    """The distribution :func:`serialize_distribution` described."""

    def value(v: Any) -> Any:
        if isinstance(v, dict) and "class_name" in v:
            return deserialize_distribution(v)
        if isinstance(v, dict) and "array" in v:
            return tf.constant(np.asarray(v["array"], dtype=v["dtype"]))
        if isinstance(v, dict) and "dtype" in v:
            return tf.as_dtype(v["dtype"])
        return v

    cls = getattr(tfp.distributions, config["class_name"], None)
    if not (isinstance(cls, type) and issubclass(cls, tfp.distributions.Distribution)):
        raise ValueError(f"{config['class_name']!r} is not a distribution of tfp.distributions")
    return cls(**{k: value(v) for k, v in config["parameters"].items()})

r"""Distributions the decoder returns, written for speed where TFP's general form is slow.

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
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp

__all__ = ["LogitBernoulli"]


class LogitBernoulli(tfp.distributions.Bernoulli):
    r"""A Bernoulli distribution (from logits) whose ``log_prob`` is :math:`x\,\ell - \operatorname{softplus}(\ell)`.

    Everything else (sampling, mean, entropy, batch slicing) is ``tfp.distributions.Bernoulli``'s.
    """

    def _log_prob(self, event: tf.Tensor) -> tf.Tensor:
        logits = self._logits_parameter_no_checks()
        return tf.cast(event, logits.dtype) * logits - tf.nn.softplus(logits)

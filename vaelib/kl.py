r"""The KL term of the bound, :math:`\mathcal{L}_1 = -\mathrm{KL}(q(z|x) \,\|\, p(z))`.

For a diagonal Gaussian encoder :math:`q(z|x) = \mathcal{N}(\mu, \operatorname{diag}\sigma^2)` and the
prior :math:`p(z) = \mathcal{N}(0, I)` the KL has the closed form (Kingma & Welling 2013, Appendix B)

.. math::

    \mathrm{KL}(q(z|x) \,\|\, p(z)) = -\tfrac12 \sum_{j=1}^{N_z}
        \left(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\right).

:func:`vaelib.monte_carlo_kl` estimates the same quantity from samples :math:`z^{(l)} \sim q(z|x)`:
:math:`\frac1L \sum_l \log q(z^{(l)}|x) - \log p(z^{(l)})`.
"""

from __future__ import annotations

import math

import tensorflow as tf
import tensorflow_probability as tfp

from vaelib._checks import check_positive_int, stateless_seed

tfd = tfp.distributions

__all__ = ["gaussian_kl", "monte_carlo_kl", "diagonal_gaussian", "standard_normal", "reparameterized_sample"]

_STANDARD_NORMAL = "standard_normal"


def standard_normal(latent_dim: int, dtype: tf.DType = tf.float32) -> tfd.MultivariateNormalDiag:
    r"""The prior :math:`p(z) = \mathcal{N}(0, I)` over :math:`N_z` = ``latent_dim`` dimensions."""
    return tfd.MultivariateNormalDiag(loc=tf.zeros([latent_dim], dtype=dtype), name=_STANDARD_NORMAL)


def is_standard_normal(distribution: tfd.Distribution) -> bool:
    """True for a prior made by :func:`standard_normal`."""
    return isinstance(distribution, tfd.MultivariateNormalDiag) and distribution.name == _STANDARD_NORMAL


def _as_float(mean: tf.Tensor, log_var: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    mean = tf.convert_to_tensor(mean)
    if not mean.dtype.is_floating:
        mean = tf.cast(mean, tf.float32)
    log_var = tf.convert_to_tensor(log_var, dtype=mean.dtype)
    if mean.shape.rank is not None and mean.shape.rank < 1:
        raise ValueError(f"mean must have a latent dimension (shape (..., N_z)), got shape {mean.shape}")
    if mean.shape.is_fully_defined() and log_var.shape.is_fully_defined() and mean.shape != log_var.shape:
        raise ValueError(f"mean and log_var must have the same shape, got {mean.shape} and {log_var.shape}")
    return mean, log_var


def gaussian_kl(mean: tf.Tensor, log_var: tf.Tensor) -> tf.Tensor:
    r"""Closed-form :math:`\mathrm{KL}(\mathcal{N}(\mu, \sigma^2) \| \mathcal{N}(0, I))` per example.

    Computes :math:`-\tfrac12 \sum_j (1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2)`, summed over the last
    (latent) axis.

    Args:
        mean: :math:`\mu`, shape ``(..., N_z)``.
        log_var: :math:`\log\sigma^2`, the same shape.

    Returns:
        The KL in nats, shape ``(...)``.
    """
    mean, log_var = _as_float(mean, log_var)
    return -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mean) - tf.exp(log_var), axis=-1)


def diagonal_gaussian(mean: tf.Tensor, log_var: tf.Tensor) -> tfd.MultivariateNormalDiag:
    r""":math:`\mathcal{N}(\mu, \operatorname{diag}\sigma^2)` with batch shape ``(...)``, event ``(N_z,)``."""
    mean, log_var = _as_float(mean, log_var)
    return tfd.MultivariateNormalDiag(loc=mean, scale_diag=tf.exp(0.5 * log_var))


def reparameterized_sample(q: tfd.Distribution, num_samples: int = 1, seed: int | tf.Tensor | None = None) -> tf.Tensor:
    r"""Draws :math:`z^{(l)} = \mu + \sigma \odot \epsilon^{(l)}` with :math:`\epsilon^{(l)} \sim \mathcal{N}(0, I)`.

    ``seed`` follows vaelib's convention (``None``, an int, or a shape-``[2]`` integer tensor). For ``q`` a
    ``tfp.distributions.MultivariateNormalDiag``:
    the same numbers as ``q.sample(num_samples, seed=seed)`` and the same gradients with respect to
    :math:`\mu` and :math:`\sigma`. TFP draws :math:`\epsilon` in the shape ``(L * N_z, ...)``, reshapes it
    to ``(L, N_z, ...)`` and moves the event axis last, and so does this function, but it names the Philox
    generator, the one TensorFlow selects on a CPU or a GPU, instead of leaving the choice to TensorFlow.
    Inside an XLA-compiled step on a CPU, leaving it costs about a millisecond per call (measured on an
    AMD EPYC: 1.2 ms against 0.2 ms for 100 x 20 draws), a fifth of a training step of the paper's
    model. Any other ``q`` is sampled by TFP.

    Returns:
        :math:`z`, shape ``(L, ...) + (N_z,)``: ``num_samples`` first, then ``q``'s batch and event shapes.
    """
    num_samples = check_positive_int(num_samples, "num_samples")
    seed = stateless_seed(seed)
    diagonal = isinstance(q, tfd.MultivariateNormalDiag) and isinstance(q.scale, tf.linalg.LinearOperatorDiag)
    if not diagonal or q.loc is None or q.batch_shape.rank is None:
        return q.sample(num_samples, seed=seed)
    loc, scale = tf.convert_to_tensor(q.loc), q.scale.diag
    rank = q.batch_shape.rank + 1  # batch axes and the event axis
    events, batch = q.event_shape_tensor(), q.batch_shape_tensor()
    # drawn in TFP's shape (L N_z, ...): compiled by XLA, the generator's numbers depend on the shape
    draw_shape = tf.concat([num_samples * events, batch], axis=0)
    eps = tf.random.stateless_normal(draw_shape, seed=seed, dtype=q.dtype, alg="philox")
    eps = tf.reshape(eps, tf.concat([[num_samples], events, batch], axis=0))
    eps = tf.transpose(eps, [0, *range(2, rank + 1), 1])  # (L, N_z, ...) to (L, ..., N_z)
    return eps * scale + loc


def monte_carlo_kl(
    mean: tf.Tensor,
    log_var: tf.Tensor,
    num_samples: int = 1,
    seed: int | tf.Tensor | None = None,
    return_stderr: bool = False,
) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
    r"""Monte Carlo estimate of :math:`\mathrm{KL}(q \| p)` with ``num_samples`` draws per example.

    :math:`\widehat{\mathrm{KL}} = \frac1L \sum_{l=1}^{L} \left[\log q(z^{(l)}|x) - \log p(z^{(l)})\right]`,
    :math:`z^{(l)} \sim q(z|x) = \mathcal{N}(\mu, \operatorname{diag}\sigma^2)`, :math:`p(z) = \mathcal{N}(0, I)`.
    It is unbiased for :func:`vaelib.gaussian_kl`. With ``return_stderr=True`` it also returns the standard
    error of the estimate, :math:`s / \sqrt{L}` with :math:`s` the sample standard deviation.
    """
    num_samples = check_positive_int(num_samples, "num_samples")
    q = diagonal_gaussian(mean, log_var)
    prior = standard_normal(q.event_shape[-1], q.dtype)
    z = reparameterized_sample(q, num_samples, stateless_seed(seed))
    log_ratio = q.log_prob(z) - prior.log_prob(z)
    estimate = tf.reduce_mean(log_ratio, axis=0)
    if not return_stderr:
        return estimate
    if num_samples < 2:
        raise ValueError("the standard error needs num_samples >= 2")
    bessel = math.sqrt(num_samples / (num_samples - 1.0))
    stderr = tf.math.reduce_std(log_ratio, axis=0) * bessel / math.sqrt(num_samples)
    return estimate, stderr

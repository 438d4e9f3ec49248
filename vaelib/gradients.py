r"""Two estimators of :math:`\nabla_\phi \mathbb{E}_{q_\phi(z)}[f(z)]` and a way to measure them.

With :math:`q_\phi(z) = \mathcal{N}(\mu, \operatorname{diag}\sigma^2)`, :math:`\phi = (\mu, \log\sigma^2)`:

* score function (REINFORCE, likelihood ratio):
  :math:`\nabla_\phi \mathbb{E}_q[f] = \mathbb{E}_q[f(z)\,\nabla_\phi \log q_\phi(z)]
  \approx \frac1L \sum_l f(z^{(l)})\,\nabla_\phi \log q_\phi(z^{(l)})`, :math:`z^{(l)} \sim q_\phi`;
* reparameterisation: with :math:`z = \mu + \sigma \odot \epsilon`, :math:`\epsilon \sim \mathcal{N}(0, I)`,
  :math:`\nabla_\phi \mathbb{E}_q[f] = \mathbb{E}_\epsilon[\nabla_\phi f(\mu + \sigma\odot\epsilon)]
  \approx \frac1L \sum_l \nabla_\phi f(\mu + \sigma \odot \epsilon^{(l)})`.

Both are unbiased; their variances differ, often by orders of magnitude.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from vaelib._checks import check_choice, check_positive_int, stateless_seed

__all__ = ["score_function_gradient", "reparameterization_gradient", "gradient_moments"]

Objective = Callable[[tf.Tensor], tf.Tensor]
Gradient = tuple[tf.Tensor, tf.Tensor]


def _inputs(mean: tf.Tensor, log_var: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    mean = tf.convert_to_tensor(mean)
    if not mean.dtype.is_floating:
        mean = tf.cast(mean, tf.float32)
    log_var = tf.convert_to_tensor(log_var, dtype=mean.dtype)
    if mean.shape != log_var.shape:
        raise ValueError(f"mean and log_var must have the same shape, got {mean.shape} and {log_var.shape}")
    if mean.shape.rank is None or mean.shape.rank < 1:
        raise ValueError(f"mean must have shape (..., N_z), got {mean.shape}")
    return mean, log_var


def _values(f: Objective, z: tf.Tensor) -> tf.Tensor:
    values = f(z)
    if values.shape != z.shape[:-1]:
        raise ValueError(f"f must map z of shape (L, ..., N_z) = {z.shape} to shape {z.shape[:-1]}, got {values.shape}")
    return values


def reparameterization_gradient(
    f: Objective, mean: tf.Tensor, log_var: tf.Tensor, num_samples: int = 1, seed: int | tf.Tensor | None = None
) -> Gradient:
    r"""The reparameterised estimate of :math:`\nabla_{(\mu, \log\sigma^2)} \sum \mathbb{E}_q[f(z)]`.

    ``f`` maps ``z`` of shape ``(L, ..., N_z)`` to values of shape ``(L, ...)``; the objective is the sum of
    :math:`\mathbb{E}_q[f]` over the batch dimensions ``...``. Returns the gradients with respect to
    ``mean`` and ``log_var`` (same shapes as them).
    """
    num_samples = check_positive_int(num_samples, "num_samples")
    mean, log_var = _inputs(mean, log_var)
    eps = tf.random.stateless_normal((num_samples, *mean.shape), seed=stateless_seed(seed), dtype=mean.dtype)
    with tf.GradientTape() as tape:
        tape.watch([mean, log_var])
        z = mean + tf.exp(0.5 * log_var) * eps
        objective = tf.reduce_sum(tf.reduce_mean(_values(f, z), axis=0))
    g_mean, g_log_var = tape.gradient(objective, [mean, log_var])
    return g_mean, g_log_var


def score_function_gradient(
    f: Objective, mean: tf.Tensor, log_var: tf.Tensor, num_samples: int = 1, seed: int | tf.Tensor | None = None
) -> Gradient:
    r"""The score-function estimate of :math:`\nabla_{(\mu, \log\sigma^2)} \sum \mathbb{E}_q[f(z)]`.

    Uses only values of ``f`` (no derivative of ``f``): the surrogate
    :math:`\frac1L\sum_l f(z^{(l)}) \log q_\phi(z^{(l)})` with :math:`z^{(l)}` and :math:`f` held fixed has
    the estimator as its gradient. Arguments as in :func:`reparameterization_gradient`.
    """
    num_samples = check_positive_int(num_samples, "num_samples")
    mean, log_var = _inputs(mean, log_var)
    eps = tf.random.stateless_normal((num_samples, *mean.shape), seed=stateless_seed(seed), dtype=mean.dtype)
    z = tf.stop_gradient(mean + tf.exp(0.5 * log_var) * eps)
    values = tf.stop_gradient(_values(f, z))
    with tf.GradientTape() as tape:
        tape.watch([mean, log_var])
        # log N(z; mu, sigma^2) up to a constant, per sample and batch element
        log_q = -0.5 * tf.reduce_sum(log_var + tf.square(z - mean) / tf.exp(log_var), axis=-1)
        surrogate = tf.reduce_sum(tf.reduce_mean(values * log_q, axis=0))
    g_mean, g_log_var = tape.gradient(surrogate, [mean, log_var])
    return g_mean, g_log_var


ESTIMATORS = {"score_function": score_function_gradient, "reparameterization": reparameterization_gradient}


def gradient_moments(
    estimator: str,
    f: Objective,
    mean: tf.Tensor,
    log_var: tf.Tensor,
    num_samples: int = 1,
    num_repeats: int = 100,
    seed: int = 0,
) -> dict[str, tf.Tensor]:
    r"""Mean and variance of a gradient estimator over ``num_repeats`` independent estimates.

    ``estimator`` is ``"score_function"`` or ``"reparameterization"``. The repeats run as one batch:
    ``mean`` and ``log_var`` are tiled ``num_repeats`` times along a new leading axis, so ``f`` must accept
    ``z`` of shape ``(L, R, ..., N_z)``. Returns ``{"mean_mu", "var_mu", "mean_log_var", "var_log_var"}``,
    each of the shape of ``mean``; the variances are unbiased sample variances of single estimates.
    """
    check_choice(estimator, "estimator", tuple(ESTIMATORS))
    num_repeats = check_positive_int(num_repeats, "num_repeats")
    if num_repeats < 2:
        raise ValueError("gradient_moments needs num_repeats >= 2 to measure a variance")
    mean, log_var = _inputs(mean, log_var)
    tiled = [tf.repeat(v[tf.newaxis], num_repeats, axis=0) for v in (mean, log_var)]
    g_mean, g_log_var = ESTIMATORS[estimator](f, *tiled, num_samples=num_samples, seed=seed)
    correction = num_repeats / (num_repeats - 1)
    return {
        "mean_mu": tf.reduce_mean(g_mean, axis=0),
        "var_mu": tf.math.reduce_variance(g_mean, axis=0) * correction,
        "mean_log_var": tf.reduce_mean(g_log_var, axis=0),
        "var_log_var": tf.math.reduce_variance(g_log_var, axis=0) * correction,
    }

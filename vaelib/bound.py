r"""The variational lower bound :math:`\mathcal{L}_B` and its Monte Carlo estimators.

For every data point,

.. math::

    \log p(x) = \mathcal{L}_B + \mathrm{KL}(q(z|x) \,\|\, p(z|x)) \ge \mathcal{L}_B,

    \mathcal{L}_B = \underbrace{-\mathrm{KL}(q(z|x) \,\|\, p(z))}_{\mathcal{L}_1}
                  + \underbrace{\mathbb{E}_{q(z|x)}[\log p(x|z)]}_{\mathcal{L}_2}.

:math:`\mathcal{L}_2` is estimated with :math:`L` reparameterised samples
:math:`z^{(l)} = \mu + \sigma \odot \epsilon^{(l)}`, :math:`\epsilon^{(l)} \sim \mathcal{N}(0, I)`:
:math:`\widehat{\mathcal{L}}_2 = \frac1L \sum_l \log p(x|z^{(l)})`. Over a minibatch :math:`X_M` of
:math:`M` of the :math:`N` data points the paper's estimator (its eq. 8) is
:math:`\mathcal{L}_B(X) \approx \frac{N}{M} \sum_{x \in X_M} \widehat{\mathcal{L}}_B(x)`.

The importance-weighted bound (Burda et al. 2016) with :math:`k` samples,
:math:`\mathcal{L}^{\mathrm{IW}}_k = \mathbb{E}\left[\log \frac1k \sum_{i=1}^k \frac{p(x, z_i)}{q(z_i|x)}\right]`,
satisfies :math:`\mathcal{L}_B = \mathcal{L}^{\mathrm{IW}}_1 \le \mathcal{L}^{\mathrm{IW}}_k \le \log p(x)` and tends to
:math:`\log p(x)` as :math:`k \to \infty`.

Every function here takes a *model* with ``encode(x)`` (returning :math:`q(z|x)`), ``decode(z)``
(returning :math:`p(x|z)`) and ``prior`` (:math:`p(z)`): any :class:`~vaelib.VAE`, whatever its
networks, likelihood and prior, and :class:`~vaelib.LinearGaussianModel` qualify.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from vaelib._checks import check_choice, check_positive_int, stateless_seed
from vaelib.kl import gaussian_kl, is_standard_normal, reparameterized_sample
from vaelib.likelihoods import Bernoulli

tfd = tfp.distributions

__all__ = [
    "elbo",
    "elbo_terms",
    "minibatch_elbo",
    "iwae_bound",
    "iwae_terms",
    "kl_to_prior",
    "log_weights",
    "warn_if_not_binary",
    "GreyLevelWarning",
]

KL_METHODS = ("analytic", "mc", "stl")  # the paper's estimators B and A, and A's path derivative
OBJECTIVES = ("elbo", "iwae")


def kl_to_prior(q: tfd.Distribution, prior: tfd.Distribution) -> tf.Tensor:
    r""":math:`\mathrm{KL}(q(z|x) \| p(z))` in closed form, per example.

    A diagonal Gaussian ``q`` against the standard-normal prior uses :func:`~vaelib.gaussian_kl`
    (:math:`\log\sigma^2 = 2 \log \sigma`); any other pair falls back to
    ``tfp.distributions.kl_divergence``.
    """
    if isinstance(q, tfd.MultivariateNormalDiag) and is_standard_normal(prior):
        return gaussian_kl(q.mean(), 2.0 * tf.math.log(q.stddev()))
    return tfd.kl_divergence(q, prior)


def _check_probabilistic(model: Any, posterior: tfd.Distribution | None, what: str) -> None:
    """A model whose encoder is a point mass (an autoencoder) has no q(z|x): its bounds are meaningless."""
    if posterior is None and not getattr(model, "probabilistic_encoder", True):
        raise TypeError(
            f"the {what} needs a distribution q(z|x), and {type(model).__name__}'s encoder returns a point mass "
            "(a deterministic autoencoder): use a vaelib.VAE"
        )


def _data(model: Any, x: Any) -> tf.Tensor:
    check = getattr(model, "check_data", None)
    x = check(x) if check is not None else tf.convert_to_tensor(x)
    warn_if_not_binary(model, x)
    return x


def warn_if_not_binary(model: Any, x: tf.Tensor) -> None:
    r"""Warn when a Bernoulli model is evaluated on grey levels (run eagerly; a compiled step is not checked).

    :math:`\log p(x|z)` of grey levels under independent Bernoulli pixels is minus a cross-entropy, not a
    log-probability, so the number is not comparable with any published binarised-MNIST figure.
    """
    if not isinstance(getattr(model, "likelihood", None), Bernoulli) or not tf.executing_eagerly():
        return
    if bool(tf.reduce_any(tf.logical_and(tf.not_equal(x, 0.0), tf.not_equal(x, 1.0)))):
        warnings.warn(
            "evaluating a Bernoulli model on data that are not binary (grey levels): the result is not a "
            "log-likelihood and not comparable with binarised-MNIST figures. Binarise first, with "
            "vaelib.fixed_binarize for evaluation or vaelib.dynamic_binarize for training.",
            GreyLevelWarning,
            stacklevel=3,
        )


class GreyLevelWarning(UserWarning):
    """A Bernoulli model was evaluated on grey levels (see :func:`warn_if_not_binary`)."""


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {(function, options): tf.function}


def _runs_compiled(model: Any) -> bool:
    """Whether an estimator called eagerly on ``model`` runs itself as a compiled ``tf.function`` (Keras models only).

    Called in a Python loop, as the chapters do hundreds of times, an estimator spends most of its time
    building ``tfp.distributions`` objects and dispatching single ops; compiled, it runs the same
    computation (the same random numbers, from the same stateless seed) as one graph. Inside a traced
    function (a training step, or the compiled estimator itself) it is part of that graph already.
    """
    return tf.executing_eagerly() and isinstance(model, keras.Model)


def _compiled(model: Any, function: Callable, *options: Any) -> Callable:
    """``function(model, x, *options, seed)`` as a ``tf.function`` of ``(x, seed)``, traced once per model and options.

    Kept per model in a weak dictionary (the function refers to the model only weakly), so it lives as
    long as the model does; the model's weights are read when it runs, so training in between is seen.
    """
    per_model = _COMPILED.setdefault(model, {})
    key = (function, *options)
    if key not in per_model:
        model_ref = weakref.ref(model)
        per_model[key] = tf.function(
            lambda x, seed: function(model_ref(), x, *options, seed), reduce_retracing=True, autograph=False
        )
    return per_model[key]


def elbo_terms(
    model: Any,
    x: tf.Tensor,
    num_samples: int = 1,
    kl: str = "analytic",
    seed: int | tf.Tensor | None = None,
    posterior: tfd.Distribution | None = None,
) -> dict[str, tf.Tensor]:
    r"""Per-example estimates of :math:`\mathcal{L}_B`, :math:`\mathrm{KL}(q \| p(z))` and :math:`\mathcal{L}_2`.

    Args:
        model: provides ``encode``, ``decode`` and ``prior``.
        x: a batch of data, shape ``(batch, *data_shape)`` (not re-checked here: see :func:`elbo`).
        num_samples: :math:`L`, samples of :math:`z` per data point.
        kl: ``"analytic"`` for the closed form of :math:`\mathcal{L}_1` (the paper's estimator
            :math:`\widetilde{\mathcal{L}}^B`), ``"mc"`` to estimate it with the same samples,
            :math:`\frac1L\sum_l \big(\log q(z^{(l)}|x) - \log p(z^{(l)})\big)` (the paper's generic estimator
            :math:`\widetilde{\mathcal{L}}^A`), or ``"stl"`` for the same values as ``"mc"`` with the
            path-derivative gradient of Roeder, Wu & Duvenaud (2017, "sticking the landing"):
            :math:`\log q_\phi(z|x)` is evaluated with its parameters :math:`\phi` held fixed
            (``tf.stop_gradient``), so that :math:`\phi` reaches it only through
            :math:`z = g_\phi(\epsilon, x)`. That drops the score term
            :math:`\nabla_\phi \log q_\phi(z|x)|_{z}` (zero mean) from the gradient: still unbiased, and
            with zero variance when :math:`q(z|x)` is the exact posterior. ``q`` may be any distribution
            whose parameters are tensors or distributions with such parameters (e.g.
            ``tfd.Independent(tfd.Normal(...))``); any other parameter (a bijector, a linear operator)
            raises a TypeError.
        seed: ``None`` for fresh randomness, or an int / shape-``[2]`` tensor for reproducible draws.
        posterior: a distribution to use as :math:`q(z|x)` instead of ``model.encode(x)``.

    Returns:
        ``{"elbo", "kl", "reconstruction"}``, each of shape ``(batch,)`` in nats, with
        ``elbo = reconstruction - kl``.
    """
    num_samples = check_positive_int(num_samples, "num_samples")
    check_choice(kl, "kl", KL_METHODS)
    _check_probabilistic(model, posterior, "variational bound")
    if posterior is None and _runs_compiled(model):  # called eagerly: run this function as one graph
        return _compiled(model, elbo_terms, num_samples, kl)(tf.convert_to_tensor(x), stateless_seed(seed))
    q = model.encode(x) if posterior is None else posterior
    z = reparameterized_sample(q, num_samples, stateless_seed(seed))
    reconstruction = tf.reduce_mean(model.decode(z).log_prob(x), axis=0)
    if kl == "analytic":
        kl_value = kl_to_prior(q, model.prior)
    else:
        log_q = (q if kl == "mc" else _with_fixed_parameters(q)).log_prob(z)
        kl_value = tf.reduce_mean(log_q - model.prior.log_prob(z), axis=0)
    return {"elbo": reconstruction - kl_value, "kl": kl_value, "reconstruction": reconstruction}


def _with_fixed_parameters(q: tfd.Distribution) -> tfd.Distribution:
    r"""The same distribution with ``tf.stop_gradient`` on every tensor parameter: :math:`q_{\bar\phi}`.

    Its ``log_prob`` has the same values as ``q``'s and passes gradients to its argument only. A parameter
    that is itself a distribution (``tfd.Independent(tfd.Normal(loc, scale))``) is rebuilt the same way, so
    its tensors are held fixed too. A parameter of any other kind (a bijector, a ``tf.linalg.LinearOperator``)
    could carry :math:`\phi` past the stop, so it is refused with a TypeError rather than passed through.
    """
    fixed = {}
    for name, value in q.parameters.items():
        if isinstance(value, tfd.Distribution):
            fixed[name] = _with_fixed_parameters(value)
        elif tf.is_tensor(value) or isinstance(value, tf.Variable):
            fixed[name] = tf.stop_gradient(value)
        elif isinstance(value, (list, tuple)):  # e.g. loc=[0.0, 1.0]
            fixed[name] = tf.nest.map_structure(lambda v: tf.stop_gradient(v) if tf.is_tensor(v) else v, value)
        elif value is not None and not isinstance(value, (bool, int, float, str, np.ndarray, np.generic)):
            raise TypeError(
                f'kl="stl" holds the parameters of q(z|x) fixed and supports distributions whose parameters '
                f"are tensors, arrays, numbers or such distributions (e.g. tfd.MultivariateNormalDiag, "
                f"tfd.MultivariateNormalTriL, tfd.Independent(tfd.Normal(...))); {type(q).__name__}'s "
                f"parameter {name!r} is a {type(value).__name__}"
            )
    return q.copy(**fixed)


def elbo(
    model: Any,
    x: Any,
    num_samples: int = 1,
    kl: str = "analytic",
    seed: int | tf.Tensor | None = None,
    posterior: tfd.Distribution | None = None,
) -> tf.Tensor:
    r"""The SGVB estimate of :math:`\mathcal{L}_B(x)` for each data point, shape ``(batch,)``.

    :math:`\widehat{\mathcal{L}}_B = -\mathrm{KL}(q(z|x)\|p(z)) + \frac1L\sum_{l=1}^L \log p(x|z^{(l)})`
    (the paper's eq. 7 with ``kl="analytic"``). See :func:`elbo_terms` for the arguments.
    """
    return elbo_terms(model, _data(model, x), num_samples, kl, seed, posterior)["elbo"]


def minibatch_elbo(
    model: Any,
    x_batch: Any,
    dataset_size: int,
    num_samples: int = 1,
    kl: str = "analytic",
    seed: int | tf.Tensor | None = None,
) -> tf.Tensor:
    r"""The minibatch estimator of the full-data bound, the paper's eq. (8).

    :math:`\mathcal{L}_B(X) \approx \widetilde{\mathcal{L}}^M(X^M) = \frac{N}{M}\sum_{i=1}^{M}
    \widehat{\mathcal{L}}_B(x^{(i)})`, with :math:`N` = ``dataset_size`` and :math:`M` the batch size.
    If the batch is drawn uniformly from the data set it is unbiased for
    :math:`\sum_{i=1}^N \mathcal{L}_B(x^{(i)})`.
    """
    dataset_size = check_positive_int(dataset_size, "dataset_size")
    x_batch = _data(model, x_batch)
    batch_size = int(x_batch.shape[0])
    if batch_size > dataset_size:
        raise ValueError(f"the minibatch ({batch_size} points) cannot be larger than dataset_size={dataset_size}")
    per_example = elbo(model, x_batch, num_samples, kl, seed)
    return dataset_size / batch_size * tf.reduce_sum(per_example)


def log_weights(
    model: Any,
    x: tf.Tensor,
    num_samples: int,
    seed: int | tf.Tensor | None = None,
    posterior: tfd.Distribution | None = None,
) -> tf.Tensor:
    r"""Log importance weights :math:`\log p(x|z_i) + \log p(z_i) - \log q(z_i|x)`, shape ``(k, batch)``."""
    log_likelihood, log_prior, log_q = _log_densities(model, x, num_samples, seed, posterior)
    return log_likelihood + log_prior - log_q


def _log_densities(
    model: Any, x: tf.Tensor, num_samples: int, seed: int | tf.Tensor | None, posterior: tfd.Distribution | None
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    r""":math:`\log p(x|z_i)`, :math:`\log p(z_i)`, :math:`\log q(z_i|x)` at k draws from q, each (k, batch)."""
    num_samples = check_positive_int(num_samples, "num_samples")
    _check_probabilistic(model, posterior, "importance-weighted bound")
    q = model.encode(x) if posterior is None else posterior
    return log_densities_at(model, x, q, reparameterized_sample(q, num_samples, stateless_seed(seed)))


def log_densities_at(
    model: Any, x: tf.Tensor, posterior: tfd.Distribution, z: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    r""":math:`\log p(x|z_i)`, :math:`\log p(z_i)`, :math:`\log q(z_i|x)` at given draws ``z`` of shape (k, batch, N_z).

    ``posterior`` is :math:`q(z|x)` for the same ``x``; each result has shape (k, batch).
    """
    return model.decode(z).log_prob(x), model.prior.log_prob(z), posterior.log_prob(z)


def iwae_bound(
    model: Any,
    x: Any,
    num_samples: int,
    seed: int | tf.Tensor | None = None,
    posterior: tfd.Distribution | None = None,
) -> tf.Tensor:
    r"""One-draw estimate of the importance-weighted bound :math:`\mathcal{L}^{\mathrm{IW}}_k`, shape ``(batch,)``.

    :math:`\widehat{\mathcal{L}}^{\mathrm{IW}}_k = \log \frac1k \sum_{i=1}^{k} \frac{p(x|z_i)\,p(z_i)}{q(z_i|x)}`,
    :math:`z_i \sim q(z|x)`, computed with a log-sum-exp. ``num_samples`` is :math:`k`; all ``k``
    samples are held in memory at once (use :func:`~vaelib.log_likelihood` for large ``k``).
    """
    num_samples = check_positive_int(num_samples, "num_samples")
    x = _data(model, x)
    _check_probabilistic(model, posterior, "importance-weighted bound")
    if posterior is None and _runs_compiled(model):  # called eagerly: run this function as one graph
        return _compiled(model, iwae_bound, num_samples)(x, stateless_seed(seed))
    weights = log_weights(model, x, num_samples, seed, posterior)
    return tf.reduce_logsumexp(weights, axis=0) - math.log(num_samples)


def iwae_terms(model: Any, x: tf.Tensor, num_samples: int, seed: int | tf.Tensor | None = None) -> dict[str, tf.Tensor]:
    r"""The importance-weighted bound and, from the same :math:`k` samples, the ELBO and its two terms.

    With :math:`z_i \sim q(z|x)` and :math:`\log w_i = \log p(x|z_i) + \log p(z_i) - \log q(z_i|x)`:
    ``iwae`` :math:`= \log\frac1k\sum_i w_i`, ``reconstruction`` :math:`= \frac1k\sum_i \log p(x|z_i)`,
    ``kl`` :math:`= \frac1k\sum_i \log q(z_i|x) - \log p(z_i)` and ``elbo`` :math:`= \frac1k\sum_i \log w_i`,
    each of shape ``(batch,)`` (``x`` is not re-checked here). Training on ``iwae`` is Burda et al.'s IWAE.
    """
    reconstruction, log_prior, log_q = _log_densities(model, x, num_samples, seed, None)
    weights = reconstruction + log_prior - log_q
    kl = log_q - log_prior
    return {
        "iwae": tf.reduce_logsumexp(weights, axis=0) - math.log(num_samples),
        "elbo": tf.reduce_mean(weights, axis=0),
        "kl": tf.reduce_mean(kl, axis=0),
        "reconstruction": tf.reduce_mean(reconstruction, axis=0),
    }

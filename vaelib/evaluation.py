r"""Measuring a trained model: the importance-sampled log-likelihood, and the bound's rate and distortion.

With the encoder as proposal, :math:`\log p(x) \approx \log \frac1k \sum_{i=1}^{k}
\frac{p(x|z_i)\,p(z_i)}{q(z_i|x)}`, :math:`z_i \sim q(z|x)` (Rezende et al. 2014, Burda et al. 2016).
It is the importance-weighted bound :math:`\mathcal{L}^{\mathrm{IW}}_k` of :mod:`vaelib.bound` and approaches
:math:`\log p(x)` from below as :math:`k` grows; :math:`k = 5000` is the literature's standard.
The sum over :math:`k` is accumulated chunk by chunk with a running log-sum-exp, so memory is
bounded by ``batch_size * sample_batch_size`` decoder outputs whatever :math:`k` is. Within a chunk
the draws are decoded in slices of about 2,000 (2,000 x 784 logits are 6 MB): the allocator reuses such
blocks from one operation to the next, while it maps every 63 MB block from the system afresh (glibc's
malloc serves blocks over 32 MB that way), and filling fresh pages costs as much as the operation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from vaelib._checks import check_positive_int, stateless_seed
from vaelib.bound import _check_probabilistic, elbo_terms, log_densities_at, warn_if_not_binary
from vaelib.hmc import log_joint, sample_posterior
from vaelib.kl import reparameterized_sample

__all__ = ["log_likelihood", "hmc_log_likelihood", "paired_difference", "rate_and_distortion"]

MAX_CHUNK = 20_000  # data points x samples drawn per call: 20,000 x 784 float32 logits = 63 MB
DECODES_PER_SLICE = 2_000  # data points x samples decoded at once within a call


def log_likelihood(
    model: Any,
    x: Any,
    num_samples: int = 5000,
    batch_size: int = 100,
    sample_batch_size: int | None = None,
    seed: int | tf.Tensor | None = None,
) -> np.ndarray:
    r"""Importance-sampled estimate of :math:`\log p(x)` for every data point, shape ``(N,)``, in nats.

    Args:
        model: a :class:`~vaelib.VAE` (or anything with ``encode``, ``decode``, ``prior``).
        x: data, shape ``(N, *data_shape)``.
        num_samples: :math:`k`, importance samples per data point.
        batch_size: data points per chunk.
        sample_batch_size: samples per chunk (default: as many as keep a chunk at 20,000 decodes).
        seed: ``None`` for fresh samples, or an int / shape-``[2]`` tensor for a reproducible estimate.

    Returns a NumPy array (it is computed in chunks and not differentiable; the bounds of
    :mod:`vaelib.bound`, which are, return tensors).
    """
    num_samples = check_positive_int(num_samples, "num_samples")
    batch_size = check_positive_int(batch_size, "batch_size")
    if sample_batch_size is None:
        sample_batch_size = max(1, MAX_CHUNK // batch_size)
    sample_batch_size = min(check_positive_int(sample_batch_size, "sample_batch_size"), num_samples)
    _check_probabilistic(model, None, "importance-sampled log-likelihood")
    x = model.check_data(x) if hasattr(model, "check_data") else tf.convert_to_tensor(x)
    warn_if_not_binary(model, x)
    base_seed = stateless_seed(seed)

    per_slice = max(1, DECODES_PER_SLICE // batch_size)

    @tf.function(reduce_retracing=True)
    def chunk(xb: tf.Tensor, k: int, chunk_seed: tf.Tensor) -> tf.Tensor:
        # The draws of vaelib.bound.log_weights(model, xb, k, chunk_seed), decoded slice by slice.
        q = model.encode(xb)
        z = reparameterized_sample(q, k, chunk_seed)
        weights = []
        for start in range(0, k, per_slice):
            log_likelihood, log_prior, log_q = log_densities_at(model, xb, q, z[start : start + per_slice])
            weights.append(log_likelihood + log_prior - log_q)
        return tf.reduce_logsumexp(tf.concat(weights, axis=0), axis=0)

    results = []
    counter = 0
    for start in range(0, int(x.shape[0]), batch_size):
        xb = x[start : start + batch_size]
        total = tf.fill([tf.shape(xb)[0]], tf.constant(-np.inf, dtype=xb.dtype))
        for done in range(0, num_samples, sample_batch_size):
            k = min(sample_batch_size, num_samples - done)
            chunk_seed = tf.random.experimental.stateless_fold_in(base_seed, counter)
            counter += 1
            total = tf.experimental.numpy.logaddexp(total, chunk(xb, k, chunk_seed))
        results.append(total.numpy() - math.log(num_samples))
    return np.concatenate(results)


def hmc_log_likelihood(
    model: Any,
    x: Any,
    num_samples: int = 1000,
    num_burnin: int = 500,
    seed: int | tf.Tensor | None = None,
) -> np.ndarray:
    r"""The paper's marginal-likelihood estimator, from posterior samples: :math:`\log p(x)` per data point, ``(N,)``.

    Kingma & Welling's estimator for models with few latent dimensions (the paper: fewer than 5) and no
    need of an encoder, so it measures models trained without one (Monte Carlo EM) on the same scale:

    1. draw :math:`L` values :math:`z^{(l)} \sim p(z|x)` by HMC (:func:`vaelib.hmc.sample_posterior`);
    2. fit a density :math:`q(z)` to them: here a Gaussian with their mean and covariance, per data point;
    3. draw :math:`L` fresh values (the chains continued) and average

    .. math::

        \frac{1}{p(x)} = \mathbb{E}_{p(z|x)}\!\left[\frac{q(z)}{p(z)\,p(x|z)}\right]
        \approx \frac1L \sum_{l=1}^{L} \frac{q(z^{(l)})}{p(z^{(l)})\,p(x|z^{(l)})},

    which holds for any density :math:`q` because :math:`p(z|x) = p(z)\,p(x|z) / p(x)` and
    :math:`\int q(z)\,dz = 1`. Its variance is small where :math:`q` is close to the posterior and has no
    heavier tails; it is computed in log space, :math:`\log p(x) \approx \log L - \operatorname{logsumexp}_l
    [\log q(z^{(l)}) - \log p(x, z^{(l)})]`.

    Args:
        model: ``decode`` and ``prior`` (an encoder is not used).
        x: data, shape ``(N, *data_shape)``.
        num_samples: :math:`L`, in each of stages 1 and 3.
        num_burnin: HMC transitions before stage 1 (the step size adapts in their first 80%).
        seed: as everywhere in vaelib.
    """
    num_samples = check_positive_int(num_samples, "num_samples")
    if num_samples < 2:
        raise ValueError(f"num_samples must be at least 2 (stage 2 fits a covariance), got {num_samples}")
    x = model.check_data(x) if hasattr(model, "check_data") else tf.convert_to_tensor(x)
    warn_if_not_binary(model, x)
    fit_seed, fresh_seed = tfp.random.split_seed(stateless_seed(seed))
    fit = sample_posterior(model, x, num_samples, num_burnin=num_burnin, seed=fit_seed)
    mean = tf.reduce_mean(fit.samples, axis=0)
    covariance = tfp.stats.covariance(fit.samples, sample_axis=0, event_axis=-1)
    jitter = 1e-6 * tf.eye(int(mean.shape[-1]), dtype=mean.dtype)  # keeps the Cholesky factor finite
    q = tfp.distributions.MultivariateNormalTriL(loc=mean, scale_tril=tf.linalg.cholesky(covariance + jitter))
    fresh = sample_posterior(
        model, x, num_samples, num_burnin=0, initial_z=fit.samples[-1], initial_step_size=fit.step_size, seed=fresh_seed
    )  # the chains continued, at their adapted step sizes
    log_ratio = q.log_prob(fresh.samples) - log_joint(model, x)(fresh.samples)
    return (math.log(num_samples) - tf.reduce_logsumexp(log_ratio, axis=0)).numpy()


def rate_and_distortion(model: Any, x: Any, batch_size: int = 1000, seed: int = 0) -> dict[str, Any]:
    r"""The two terms of the bound on data ``x``, averaged over it, in nats per datapoint (chapter 10).

    The *rate* :math:`R = \mathbb{E}_x\,\mathrm{KL}(q(z|x) \,\|\, p(z))` (closed form) and the *distortion*
    :math:`D = -\mathbb{E}_x\,\mathbb{E}_{q(z|x)}[\log p(x|z)]` (one draw of :math:`z` per point; the batch
    that starts at point :math:`i` draws with seed ``seed + i``), so that the mean bound is
    :math:`\mathcal{L}_B = -(R + D)`. For a model with ``encoder_outputs`` (a diagonal Gaussian encoder and
    the standard normal prior: chapter 3's closed form, per coordinate) also ``rate_per_dim``, the rate of each
    latent coordinate :math:`j`, :math:`\mathbb{E}_x\,\mathrm{KL}(q(z_j|x) \,\|\, p(z_j))`, which sum to :math:`R`.

    Returns:
        ``{"rate", "distortion", "bound"}`` as floats, and ``"rate_per_dim"``, an array of shape ``(N_z,)``.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    x = model.check_data(x) if hasattr(model, "check_data") else tf.convert_to_tensor(x)
    n = int(x.shape[0])
    if n == 0:
        raise ValueError("x is empty: the rate and distortion need at least one data point")
    terms = [elbo_terms(model, x[i : i + batch_size], seed=seed + i) for i in range(0, n, batch_size)]
    rate = float(np.mean(np.concatenate([t["kl"] for t in terms])))
    distortion = -float(np.mean(np.concatenate([t["reconstruction"] for t in terms])))
    result: dict[str, Any] = {"rate": rate, "distortion": distortion, "bound": -(rate + distortion)}
    if hasattr(model, "encoder_outputs"):
        per_dim = np.zeros(model.latent_dim)
        for i in range(0, n, batch_size):
            mean, log_var = (np.asarray(t, np.float64) for t in model.encoder_outputs(x[i : i + batch_size]))
            per_dim += np.sum(-0.5 * (1.0 + log_var - mean**2 - np.exp(log_var)), axis=0)
        result["rate_per_dim"] = per_dim / n
    return result


def mean_and_stderr(values: Any) -> tuple[float, float]:
    r"""Mean of per-image estimates and its standard error :math:`s / \sqrt{n}` (:math:`s`: sample standard deviation).

    ``values`` are :math:`n \ge 2` finite estimates, one per image (say, :func:`log_likelihood` on the test
    set), averaged in float64. Two such means on the same images are better compared by
    :func:`paired_difference`.

    Returns:
        ``(mean, standard error)`` in the units of ``values``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"values must be 1-D estimates of at least 2 images, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("values must be finite (NaN or infinite estimates: check the model)")
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))


def paired_difference(a: Any, b: Any) -> tuple[float, float]:
    r"""Mean of the per-image differences :math:`d_i = a_i - b_i` of two models, and its standard error.

    ``a`` and ``b`` are estimates on the same :math:`n` images (say, :func:`log_likelihood` of two models
    on one fixed binarisation of the test set). The standard error is
    :math:`s_d / \sqrt{n}`, :math:`s_d` the sample standard deviation of the :math:`d_i`. Since an image
    that is hard for one model is hard for the other, :math:`s_d` is far smaller than the spread of
    :math:`a` or :math:`b` alone, and so is the error of the comparison: two means whose standard errors
    overlap can still differ by many standard errors of their difference.

    Returns:
        ``(mean, standard error)`` in the units of ``a`` and ``b``.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"a and b must be 1-D estimates on the same images, got shapes {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError(f"a standard error needs at least 2 images, got {len(a)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must be finite (NaN or infinite estimates: check the models)")
    return mean_and_stderr(a - b)

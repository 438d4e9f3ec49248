r"""A latent-variable model whose posterior and evidence are known exactly.

.. math::

    p(z) = \mathcal{N}(0, I_K), \qquad p(x|z) = \mathcal{N}(Wz + b, s^2 I_D),

with noise standard deviation :math:`s > 0` (not :math:`\sigma`, which is the encoder's scale in the book).

Everything is Gaussian, so (Bishop 2006, §2.3.3)

.. math::

    p(x) = \mathcal{N}(b,\; W W^\top + s^2 I),

    p(z|x) = \mathcal{N}\!\left(\Sigma W^\top (x - b) / s^2,\; \Sigma\right), \quad
    \Sigma = \left(I + W^\top W / s^2\right)^{-1},

and for any Gaussian :math:`q(z|x) = \mathcal{N}(m, S)` the bound has the closed form

.. math::

    \begin{aligned}
    \mathcal{L}_B = &-\mathrm{KL}(q \,\|\, p(z)) - \frac{D}{2}\log(2\pi s^2) \\
        &- \frac{\lVert x - W m - b\rVert^2 + \operatorname{tr}(W S W^\top)}{2s^2}.
    \end{aligned}

So :math:`\log p(x) = \mathcal{L}_B + \mathrm{KL}(q(z|x) \| p(z|x))` can be checked to rounding error.
The model speaks the same protocol as :class:`~vaelib.VAE` (``encode``, ``decode``, ``prior``), with
``encode`` returning the exact posterior, so :func:`~vaelib.elbo` and :func:`~vaelib.iwae_bound` apply.
Computations are in float64.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from vaelib._checks import check_data, check_positive_int
from vaelib.bound import kl_to_prior
from vaelib.kl import standard_normal

tfd = tfp.distributions

__all__ = ["LinearGaussianModel", "ProbabilisticPCA", "best_diagonal_gaussian"]


def _check_noise_std(noise_std: float) -> float:
    """:math:`s` as a float, or a ``ValueError`` unless it is a positive number."""
    if not (np.isfinite(noise_std) and noise_std > 0):
        raise ValueError(f"noise_std must be a positive number, got {noise_std}")
    return float(noise_std)


class _RealValuedLatentModel:
    r"""What both models here share: the prior :math:`\mathcal{N}(0, I_K)` and real-valued data of shape
    ``data_shape``, in the floating-point type ``value_dtype``."""

    value_dtype: tf.DType
    latent_dim: int
    data_shape: tuple[int, ...]

    @property
    def prior(self) -> tfd.MultivariateNormalDiag:
        r""":math:`p(z) = \mathcal{N}(0, I_K)`."""
        return standard_normal(self.latent_dim, self.value_dtype)

    def check_data(self, x: Any) -> tf.Tensor:
        """Check a batch of shape ``(N, D)`` of finite reals; return it in ``value_dtype``."""
        return check_data(x, self.data_shape, dtype=self.value_dtype)


class LinearGaussianModel(_RealValuedLatentModel):
    r"""The linear-Gaussian model :math:`p(z) = \mathcal{N}(0, I)`, :math:`p(x|z) = \mathcal{N}(Wz + b, s^2 I)`.

    Args:
        weights: :math:`W`, shape ``(D, K)``.
        bias: :math:`b`, shape ``(D,)``.
        noise_std: :math:`s > 0` (written :math:`s`, since :math:`\sigma` is the encoder's scale).
    """

    dtype = value_dtype = tf.float64

    def __init__(self, weights: Any, bias: Any, noise_std: float) -> None:
        weights = np.asarray(weights, dtype=np.float64)
        bias = np.asarray(bias, dtype=np.float64)
        if weights.ndim != 2 or weights.size == 0:
            raise ValueError(f"weights must be a non-empty matrix of shape (D, K), got shape {weights.shape}")
        if bias.shape != (weights.shape[0],):
            raise ValueError(f"bias must have shape ({weights.shape[0]},) to match weights, got {bias.shape}")
        if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(bias))):
            raise ValueError("weights and bias must be finite")
        noise_std = _check_noise_std(noise_std)
        self.weights = tf.constant(weights)
        self.bias = tf.constant(bias)
        self.noise_std = noise_std
        self.data_dim, self.latent_dim = weights.shape
        self.data_shape = (self.data_dim,)

    @classmethod
    def random(
        cls, latent_dim: int = 2, data_dim: int = 5, noise_std: float = 0.5, seed: int = 0
    ) -> LinearGaussianModel:
        """A model with standard-normal :math:`W` and :math:`b`, for examples and tests."""
        latent_dim = check_positive_int(latent_dim, "latent_dim")
        data_dim = check_positive_int(data_dim, "data_dim")
        rng = np.random.default_rng(seed)
        return cls(rng.standard_normal((data_dim, latent_dim)), rng.standard_normal(data_dim), noise_std)

    @classmethod
    def maximum_likelihood(cls, x: Any, latent_dim: int, noise_std: float) -> LinearGaussianModel:
        r"""The model of this family (noise :math:`s` given) that maximises :math:`\sum_i \log p(x^{(i)})`.

        Probabilistic PCA (Tipping & Bishop 1999): :math:`b = \bar x` and
        :math:`W = U_K (\Lambda_K - s^2 I)^{1/2}`, with :math:`\Lambda_K` the :math:`K` largest eigenvalues
        of the data's covariance :math:`\frac1N \sum_i (x^{(i)} - \bar x)(x^{(i)} - \bar x)^\top` and
        :math:`U_K` their eigenvectors (an eigenvalue below :math:`s^2` gives a zero column). Any rotation
        :math:`W R` has the same likelihood.
        """
        x = np.asarray(check_data(x, (np.shape(x)[-1],), dtype=tf.float64))
        latent_dim = check_positive_int(latent_dim, "latent_dim")
        if latent_dim > x.shape[1]:
            raise ValueError(f"latent_dim must be at most the data's dimension {x.shape[1]}, got {latent_dim}")
        centred = x - x.mean(axis=0)
        eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / len(x))
        top, vectors = eigenvalues[::-1][:latent_dim], eigenvectors[:, ::-1][:, :latent_dim]
        return cls(vectors * np.sqrt(np.maximum(top - noise_std**2, 0.0)), x.mean(axis=0), noise_std)

    def decode(self, z: Any) -> tfd.Independent:
        r""":math:`p(x|z) = \mathcal{N}(Wz + b, s^2 I)`; batch shape ``z.shape[:-1]``, event ``(D,)``."""
        z = tf.convert_to_tensor(z, dtype=self.dtype)
        loc = tf.linalg.matvec(self.weights, z) + self.bias
        return tfd.Independent(tfd.Normal(loc=loc, scale=tf.constant(self.noise_std, self.dtype)), 1)

    def marginal(self) -> tfd.MultivariateNormalTriL:
        r""":math:`p(x) = \mathcal{N}(b, W W^\top + s^2 I)`."""
        cov = tf.matmul(self.weights, self.weights, transpose_b=True) + self.noise_std**2 * tf.eye(
            self.data_dim, dtype=self.dtype
        )
        return tfd.MultivariateNormalTriL(loc=self.bias, scale_tril=tf.linalg.cholesky(cov))

    def log_marginal(self, x: Any) -> tf.Tensor:
        r"""Exact :math:`\log p(x)` per example, shape ``(N,)``."""
        return self.marginal().log_prob(self.check_data(x))

    def posterior(self, x: Any) -> tfd.MultivariateNormalTriL:
        r"""Exact :math:`p(z|x)`, batch shape ``(N,)``, event shape ``(K,)``."""
        x = self.check_data(x)
        precision = (
            tf.eye(self.latent_dim, dtype=self.dtype)
            + tf.matmul(self.weights, self.weights, transpose_a=True) / self.noise_std**2
        )
        cov = tf.linalg.inv(precision)
        mean = tf.linalg.matvec(tf.matmul(cov, self.weights, transpose_b=True), x - self.bias) / self.noise_std**2
        return tfd.MultivariateNormalTriL(loc=mean, scale_tril=tf.linalg.cholesky(cov))

    def encode(self, x: Any) -> tfd.MultivariateNormalTriL:
        """The exact posterior: the best possible encoder, at which the bound is tight."""
        return self.posterior(x)

    def exact_elbo(self, x: Any, q: tfd.Distribution) -> tf.Tensor:
        r""":math:`\mathcal{L}_B(x)` in closed form for a Gaussian ``q`` (batch ``(N,)``, event ``(K,)``)."""
        x = self.check_data(x)
        mean = tf.cast(q.mean(), self.dtype)
        cov = tf.cast(q.covariance(), self.dtype)
        residual = x - tf.linalg.matvec(self.weights, mean) - self.bias
        trace = tf.linalg.trace(tf.matmul(tf.matmul(self.weights, cov), self.weights, transpose_b=True))
        variance = self.noise_std**2
        expected_log_lik = -0.5 * self.data_dim * math.log(2 * math.pi * variance) - (
            tf.reduce_sum(tf.square(residual), axis=-1) + trace
        ) / (2 * variance)
        return expected_log_lik - kl_to_prior(q, self.prior)

    def sample_data(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` draws from :math:`p(x)`, shape ``(n, D)``."""
        n = check_positive_int(n, "n")
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.latent_dim))
        return z @ self.weights.numpy().T + self.bias.numpy() + self.noise_std * rng.standard_normal((n, self.data_dim))


class ProbabilisticPCA(_RealValuedLatentModel, keras.Model):
    r"""The linear-Gaussian model with :math:`W` and :math:`b` learned and :math:`s` fixed: probabilistic PCA.

    A generative model without an encoder, for Monte Carlo EM (:class:`~vaelib.paper.mcem.MonteCarloEM`), where
    everything can be checked exactly: :meth:`as_linear_gaussian` gives the current model's evidence and
    posterior in closed form, and :meth:`LinearGaussianModel.maximum_likelihood` the optimum to reach.
    ``decoder`` is the Dense layer :math:`z \mapsto Wz + b`, initialised from :math:`\mathcal{N}(0, 0.1^2)`
    with ``seed``. Computations are in float32, as in a VAE.

    Args:
        data_dim: :math:`D`.
        latent_dim: :math:`K`.
        noise_std: :math:`s > 0`.
        seed: the initial weights' seed.
    """

    value_dtype = tf.float32

    def __init__(self, data_dim: int, latent_dim: int, noise_std: float, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_shape = (check_positive_int(data_dim, "data_dim"),)
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.noise_std = _check_noise_std(noise_std)
        initializer = keras.initializers.RandomNormal(stddev=0.1, seed=seed)
        self.decoder = keras.Sequential(
            [keras.Input((self.latent_dim,)), keras.layers.Dense(data_dim, kernel_initializer=initializer)]
        )

    def decode(self, z: Any) -> tfd.Independent:
        r""":math:`p(x|z) = \mathcal{N}(Wz + b, s^2 I)`; batch shape ``z.shape[:-1]``, event ``(D,)``."""
        z = tf.convert_to_tensor(z, tf.float32)
        flat = self.decoder(tf.reshape(z, [-1, self.latent_dim]))
        loc = tf.reshape(flat, tf.concat([tf.shape(z)[:-1], self.data_shape], 0))
        return tfd.Independent(tfd.Normal(loc=loc, scale=self.noise_std), 1)

    def call(self, z: tf.Tensor) -> tf.Tensor:
        """The decoder's mean :math:`Wz + b`."""
        return self.decoder(z)

    @property
    def decoder_variables(self) -> list[tf.Variable]:
        r"""The trainable weights of :math:`p_\theta(x|z)`: :math:`W` and :math:`b`."""
        return self.decoder.trainable_variables

    def as_linear_gaussian(self) -> LinearGaussianModel:
        """The current model as a :class:`LinearGaussianModel` (float64), with its exact evidence and posterior."""
        dense = self.decoder.layers[-1]
        return LinearGaussianModel(dense.kernel.numpy().T, dense.bias.numpy(), self.noise_std)


def best_diagonal_gaussian(target: tfd.MultivariateNormalLinearOperator) -> tfd.MultivariateNormalDiag:
    r"""The diagonal Gaussian nearest a Gaussian ``target`` in :math:`\mathrm{KL}(q \,\|\, \text{target})`.

    For a target :math:`p = \mathcal{N}(m, \Sigma)` on :math:`\mathbb{R}^K` with precision
    :math:`\Lambda = \Sigma^{-1}`, and :math:`q = \mathcal{N}(\mu, \operatorname{diag}(v))`,

    .. math::

        \begin{aligned}
        \mathrm{KL}(q \,\|\, p) = \frac12 \Big[&\sum_i \Lambda_{ii} v_i + (\mu - m)^\top \Lambda (\mu - m) \\
            &- K - \sum_i \log v_i + \log\det\Sigma\Big],
        \end{aligned}

    which is convex in :math:`(\mu, v)`. Its gradient vanishes at :math:`\mu = m`,
    :math:`v_i = 1/\Lambda_{ii}` (Bishop 2006, §10.1.2), the minimum. The variances are the inverse
    *precisions*, not the marginal variances :math:`\Sigma_{ii} \ge 1/\Lambda_{ii}`: the optimum is
    under-dispersed. The divergence left at the optimum is

    .. math::

        \mathrm{KL}(q^\ast \,\|\, p) = \frac12 \Big[\sum_i \log \Lambda_{ii} - \log\det\Lambda\Big] \ge 0,

    zero exactly when :math:`\Sigma` is diagonal (Hadamard's inequality). With the exact posterior of
    :class:`LinearGaussianModel` as ``target``, :math:`\log p(x) = \mathcal{L}_B + \mathrm{KL}(q \| p(z|x))`
    makes :math:`q^\ast` the diagonal encoder with the highest bound, and that divergence the
    *factorisation gap*, :math:`\log p(x) - \max_{q\ \text{diagonal}} \mathcal{L}_B`.

    Args:
        target: a multivariate normal distribution (e.g. ``LinearGaussianModel.posterior(x)``), any batch
            shape, event shape ``(K,)``.

    Returns:
        :math:`q^\ast` with the target's batch shape, event shape and dtype.

    Raises:
        TypeError: ``target`` is not a multivariate normal distribution.
        ValueError: its covariance is not positive definite.
    """
    if not isinstance(target, tfd.MultivariateNormalLinearOperator):
        raise TypeError(
            "target must be a multivariate normal distribution (tfd.MultivariateNormalLinearOperator, e.g. "
            f"LinearGaussianModel.posterior(x)), got {type(target).__name__}"
        )
    covariance = target.covariance()
    try:
        cholesky = tf.linalg.cholesky(covariance)
    except tf.errors.InvalidArgumentError:
        cholesky = tf.fill(tf.shape(covariance), tf.constant(np.nan, covariance.dtype))
    if not bool(tf.reduce_all(tf.math.is_finite(cholesky))):
        raise ValueError("target's covariance must be positive definite")
    eye = tf.eye(tf.shape(covariance)[-1], batch_shape=tf.shape(covariance)[:-2], dtype=covariance.dtype)
    precision_diagonal = tf.linalg.diag_part(tf.linalg.cholesky_solve(cholesky, eye))  # Lambda_ii
    return tfd.MultivariateNormalDiag(loc=target.mean(), scale_diag=tf.math.rsqrt(precision_diagonal))

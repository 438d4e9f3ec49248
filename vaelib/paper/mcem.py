r"""Monte Carlo EM: the paper's second baseline (its Figure 3), maximum likelihood for the decoder alone.

EM maximises :math:`\sum_i \log p_\theta(x^{(i)})` by alternating an E-step, the posterior
:math:`p_\theta(z|x^{(i)})` of every data point, and an M-step,

.. math::

    \theta \leftarrow \arg\max_\theta \sum_i \mathbb{E}_{p_{\theta_{\mathrm{old}}}(z|x^{(i)})}
    \left[\log p_\theta(x^{(i)}, z)\right].

Monte Carlo EM replaces the expectation by draws from the posterior, here by HMC (:mod:`vaelib.hmc`),
which needs only :math:`\nabla_z \log p_\theta(x, z)`; no encoder takes part. As in the paper, each
minibatch gets one HMC transition of 10 leapfrog steps from every data point's previous draw, its step
size adapted towards a 90% acceptance rate, then 5 updates of :math:`\theta` (the paper's Adagrad) on
the minibatch's mean :math:`\log p_\theta(x, z)` at those draws. Every data point keeps its chain from
pass to pass: the E-step is never run to convergence, the chains follow :math:`\theta` as it moves.
That state per data point is why Monte Carlo EM is not an online method: the paper runs it on a small
training set.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from vaelib._checks import check_non_negative, check_open_unit, check_positive_int, check_seed, folded_seed
from vaelib.hmc import adapted_step_size, bootstrap, hmc_transition, log_joint
from vaelib.model import weight_penalty

__all__ = ["MonteCarloEM"]


class MonteCarloEM(keras.Model):
    r"""Train the decoder of ``generative`` (a :class:`~vaelib.VAE`) by Monte Carlo EM on ``dataset_size`` points.

    Train it with ``fit`` on :func:`vaelib.make_stream` ``(..., with_index=True)``: each batch comes
    with its data points' positions, which pick their chains. ``compile`` as any Keras model (an
    optimizer; no loss); ``weight_decay`` :math:`\lambda` adds :math:`\frac{\lambda}{2}\lVert\theta\rVert^2`
    over the decoder's weights, :math:`-\frac1N\log p(\theta)` up to a constant at :math:`\lambda = 1/N`,
    as for AEVB. ``fit`` reports ``log_joint`` (the minibatch's mean :math:`\log p_\theta(x, z)` at the
    new draws, before the updates) and ``acceptance`` (the transitions' acceptance rate).

    Args:
        generative: the model whose prior and decoder are trained (its encoder is not used).
        dataset_size: :math:`N`, the number of data points, each with a chain.
        num_leapfrog_steps: leapfrog steps per transition (the paper: 10).
        weight_updates: updates of :math:`\theta` per minibatch (the paper: 5).
        target_accept: the acceptance rate the step sizes adapt towards (the paper: about 90%).
        weight_decay: :math:`\lambda \ge 0`.
        seed: where the transitions' noise comes from: step :math:`t` draws from ``(seed, t)``.
    """

    def __init__(
        self,
        generative: keras.Model,
        dataset_size: int,
        num_leapfrog_steps: int = 10,
        weight_updates: int = 5,
        target_accept: float = 0.9,
        weight_decay: float = 0.0,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.generative = generative
        self.dataset_size = check_positive_int(dataset_size, "dataset_size")
        self.num_leapfrog_steps = check_positive_int(num_leapfrog_steps, "num_leapfrog_steps")
        self.weight_updates = check_positive_int(weight_updates, "weight_updates")
        self.target_accept = check_open_unit(target_accept, "target_accept")
        self.weight_decay = check_non_negative(weight_decay, "weight_decay")
        self.seed = check_seed(seed)
        latent_dim = int(generative.latent_dim)
        # z = 0 (the prior's mode) to start; the chains' state is saved with the weights
        self.chains = self.add_weight(shape=(self.dataset_size, latent_dim), initializer="zeros", trainable=False)
        self.step_sizes = self.add_weight(
            shape=(self.dataset_size, 1), initializer=keras.initializers.Constant(0.1), trainable=False
        )
        self.transitions = self.add_weight(shape=(), initializer="zeros", dtype="int64", trainable=False)
        self.built = True  # every weight exists now: checkpoints can be saved before the first step
        self.log_joint_tracker = keras.metrics.Mean(name="log_joint")
        self.acceptance_tracker = keras.metrics.Mean(name="acceptance")

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.log_joint_tracker, self.acceptance_tracker]

    def call(self, x: tf.Tensor) -> tf.Tensor:
        """The chains' current draws cannot be looked up without positions: use ``chains``; this returns ``x``."""
        return x

    def fit(self, x: Any = None, *args: Any, **kwargs: Any) -> keras.callbacks.History:
        """Keras ``fit``; a stream from :func:`vaelib.make_stream` is already in its order, so no shuffling."""
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)
        return super().fit(x, *args, **kwargs)

    def decoder_loss(self, x: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
        r"""The M-step's loss: :math:`-\frac1M\sum \log p_\theta(x, z)` at fixed draws ``z``, plus the weight decay."""
        loss = -tf.reduce_mean(log_joint(self.generative, x)(z))
        if self.weight_decay:
            loss += weight_penalty(self.generative.decoder_variables, self.weight_decay)
        return loss

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, index, _ = keras.utils.unpack_x_y_sample_weight(data)
        if index is None:
            raise ValueError("MonteCarloEM trains on (batch, index) pairs: make_stream(..., with_index=True)")
        x = self.generative.check_data(x)
        index = tf.cast(index, tf.int64)
        seed = folded_seed(self.seed, 2, self.transitions)
        # E-step: one HMC transition of each data point's chain
        target = log_joint(self.generative, x)
        z, step_size = tf.gather(self.chains, index), tf.gather(self.step_sizes, index)
        z, results = hmc_transition(target, z, bootstrap(target, z), step_size, seed, self.num_leapfrog_steps)
        z = tf.stop_gradient(z)
        positions = index[:, tf.newaxis]
        self.chains.assign(tf.tensor_scatter_nd_update(self.chains, positions, z))
        step_size = adapted_step_size(step_size, results, self.target_accept)
        self.step_sizes.assign(tf.tensor_scatter_nd_update(self.step_sizes, positions, step_size))
        self.transitions.assign_add(1)
        # M-step: a few updates of the decoder at those draws
        variables = self.generative.decoder_variables
        self.log_joint_tracker.update_state(results.accepted_results.target_log_prob)
        for _ in range(self.weight_updates):
            with tf.GradientTape() as tape:
                loss = self.decoder_loss(x, z)
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.acceptance_tracker.update_state(tf.cast(results.is_accepted, tf.float32))
        return {m.name: m.result() for m in self.metrics}

r"""The wake-sleep algorithm (Hinton, Dayan, Frey & Neal 1995): the baseline of the paper's Figures 2 and 3.

The generative model :math:`p_\theta(z)\,p_\theta(x|z)` is the VAE's prior and decoder, the recognition
model :math:`q_\phi(z|x)` its encoder: the same networks as AEVB, as in the paper. Each step has two
phases, on a minibatch :math:`X_M` of :math:`M` data points:

- **Wake**: for every :math:`x \in X_M` draw :math:`z \sim q_\phi(z|x)`; move :math:`\theta` up
  :math:`\nabla_\theta \frac1M \sum \log p_\theta(x, z) = \nabla_\theta \frac1M \sum \log p_\theta(x|z)`.
- **Sleep**: dream :math:`M` pairs, :math:`z \sim p(z)` and :math:`x \sim p_\theta(x|z)`; move :math:`\phi` up
  :math:`\nabla_\phi \frac1M \sum \log q_\phi(z|x)`.

Neither phase differentiates through a sample: :math:`z` in the wake phase and the dream in the sleep
phase are constants. The wake phase is the decoder's part of the AEVB gradient with the reparameterised
path cut; the sleep phase fits :math:`q_\phi` by maximum likelihood to the generative model's own pairs,
which minimises :math:`\mathbb{E}_{p_\theta(x)}\,\mathrm{KL}(p_\theta(z|x) \,\|\, q_\phi(z|x))` — the KL in the
other direction from the one in :math:`\log p(x) = \mathcal{L}_B + \mathrm{KL}(q_\phi(z|x) \,\|\, p_\theta(z|x))`,
so wake-sleep maximises no single objective.

The two phases touch disjoint parameters (the wake phase only :math:`\theta`, the sleep phase only
:math:`\phi`), so one gradient step on :math:`-\frac1M\sum(\log p_\theta(x, z) + \log q_\phi(z'|x'))`
makes both updates at once, with any per-parameter optimizer (the paper's Adagrad included). That loss is
:class:`WakeSleep`, an objective for :meth:`VAE.compile <vaelib.VAE.compile>`: the model trains by
wake-sleep without knowing the algorithm.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from vaelib._checks import stateless_seed
from vaelib.bound import kl_to_prior
from vaelib.kl import reparameterized_sample
from vaelib.objectives import Objective

__all__ = ["WakeSleep", "wake_sleep_terms"]


def wake_sleep_terms(model: Any, x: tf.Tensor, seed: int | tf.Tensor | None = None) -> dict[str, tf.Tensor]:
    r"""One wake-sleep step's terms for a batch ``x`` of :math:`M` data points, each of shape ``(M,)``.

    - ``wake``: :math:`\log p_\theta(x, z)` at :math:`z \sim q_\phi(z|x)`, with :math:`z` held constant;
    - ``sleep``: :math:`\log q_\phi(z'|x')` at a dream :math:`z' \sim p(z)`, :math:`x' \sim p_\theta(x|z')`,
      with the dream held constant;
    - ``reconstruction``, ``kl``, ``elbo``: the bound :math:`\widehat{\mathcal{L}}_B` at the wake phase's
      :math:`z` (closed-form KL), which is what the paper plots for wake-sleep too.

    Also ``z`` (the wake draws, ``(M, N_z)``), ``dream_z`` and ``dream_x``. The loss of a step is
    :math:`-\frac1M\sum(\mathrm{wake} + \mathrm{sleep})`. ``model`` speaks the protocol of
    :mod:`vaelib.bound` (``encode``, ``decode``, ``prior``) and its decoder can be sampled; ``x`` is
    not re-checked here.
    """
    wake_seed, dream_z_seed, dream_x_seed = tfp.random.split_seed(stateless_seed(seed), n=3)
    q = model.encode(x)
    z = tf.stop_gradient(reparameterized_sample(q, 1, wake_seed)[0])
    reconstruction = model.decode(z).log_prob(x)
    wake = reconstruction + model.prior.log_prob(z)
    dream_z = tf.stop_gradient(model.prior.sample(tf.shape(z)[0], seed=dream_z_seed))
    dream_x = tf.stop_gradient(model.decode(dream_z).sample(seed=dream_x_seed))
    sleep = model.encode(dream_x).log_prob(dream_z)
    kl = kl_to_prior(q, model.prior)
    return {
        "wake": wake,
        "sleep": sleep,
        "reconstruction": reconstruction,
        "kl": kl,
        "elbo": reconstruction - kl,
        "z": z,
        "dream_z": dream_z,
        "dream_x": dream_x,
    }


@keras.saving.register_keras_serializable(package="vaelib")
class WakeSleep(Objective):
    r"""The wake-sleep algorithm as an objective: ``model.compile(objective=WakeSleep())``.

    Each step's loss is :math:`-\frac1M\sum(\mathrm{wake} + \mathrm{sleep})` (:func:`wake_sleep_terms`): one
    :math:`z` and one dream per data point. ``fit`` reports the bound's terms at the wake phase's :math:`z`, what
    the paper plots for wake-sleep too.
    """

    def __call__(self, model: Any, x: tf.Tensor, seed: tf.Tensor | None) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        terms = wake_sleep_terms(model, x, seed)
        return -tf.reduce_mean(terms["wake"] + terms["sleep"]), terms

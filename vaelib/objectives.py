r"""What training maximises, as objects passed to :meth:`VAE.compile <vaelib.VAE.compile>`.

An objective is called with the model, a minibatch :math:`X_M` and the step's noise seed, and returns the
minibatch's loss and the per-example terms that ``fit`` reports (``elbo``, ``kl``, ``reconstruction``, in
nats). The model knows no objective by name: another training algorithm (the paper's wake-sleep baseline,
:class:`vaelib.paper.WakeSleep`) is one more such object.

* :class:`ELBO`: :math:`-\frac1M \sum_{x \in X_M} \big(\widehat{\mathcal{L}}_2(x) - \beta\,\mathrm{KL}(q(z|x) \,\|\,
  p(z))\big)`, the SGVB estimator of :math:`-\mathcal{L}_B` per example at :math:`\beta = 1` (the paper's eq. 8
  divided by :math:`N`);
* :class:`IWAE`: :math:`-\frac1M \sum_{x \in X_M} \widehat{\mathcal{L}}^{\mathrm{IW}}_k(x)` (Burda et al. 2016).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vaelib._checks import check_choice, check_positive_int
from vaelib.bound import KL_METHODS, elbo_terms, iwae_terms

__all__ = ["Objective", "ELBO", "IWAE", "get"]


class Objective:
    """A training objective: ``objective(model, x, seed) -> (loss, terms)``.

    ``loss`` is a scalar to minimise; ``terms`` maps ``"elbo"``, ``"kl"`` and ``"reconstruction"`` (and any
    more) to per-example tensors of shape ``(M,)``. Subclasses implement ``__call__`` and ``get_config``, and
    are registered with ``keras.saving.register_keras_serializable`` so that a compiled model saves them.
    """

    def __call__(self, model: Any, x: tf.Tensor, seed: tf.Tensor | None) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Objective:
        return cls(**config)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({options})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))


@keras.saving.register_keras_serializable(package="vaelib")
class ELBO(Objective):
    r"""The variational lower bound, estimated with :math:`L` reparameterised samples per data point.

    Args:
        num_samples: :math:`L`, samples of :math:`z` per data point (the paper: 1).
        kl: ``"analytic"`` (the closed form, the paper's estimator B), ``"mc"`` (estimated from the same
            samples, estimator A) or ``"stl"`` (estimator A's values with its score term dropped from the
            gradient, Roeder et al. 2017: :func:`vaelib.elbo_terms`).
        beta: the KL term's weight :math:`\beta \ge 0`; the bound itself at 1 (Higgins et al. 2017 for others).
    """

    def __init__(self, num_samples: int = 1, kl: str = "analytic", beta: float = 1.0) -> None:
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.kl = check_choice(kl, "kl", KL_METHODS)
        if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)):
            raise TypeError(f"beta must be a finite number >= 0, got {beta!r}")
        if not np.isfinite(beta) or beta < 0:
            raise ValueError(f"beta must be a finite number >= 0, got {beta}")
        self.beta = float(beta)

    def __call__(self, model: Any, x: tf.Tensor, seed: tf.Tensor | None) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        terms = elbo_terms(model, x, self.num_samples, self.kl, seed)
        return -tf.reduce_mean(terms["reconstruction"] - self.beta * terms["kl"]), terms

    def get_config(self) -> dict[str, Any]:
        return {"num_samples": self.num_samples, "kl": self.kl, "beta": self.beta}


@keras.saving.register_keras_serializable(package="vaelib")
class IWAE(Objective):
    r"""The importance-weighted bound :math:`\mathcal{L}^{\mathrm{IW}}_k`, :math:`k` = ``num_samples``.

    Burda et al. (2016). ``fit`` reports, from the same :math:`k` draws, the ELBO and its terms too
    (:func:`vaelib.bound.iwae_terms`).
    """

    def __init__(self, num_samples: int = 5) -> None:
        self.num_samples = check_positive_int(num_samples, "num_samples")

    def __call__(self, model: Any, x: tf.Tensor, seed: tf.Tensor | None) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        terms = iwae_terms(model, x, self.num_samples, seed)
        return -tf.reduce_mean(terms["iwae"]), terms

    def get_config(self) -> dict[str, Any]:
        return {"num_samples": self.num_samples}


def get(objective: str | dict | Objective) -> Objective:
    """An objective from ``"elbo"`` (:class:`ELBO` with its defaults), a saved config, or itself."""
    if isinstance(objective, Objective):
        return objective
    if objective == "elbo":
        return ELBO()
    if isinstance(objective, dict):
        restored = keras.saving.deserialize_keras_object(objective)
        if isinstance(restored, Objective):
            return restored
    raise ValueError(
        f"objective must be 'elbo' or an objective object such as vaelib.ELBO(beta=4.0), vaelib.IWAE(num_samples=5) "
        f"or vaelib.paper.WakeSleep(); got {objective!r}"
    )

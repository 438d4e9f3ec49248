r"""The optimizer that :meth:`vaelib.VAE.compile` uses when it is given none: Adam with an average of the weights.

A larger step size reaches a good bound in fewer epochs, but its steps leave more noise in the weights.
Averaging the weights of the last steps removes most of that noise: on the 784-500-20 MNIST model, Adam
at :math:`3 \cdot 10^{-3}` with the average reaches a test bound of :math:`-105` nats in less than half the
epochs that Keras's Adam at :math:`10^{-3}` needs (``benchmarks/time_to_elbo.py``).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["AveragedAdam"]


@keras.saving.register_keras_serializable(package="vaelib")
class AveragedAdam(keras.optimizers.Adam):
    r"""Adam that keeps a moving average of the weights, which ``fit`` leaves in the model when it returns.

    After Adam's step :math:`t = 1, 2, \dots`, which gives the weights :math:`w_t`, the average is

    .. math::

        \bar w_t = m_t\,\bar w_{t-1} + (1 - m_t)\,w_t, \qquad m_t = \min\!\left(\beta, \frac{t - 1}{t + 9}\right),

    so :math:`\bar w_1 = w_1`, and early on the average covers about the last tenth of the steps, later the
    last :math:`1/(1-\beta)` (100 for :math:`\beta = 0.99`). Keras's own ``use_ema`` takes :math:`m_t = \beta`
    from the second step on, so after a short ``fit`` its average still holds much of the first step's
    weights: :math:`0.99^{19} = 83\%` after 20 steps. Everything else is Keras's ``use_ema``: ``fit`` puts
    :math:`\bar w` in the model when it returns (so a later ``fit`` trains on from the average), the weights
    it evaluates on ``validation_data`` during training are :math:`w_t`, and the average is part of the
    optimizer's state, saved with it.

    Args:
        learning_rate: Adam's step size (default :math:`3 \cdot 10^{-3}`).
        ema_momentum: :math:`\beta` (default 0.99).
        **kwargs: Adam's other options (``beta_1``, ``beta_2``, ``epsilon``, ...).
    """

    def __init__(self, learning_rate: Any = 3e-3, ema_momentum: float = 0.99, **kwargs: Any) -> None:
        kwargs.pop("use_ema", None)  # always on (a saved config has it)
        super().__init__(learning_rate=learning_rate, use_ema=True, ema_momentum=ema_momentum, **kwargs)

    def _update_model_variables_moving_average(self, trainable_variables: list) -> None:
        """Keras's update of the average (called after every step), with the momentum :math:`m_t` above."""
        done = ops.cast(self.iterations, "float32")  # t - 1: the step count is raised after this update
        momentum = ops.minimum(self.ema_momentum, done / (done + 10.0))
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                m = ops.cast(momentum, variable.dtype)
                average.assign(m * average + (1.0 - m) * variable)

r"""A deterministic autoencoder, the VAE's ancestor, for comparison (chapter 1).

The encoder maps :math:`x` to one point :math:`z = f(x)`, :math:`N_z` numbers per datum; the decoder and the
likelihood give :math:`p(x|z)`, as in a VAE (by default a Bernoulli decoder). Training maximises
:math:`\log p(x | z = f(x))` (the binary cross-entropy), with no KL
term: nothing asks the codes to fill a known region, so points between codes decode to anything.

``encode`` returns a point mass :math:`\delta_{f(x)}` (a ``tfp.distributions.Deterministic``) so the
plotting helpers treat both models alike (``encode(x).mean()`` is the code).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from vaelib.model import EncoderDecoder

tfd = tfp.distributions

__all__ = ["Autoencoder"]


@keras.saving.register_keras_serializable(package="vaelib")
class Autoencoder(EncoderDecoder):
    """A deterministic autoencoder: ``Autoencoder(encoder, decoder, likelihood="bernoulli")``.

    The arguments are :class:`~vaelib.EncoderDecoder`'s, with an encoder that gives :math:`N_z` numbers
    per datum (the code); :meth:`~vaelib.VAE.mlp` and
    :meth:`~vaelib.VAE.conv` build the VAE's networks with such an encoder.

    A sibling of :class:`~vaelib.VAE` (both are :class:`~vaelib.EncoderDecoder`), not a kind
    of VAE: it has no :math:`q(z|x)` and no prior, so the bounds (``elbo``, ``iwae_bound``,
    ``log_likelihood``) refuse it. ``fit``/``evaluate`` report ``loss`` and ``reconstruction``
    (:math:`\\log p(x|f(x))`, nats per example).
    """

    encoder_outputs_per_latent = 1
    probabilistic_encoder = False  # encode(x) is a point mass: elbo, iwae_bound, log_likelihood refuse it
    reported_terms = ("reconstruction",)

    def __init__(
        self, encoder: keras.layers.Layer, decoder: keras.layers.Layer, likelihood: Any = "bernoulli", **kwargs: Any
    ) -> None:
        kwargs.setdefault("name", "autoencoder")
        super().__init__(encoder, decoder, likelihood, **kwargs)

    def encode(self, x: Any, training: bool = False) -> tfd.Independent:
        r"""The point mass at the code :math:`f(x)`: batch shape ``(N,)``, event shape ``(N_z,)``."""
        code = self.encoder(self.check_data(x), training=training)
        return tfd.Independent(tfd.Deterministic(loc=code), reinterpreted_batch_ndims=1)

    def encoder_outputs(self, x: Any, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        raise TypeError("a deterministic autoencoder has no encoder variance; use encode(x).mean()")

    def compile(self, optimizer: str | keras.optimizers.Optimizer = "adam", **kwargs: Any) -> None:
        r"""Configure training on :math:`-\log p(x|f(x))`; the options are :meth:`vaelib.EncoderDecoder.compile`'s.

        A VAE's ``objective`` means nothing here: there is no :math:`q(z|x)` to sample and no KL term, so it is
        refused.
        """
        if "objective" in kwargs:
            raise TypeError("an Autoencoder trains on the reconstruction alone; it takes no objective")
        super().compile(optimizer=optimizer, **kwargs)

    def _objective(self, x: tf.Tensor, seed: tf.Tensor | None = None) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        reconstruction = self.decode(self.encode(x).mean()).log_prob(x)
        return -tf.reduce_mean(reconstruction), {"reconstruction": reconstruction}

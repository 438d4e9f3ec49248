r"""The variational auto-encoder as a Keras 3 model with ``tfp.distributions`` at both ends.

* Encoder (recognition model) :math:`q_\phi(z|x) = \mathcal{N}(z; \mu, \operatorname{diag}\sigma^2)`,
  where the encoder's *outputs* :math:`\mu` and :math:`\sigma` are functions of :math:`x`.
  :math:`\sigma = \operatorname{softplus}(h) + \sigma_{\min}` with :math:`\sigma_{\min} = 10^{-4}`:
  it cannot underflow to 0 (so :math:`\log\sigma^2 \ge -18.4`) and grows only linearly in the
  network output :math:`h` (so :math:`\sigma^2` cannot overflow where :math:`\exp h` would).
* Prior :math:`p(z) = \mathcal{N}(0, I)`.
* Decoder (generative model) :math:`p_\theta(x|z)`: independent Bernoulli pixels with logits from the
  network (binary data), or the paper's Frey Face decoder, Gaussian with mean
  :math:`\operatorname{sigmoid}(h_1) \in (0, 1)` and learned scale :math:`\operatorname{softplus}(h_2) + 10^{-3}`.

``compile()`` without a loss trains on :math:`-\frac1M\sum_i \widehat{\mathcal{L}}_B(x^{(i)})`,
the per-example mean of the negative bound (the paper's eq. 8 divided by :math:`N`).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from vaelib._checks import (
    check_choice,
    check_data,
    check_non_negative,
    check_positive_int,
    check_seed,
    folded_seed,
    stateless_seed,
)
from vaelib.bound import KL_METHODS, OBJECTIVES, elbo_terms, iwae_terms
from vaelib.compiled_loop import compiled_train_function, runs_compiled_loop
from vaelib.distributions import LogitBernoulli
from vaelib.kl import standard_normal
from vaelib.networks import build_decoder, build_encoder
from vaelib.wake_sleep import wake_sleep_terms

tfd = tfp.distributions

__all__ = ["VAE", "EncoderDecoder", "weight_penalty", "xla_by_default"]

ENCODER_MIN_SCALE = 1e-4
DECODER_MIN_SCALE = 1e-3
TRAINING_OBJECTIVES = (*OBJECTIVES, "wake_sleep")  # the bounds, and the wake-sleep algorithm
STEPS_PER_EXECUTION = 20  # training steps per call into the compiled graph (fewer Python round trips)
LIKELIHOODS = ("bernoulli", "gaussian")
ARCHITECTURES = ("mlp", "conv")


def xla_by_default(architecture: str) -> bool:
    """Whether ``compile`` turns XLA on by default for a model of this ``architecture`` on this machine.

    The MLP: always (XLA fuses the element-wise work and the Adam update around its matrix products).
    The conv model: only where TensorFlow sees a GPU, where XLA hands the convolutions to the GPU's own
    library; on a CPU, XLA's convolutions measured slower than TensorFlow's oneDNN ones. Nothing else in
    vaelib depends on the device: TensorFlow places every op on the GPU when there is one.
    """
    return architecture == "mlp" or bool(tf.config.list_physical_devices("GPU"))


def _shape(value: Sequence[int], name: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in value)
    except TypeError as err:
        raise TypeError(f"{name} must be a sequence of positive integers, got {value!r}") from err
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"{name} must be a non-empty sequence of positive integers, got {value!r}")
    return shape


def _initializer(spec: str | dict | keras.initializers.Initializer) -> keras.initializers.Initializer:
    """The Keras initializer ``spec`` names, ignoring config keys this Keras version does not know.

    A model saved by a newer Keras may record options its initializers gained since (e.g.
    ``input_axes``); an older Keras, such as the one Colab ships, would refuse the whole model.
    """
    try:
        return keras.initializers.get(spec)
    except (TypeError, ValueError):
        if not (isinstance(spec, dict) and isinstance(spec.get("config"), dict) and "class_name" in spec):
            raise
        cls = type(keras.initializers.get(spec["class_name"]))
        known = inspect.signature(cls.__init__).parameters
        return cls(**{k: v for k, v in spec["config"].items() if k in known})


def weight_penalty(variables: list[tf.Variable], weight_decay: float) -> tf.Tensor:
    r""":math:`\frac{\lambda}{2}\lVert\theta\rVert^2` over the weights :math:`\theta` = ``variables``.

    :math:`\lambda` is ``weight_decay``.

    With :math:`\lambda = 1/N` it is :math:`-\frac1N\log\mathcal{N}(\theta; 0, I)` less the constant
    :math:`\frac{\lvert\theta\rvert}{2N}\log 2\pi` (:math:`\lvert\theta\rvert` weights): the per-example
    share of the prior :math:`p(\theta)`.
    """
    squares = tf.add_n([tf.reduce_sum(tf.square(v)) for v in variables])
    return 0.5 * weight_decay * squares


class EncoderDecoder(keras.Model):
    r"""What :class:`VAE` and :class:`~vaelib.autoencoder.Autoencoder` share: an encoder and a decoder network.

    The decoder gives :math:`p(x|z)` (``decode``); subclasses say what ``encode`` gives and what
    training minimises (``_objective``). Shared: the networks, the data checks, reconstructions, the
    training and evaluation steps (with weight decay and the noise seed), and saving. Build a model with
    the subclasses' :meth:`mlp` or :meth:`conv`.

    Args:
        data_shape: shape of one data point, e.g. ``(28, 28)``.
        latent_dim: :math:`N_z`, the dimension of :math:`z`.
        architecture: ``"mlp"`` or ``"conv"``.
        hidden_units: widths of the hidden dense layers of the encoder (the decoder mirrors them).
        activation: activation of the MLP's hidden layers.
        likelihood: ``"bernoulli"`` (data in [0, 1]) or ``"gaussian"`` (real-valued data).
        filters: channels of the conv model's two stride-2 convolutions.
        initializer: Keras initializer of every kernel (the paper uses ``N(0, 0.01)``).
    """

    encoder_outputs_per_latent = 1  # encoder outputs per latent dimension
    probabilistic_encoder = False  # True where encode(x) is a distribution q(z|x), so the bounds are defined
    reported_terms: tuple[str, ...] = ()  # per-example metrics of fit/evaluate, in nats

    def __init__(
        self,
        data_shape: Sequence[int] = (28, 28),
        latent_dim: int = 20,
        architecture: str = "mlp",
        hidden_units: Sequence[int] = (500,),
        activation: str = "tanh",
        likelihood: str = "bernoulli",
        filters: Sequence[int] = (32, 64),
        initializer: str | dict = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_shape = _shape(data_shape, "data_shape")
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.architecture = check_choice(architecture, "architecture", ARCHITECTURES)
        self.likelihood = check_choice(likelihood, "likelihood", LIKELIHOODS)
        self.hidden_units = tuple(check_positive_int(u, "hidden_units entry") for u in hidden_units)
        self.activation = activation
        self.filters = tuple(check_positive_int(f, "filters entry") for f in filters)
        self.initializer = initializer
        if architecture == "conv":
            if len(self.data_shape) not in (2, 3):
                raise ValueError(f"the conv model needs images of shape (H, W) or (H, W, C), got {self.data_shape}")
            shrink = 2 ** len(self.filters)
            if self.data_shape[0] % shrink or self.data_shape[1] % shrink:
                raise ValueError(f"the conv model needs height and width divisible by {shrink}, got {self.data_shape}")
        init = _initializer(initializer)
        self.encoder = build_encoder(
            architecture,
            self.data_shape,
            self.latent_dim,
            self.hidden_units,
            activation,
            self.filters,
            init,
            self.encoder_outputs_per_latent,
        )
        outputs = 1 if likelihood == "bernoulli" else 2
        self.decoder = build_decoder(
            architecture, self.data_shape, self.latent_dim, self.hidden_units, activation, self.filters, outputs, init
        )
        self.weight_decay = 0.0
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.term_trackers = {name: keras.metrics.Mean(name=name) for name in self.reported_terms}
        self.build((None, *self.data_shape))

    # ----------------------------------------------------------------- constructors
    @classmethod
    def mlp(
        cls,
        data_shape: Sequence[int] = (28, 28),
        latent_dim: int = 20,
        hidden_units: Sequence[int] = (500,),
        activation: str = "tanh",
        likelihood: str = "bernoulli",
        **kwargs: Any,
    ) -> Any:
        """The paper's MLP model: by default 784-500-20 with tanh and a Bernoulli decoder."""
        return cls(data_shape, latent_dim, "mlp", hidden_units, activation, likelihood, **kwargs)

    @classmethod
    def conv(
        cls,
        data_shape: Sequence[int] = (28, 28),
        latent_dim: int = 2,
        filters: Sequence[int] = (32, 64),
        hidden_units: Sequence[int] = (16,),
        likelihood: str = "bernoulli",
        **kwargs: Any,
    ) -> Any:
        """Convolutional model: two stride-2 3x3 convolutions each way (the Keras VAE example)."""
        return cls(data_shape, latent_dim, "conv", hidden_units, "relu", likelihood, filters, **kwargs)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "data_shape": list(self.data_shape),
            "latent_dim": self.latent_dim,
            "architecture": self.architecture,
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "likelihood": self.likelihood,
            "filters": list(self.filters),
            # a name or a {class_name, config} dict as given, so a model saved by one Keras version loads in another
            "initializer": self.initializer
            if isinstance(self.initializer, (str, dict))
            else keras.initializers.serialize(self.initializer),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EncoderDecoder:
        return cls(**config)

    def check_data(self, x: Any) -> tf.Tensor:
        """Check a batch of data against this model (shape, dtype, finite, in [0, 1] for Bernoulli)."""
        support = "unit" if self.likelihood == "bernoulli" else "real"
        return check_data(x, self.data_shape, support=support)

    def decode(self, z: Any, training: bool = False) -> tfd.Independent:
        r""":math:`p(x|z)` with event shape ``data_shape`` and batch shape ``z.shape[:-1]``.

        ``z`` may carry sample dimensions in front, e.g. ``(L, N, J)`` gives batch shape ``(L, N)``.
        """
        z = tf.convert_to_tensor(z, dtype=tf.float32)
        if z.shape.rank is None or z.shape.rank < 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"z must have shape (..., N, {self.latent_dim}), got {z.shape}")
        leading = tf.shape(z)[:-1]
        h = self.decoder(tf.reshape(z, [-1, self.latent_dim]), training=training)
        h = tf.reshape(h, tf.concat([leading, tf.shape(h)[1:]], axis=0))
        ndims = len(self.data_shape)
        if self.likelihood == "bernoulli":
            return tfd.Independent(LogitBernoulli(logits=h[..., 0], dtype=tf.float32), reinterpreted_batch_ndims=ndims)
        loc = tf.sigmoid(h[..., 0])
        scale = tf.nn.softplus(h[..., 1]) + DECODER_MIN_SCALE
        return tfd.Independent(tfd.Normal(loc=loc, scale=scale), reinterpreted_batch_ndims=ndims)

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Reconstruction means: the decoder's mean at the encoder's mean (what ``predict`` returns)."""
        return self.decode(self.encode(x, training=training).mean(), training=training).mean()

    def reconstruct(self, x: Any) -> np.ndarray:
        r""":math:`\mathbb{E}[x | z = \mu(x)]`: decode the encoder's mean, return the decoder's mean."""
        return self(self.check_data(x)).numpy()

    # ----------------------------------------------------------------- training
    def encode(self, x: Any, training: bool = False) -> tfd.Distribution:
        """The encoder's distribution over :math:`z` for a batch (subclasses say which)."""
        raise NotImplementedError

    def compile(
        self,
        optimizer: str | keras.optimizers.Optimizer = "adam",
        weight_decay: float = 0.0,
        seed: int | None = None,
        compiled_loop: bool = True,
        **kwargs: Any,
    ) -> None:
        r"""Configure training on the model's own loss (no ``loss`` argument is needed).

        Args:
            optimizer: any Keras optimizer.
            weight_decay: :math:`\lambda \ge 0`; adds :math:`\frac{\lambda}{2}\lVert\theta\rVert^2` over
                all weights to the per-example loss.
            seed: where the noise of every training and evaluation step comes from (see
                :meth:`VAE.compile`).
            compiled_loop: with XLA on, run the ``steps_per_execution`` steps of each call as one loop
                inside one XLA computation (:mod:`vaelib.compiled_loop`): the same steps, the same
                weights bit for bit, without leaving XLA between steps. ``False``: Keras's own loop.
            **kwargs: passed to ``keras.Model.compile``. Unless given, ``steps_per_execution`` is
                ``vaelib.model.STEPS_PER_EXECUTION`` (20) and ``jit_compile`` (XLA) is ``vaelib.model.xla_by_default``:
                on for the MLP, and for the conv model only where a GPU is visible (XLA slows
                convolutions down on CPU: ``benchmarks/train_speed.py``). Inside a ``tf.distribute``
                strategy's scope both default to off (one step per call, no XLA).
        """
        self.weight_decay = check_non_negative(weight_decay, "weight_decay")
        self.noise_seed = seed
        if not isinstance(compiled_loop, bool):
            raise TypeError(f"compiled_loop must be True or False, got {compiled_loop!r}")
        self.compiled_loop = compiled_loop
        if kwargs.get("loss") is not None:
            raise ValueError(f"{type(self).__name__}.compile() takes no loss: the model trains on its own objective")
        kwargs.pop("loss", None)
        # Several steps per call, and XLA for the MLP (it fuses the small matrix products and element-wise
        # ops; on CPU it slows convolutions down). Not under a tf.distribute strategy, where Keras's
        # multi-step loop fails to run.
        distributed = tf.distribute.has_strategy()
        kwargs.setdefault("steps_per_execution", 1 if distributed else STEPS_PER_EXECUTION)
        kwargs.setdefault("jit_compile", xla_by_default(self.architecture) and not distributed)
        super().compile(optimizer=optimizer, **kwargs)

    def get_compile_config(self) -> dict[str, Any] | None:
        if not self.compiled:
            return None
        config = super().get_compile_config() or {}
        return dict(config, weight_decay=self.weight_decay, seed=self.noise_seed, compiled_loop=self.compiled_loop)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**{k: v for k, v in config.items() if v is not None})
        self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker, *self.term_trackers.values()]

    def make_train_function(self, force: bool = False) -> Any:
        """Keras's ``train_function``; with XLA on, one that runs each call's steps as one compiled loop.

        See :func:`vaelib.compiled_loop.runs_compiled_loop` for when; Keras's own loop otherwise.
        """
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=True)  # Keras's own function, in self.train_function
        if runs_compiled_loop(self):
            self.train_function = compiled_train_function(self, fallback=self.train_function)
        return self.train_function

    @property
    def noise_seed(self) -> int | None:
        """The ``seed`` of :meth:`compile`: ``None``, or the int the steps' noise is drawn from."""
        return getattr(self, "_noise_seed", None)

    @noise_seed.setter
    def noise_seed(self, seed: int | None) -> None:
        if seed is not None:
            seed = check_seed(seed)
        if seed != self.noise_seed:
            self._noise_seed = seed
            # the compiled steps captured the old seed: trace them again
            self.train_function = self.test_function = self.predict_function = None

    def step_seed(self, stream: int) -> tf.Tensor | None:
        """The stateless seed of this step's noise: ``(noise_seed, stream)`` folded with the step count.

        ``stream`` separates training (0) from evaluation (1); under a ``tf.distribute`` strategy the
        replica's number is folded in too, so replicas draw independent noise. ``None`` without a seed.
        """
        if self.noise_seed is None:
            return None
        counts = [self.optimizer.iterations]
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            counts.append(replica.replica_id_in_sync_group)
        return folded_seed(self.noise_seed, stream, *counts)

    def _objective(self, x: tf.Tensor, seed: tf.Tensor | None = None) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """The batch's loss before regularisation, and the per-example terms that ``fit`` reports."""
        raise NotImplementedError

    def _loss_and_terms(self, x: tf.Tensor, stream: int = 0) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        loss, terms = self._objective(x, self.step_seed(stream))
        if self.losses:
            loss += tf.add_n(self.losses)
        if self.weight_decay:
            loss += self.weight_penalty()
        return loss, terms

    def weight_penalty(self) -> tf.Tensor:
        """:func:`weight_penalty` over all trainable weights, at this model's ``weight_decay``."""
        return weight_penalty(self.trainable_variables, self.weight_decay)

    def _record(self, loss: tf.Tensor, terms: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        # weight each batch's mean loss by its size, so the epoch's loss is a per-example mean like the rest
        batch_size = tf.shape(terms["reconstruction"])[0]
        self.loss_tracker.update_state(loss, sample_weight=tf.cast(batch_size, loss.dtype))
        for name, tracker in self.term_trackers.items():
            tracker.update_state(terms[name])
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = self.check_data(x)
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss, terms = self._loss_and_terms(x, stream=0)
            # Gradients are summed over replicas: scale so the sum is the gradient of the global mean.
            scaled_loss = loss / replicas
        grads = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._record(loss, terms)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        loss, terms = self._loss_and_terms(self.check_data(x), stream=1)
        return self._record(loss, terms)

    def _check_fit_input(self, x: Any) -> None:
        if isinstance(x, (np.ndarray, tf.Tensor, list)):
            self.check_data(x)
        elif isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            spec = spec[0] if isinstance(spec, tuple) else spec
            shape = tuple(spec.shape)[1:]
            if shape != self.data_shape or not spec.dtype.is_floating:
                raise ValueError(
                    f"the dataset must yield float batches of shape (None, {', '.join(map(str, self.data_shape))}),"
                    f" got {spec.dtype.name} batches of shape {tuple(spec.shape)}"
                )
            # the values, too, as for an array: the first batch (NaN, range, empty)
            first = next(iter(x.take(1)), None)
            if first is None:
                raise ValueError("the dataset is empty: it yields no batch")
            try:
                self.check_data(first[0] if isinstance(first, tuple) else first)
            except ValueError as err:
                raise ValueError(f"the dataset's first batch: {err}") from err

    def fit(self, x: Any = None, *args: Any, **kwargs: Any) -> keras.callbacks.History:
        """Keras ``fit``, after checking the data (shape, dtype, range, NaN) up front."""
        self._check_fit_input(x)
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # a dataset shuffles itself (see vaelib.make_dataset)
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        """Keras ``evaluate``, after checking the data up front; reports ``elbo``, ``kl``, ``reconstruction``."""
        self._check_fit_input(x)
        return super().evaluate(x, *args, **kwargs)


@keras.saving.register_keras_serializable(package="vaelib")
class VAE(EncoderDecoder):
    r"""A variational auto-encoder: ``encode(x)`` gives :math:`q(z|x)`, ``decode(z)`` gives :math:`p(x|z)`.

    Build one with :meth:`~vaelib.model.EncoderDecoder.mlp` (the paper's MNIST model by default) or
    :meth:`~vaelib.model.EncoderDecoder.conv`; the arguments are those of :class:`EncoderDecoder`.
    """

    encoder_outputs_per_latent = 2  # mu and sigma for every latent dimension
    probabilistic_encoder = True  # encode(x) is a distribution q(z|x), so the bounds are defined
    reported_terms = ("elbo", "kl", "reconstruction")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("name", "vae")
        super().__init__(*args, **kwargs)
        self.num_samples = 1
        self.kl_method = "analytic"
        self.beta = 1.0
        self.objective = "elbo"

    @property
    def prior(self) -> tfd.MultivariateNormalDiag:
        r"""The prior :math:`p(z) = \mathcal{N}(0, I)`, event shape ``(latent_dim,)``."""
        return standard_normal(self.latent_dim)

    def _mean_and_scale(self, x: Any, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        h = self.encoder(self.check_data(x), training=training)
        mean, raw_scale = tf.split(h, 2, axis=-1)
        return mean, tf.nn.softplus(raw_scale) + ENCODER_MIN_SCALE

    def encoder_outputs(self, x: Any, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        r"""The encoder's outputs :math:`(\mu, \log\sigma^2)` for a batch, each of shape ``(N, J)``."""
        mean, scale = self._mean_and_scale(x, training)
        return mean, 2.0 * tf.math.log(scale)

    def encode(self, x: Any, training: bool = False) -> tfd.MultivariateNormalDiag:
        r""":math:`q(z|x)`, a diagonal Gaussian with batch shape ``(N,)`` and event shape ``(J,)``."""
        mean, scale = self._mean_and_scale(x, training)
        return tfd.MultivariateNormalDiag(loc=mean, scale_diag=scale)

    def sample(self, n: int, seed: int | tf.Tensor | None = None, mean: bool = True) -> np.ndarray:
        r"""``n`` new data points: :math:`z \sim p(z)`, then the mean of :math:`p(x|z)` (or a draw from it)."""
        n = check_positive_int(n, "n")
        z_seed, x_seed = tfp.random.split_seed(stateless_seed(seed))
        decoded = self.decode(self.prior.sample(n, seed=z_seed))
        return (decoded.mean() if mean else decoded.sample(seed=x_seed)).numpy()

    def compile(
        self,
        optimizer: str | keras.optimizers.Optimizer = "adam",
        num_samples: int = 1,
        kl: str = "analytic",
        beta: float = 1.0,
        objective: str = "elbo",
        weight_decay: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        r"""Configure training on the negative bound (no ``loss`` argument is needed).

        Args:
            optimizer: any Keras optimizer.
            num_samples: :math:`L`, Monte Carlo samples of :math:`z` per data point (with
                ``objective="iwae"``, the :math:`k` of the importance-weighted bound).
            kl: ``"analytic"`` (closed form) or ``"mc"`` (estimated with the same samples).
            beta: weight of the KL term; the loss is :math:`-(\mathcal{L}_2 - \beta\,\mathrm{KL})`,
                the bound itself at ``beta=1`` (Higgins et al. 2017 for other values).
            objective: ``"elbo"`` (the SGVB estimator of :math:`\mathcal{L}_B`), ``"iwae"`` (the
                importance-weighted bound :math:`\mathcal{L}^{\mathrm{IW}}_k`, Burda et al. 2015, with
                :math:`k` = ``num_samples``; it takes neither ``kl`` nor ``beta``) or ``"wake_sleep"``
                (the wake-sleep algorithm, :mod:`vaelib.wake_sleep`: one :math:`z` per data point and one
                dream per data point each step; it takes no ``num_samples``, ``kl`` or ``beta``). Every
                objective reports the bound's terms.
            weight_decay: :math:`\lambda \ge 0`; adds :math:`\frac{\lambda}{2}\lVert\theta\rVert^2` over
                all weights to the per-example loss. With :math:`\lambda = 1/N` this is
                :math:`-\frac1N \log p(\theta)` for the prior :math:`p(\theta) = \mathcal{N}(0, I)` (up to a
                constant), so training maximises :math:`\frac1N[\sum_i \mathcal{L}_B(x^{(i)}) + \log p(\theta)]`,
                as in the paper's MNIST experiments.
            seed: where the noise :math:`\epsilon` of every training and evaluation step comes from.
                ``None``: TensorFlow's global random state (reproducible after
                ``keras.utils.set_random_seed``, but not restored by a checkpoint). An int in
                :math:`[0, 2^{31})`: step :math:`t` draws from the stateless seed ``(seed, t)``, with
                :math:`t` the optimizer's step count, which every checkpoint holds, so a run restored
                from a checkpoint draws exactly the noise the uninterrupted run drew
                (:func:`vaelib.training.train` sets it).
            **kwargs: ``compiled_loop`` (:meth:`EncoderDecoder.compile`); the rest are passed to
                ``keras.Model.compile``. Unless given, ``steps_per_execution`` is
                ``vaelib.model.STEPS_PER_EXECUTION`` (20) and ``jit_compile`` (XLA) is ``vaelib.model.xla_by_default``:
                on for the MLP, and for the conv model only where a GPU is visible (XLA slows
                convolutions down on CPU: ``benchmarks/train_speed.py``). Inside a ``tf.distribute``
                strategy's scope both default to off (one step per call, no XLA).
        """
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.kl_method = check_choice(kl, "kl", KL_METHODS)
        beta = float(beta)
        if not np.isfinite(beta) or beta < 0:
            raise ValueError(f"beta must be a finite number >= 0, got {beta}")
        self.beta = beta
        self.objective = check_choice(objective, "objective", TRAINING_OBJECTIVES)
        if objective == "iwae" and (kl != "analytic" or beta != 1.0):
            raise ValueError("objective='iwae' is the importance-weighted bound itself: it takes no kl or beta")
        if objective == "wake_sleep" and (self.num_samples != 1 or kl != "analytic" or beta != 1.0):
            raise ValueError(
                "objective='wake_sleep' draws one z and one dream per data point and optimises no bound:"
                f" it takes no num_samples, kl or beta (got num_samples={self.num_samples}, kl={kl!r}, beta={beta})"
            )
        super().compile(optimizer=optimizer, weight_decay=weight_decay, seed=seed, **kwargs)

    def get_compile_config(self) -> dict[str, Any] | None:
        if not self.compiled:
            return None
        return dict(
            super().get_compile_config(),
            num_samples=self.num_samples,
            kl=self.kl_method,
            beta=self.beta,
            objective=self.objective,
        )

    def _objective(self, x: tf.Tensor, seed: tf.Tensor | None = None) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """The batch's loss before regularisation, and the per-example terms that ``fit`` reports."""
        if self.objective == "iwae":
            terms = iwae_terms(self, x, self.num_samples, seed)
            return -tf.reduce_mean(terms["iwae"]), terms
        if self.objective == "wake_sleep":
            terms = wake_sleep_terms(self, x, seed)
            return -tf.reduce_mean(terms["wake"] + terms["sleep"]), terms
        terms = elbo_terms(self, x, self.num_samples, self.kl_method, seed)
        return -tf.reduce_mean(terms["reconstruction"] - self.beta * terms["kl"]), terms

r"""The variational auto-encoder as a Keras 3 model that composes an encoder, a decoder, a likelihood and a prior.

* Encoder (recognition model) :math:`q_\phi(z|x) = \mathcal{N}(z; \mu, \operatorname{diag}\sigma^2)`: any Keras
  model whose *outputs* are :math:`2 N_z` numbers per datum, :math:`\mu` and then a raw value :math:`h` of
  :math:`\sigma = \operatorname{softplus}(h) + \sigma_{\min}`, :math:`\sigma_{\min} = 10^{-4}`: it cannot
  underflow to 0 (so :math:`\log\sigma^2 \ge -18.4`) and grows only linearly in :math:`h` (so :math:`\sigma^2`
  cannot overflow where :math:`\exp h` would).
* Prior :math:`p(z)`: a ``tfp.distributions`` object with event shape :math:`(N_z,)`, by default
  :math:`\mathcal{N}(0, I)`.
* Decoder (generative model) :math:`p_\theta(x|z)`: any Keras model mapping :math:`z` to the parameters of a
  likelihood (:mod:`vaelib.likelihoods`): one number per data value for the Bernoulli (logits), one or two
  for the Gaussian.

:math:`N_z` and the shape of a data point come from the networks: from the encoder's declared input, or, for
a network that declares none (a subclassed model), from the first data the model sees (as Keras builds
its layers).

``compile()`` takes no loss: the model trains on an objective (:mod:`vaelib.objectives`), by default the
per-example mean of the negative bound, :math:`-\frac1M\sum_i \widehat{\mathcal{L}}_B(x^{(i)})` (the paper's
eq. 8 divided by :math:`N`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from vaelib import likelihoods, networks, objectives
from vaelib._checks import check_data, check_non_negative, check_positive_int, check_seed, folded_seed, stateless_seed
from vaelib.compiled_loop import compiled_train_function, runs_compiled_loop
from vaelib.distributions import deserialize_distribution, serialize_distribution
from vaelib.kl import standard_normal
from vaelib.networks import has_convolutions
from vaelib.optimizers import AveragedAdam

tfd = tfp.distributions

__all__ = ["VAE", "EncoderDecoder", "weight_penalty", "XLA_MIN_STEPS"]

ENCODER_MIN_SCALE = 1e-4
STEPS_PER_EXECUTION = 20  # training steps per call into the compiled graph (fewer Python round trips)
#: ``jit_compile="auto"`` turns XLA on for a ``fit`` that brings the model's training to at least this many
#: steps: below, compiling costs more than it saves (``benchmarks/train_speed.py``'s ``xla_break_even`` case).
XLA_MIN_STEPS = 2000
FACTORIES = {  # a factory's networks: its encoder and its decoder
    "mlp": (networks.mlp_encoder, networks.mlp_decoder),
    "conv": (networks.conv_encoder, networks.conv_decoder),
}


def weight_penalty(variables: list[tf.Variable], weight_decay: float) -> tf.Tensor:
    r""":math:`\frac{\lambda}{2}\lVert w\rVert^2` over the weights :math:`w` = ``variables``.

    :math:`\lambda` is ``weight_decay``. For a VAE :math:`w = (\theta, \phi)`, the decoder's and the
    encoder's weights together.

    With :math:`\lambda = 1/N` it is :math:`-\frac1N\log\mathcal{N}(w; 0, I)` less the constant
    :math:`\frac{\lvert w\rvert}{2N}\log 2\pi` (:math:`\lvert w\rvert` weights): the per-example
    share of the prior :math:`p(w)`.
    """
    squares = tf.add_n([tf.reduce_sum(tf.square(v)) for v in variables])
    return 0.5 * weight_decay * squares


def _initializer(spec: str | dict | keras.initializers.Initializer) -> keras.initializers.Initializer:
    """The Keras initializer ``spec`` names, ignoring config keys this Keras version does not know.

    A factory's options are saved as given, and a model saved by a newer Keras may record options its
    initializers gained since (e.g. ``input_axes``); an older Keras, such as the one Colab ships, would
    refuse the whole model.
    """
    try:
        return keras.initializers.get(spec)
    except (TypeError, ValueError):
        if not (isinstance(spec, dict) and isinstance(spec.get("config"), dict) and "class_name" in spec):
            raise
        cls = type(keras.initializers.get(spec["class_name"]))
        known = inspect.signature(cls.__init__).parameters
        return cls(**{k: v for k, v in spec["config"].items() if k in known})


def _shape(value: Sequence[int], name: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in value)
    except TypeError as err:
        raise TypeError(f"{name} must be a sequence of positive integers, got {value!r}") from err
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"{name} must be a non-empty sequence of positive integers, got {value!r}")
    return shape


def _declared_input_shape(network: Any) -> tuple[int, ...] | None:
    """The shape of one datum that ``network`` declares (a functional or Sequential model), else ``None``."""
    try:
        inputs = network.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs or len(inputs) != 1:
        return None
    shape = tuple(inputs[0].shape[1:])
    return shape if all(isinstance(d, int) for d in shape) else None


def _check_network(network: Any, name: str) -> None:
    if not isinstance(network, keras.layers.Layer):
        raise TypeError(f"{name} must be a Keras model or layer, got {type(network).__name__}")


class EncoderDecoder(keras.Model):
    r"""What :class:`VAE` and :class:`~vaelib.Autoencoder` share: an encoder, a decoder, a likelihood.

    The decoder and the likelihood give :math:`p(x|z)` (``decode``); subclasses say what ``encode`` gives and
    what training minimises (``_objective``). Shared: composing and checking the networks, the data checks,
    reconstructions, the training and evaluation steps (with weight decay, the noise seed and XLA where it
    pays), and saving.

    Args:
        encoder: a Keras model (Sequential, functional or subclassed) from a batch of data to
            ``encoder_outputs_per_latent`` :math:`\times N_z` numbers per datum.
        decoder: a Keras model from :math:`z`, shape ``(N, N_z)``, to the likelihood's parameters: shape
            ``(N, *data_shape)`` for one number per data value, ``(N, *data_shape, k)`` for :math:`k`, or
            ``(N, k * prod(data_shape))``, read as :math:`k` blocks one after the other (the first: the mean).
        likelihood: ``"bernoulli"`` (the default), ``"continuous_bernoulli"``, ``"gaussian"``, or a
            :class:`vaelib.likelihoods.Likelihood`.
        **kwargs: passed to ``keras.Model`` (e.g. ``name``).
    """

    encoder_outputs_per_latent = 1  # encoder outputs per latent dimension
    probabilistic_encoder = False  # True where encode(x) is a distribution q(z|x), so the bounds are defined
    reported_terms: tuple[str, ...] = ()  # per-example metrics of fit/evaluate, in nats

    def __init__(
        self,
        encoder: keras.layers.Layer,
        decoder: keras.layers.Layer,
        likelihood: str | likelihoods.Likelihood = "bernoulli",
        **kwargs: Any,
    ) -> None:
        _check_network(encoder, "encoder")
        _check_network(decoder, "decoder")
        recipe = kwargs.pop("_recipe", None)  # the factory's options, from mlp() or conv()
        super().__init__(**kwargs)
        self._recipe: dict[str, Any] | None = recipe
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihoods.get(likelihood)
        self.data_shape: tuple[int, ...] | None = None
        self.latent_dim: int | None = None
        self.weight_decay = 0.0
        self.xla = "auto"
        self.compiled_loop = True
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.term_trackers = {name: keras.metrics.Mean(name=name) for name in self.reported_terms}
        shape = _declared_input_shape(encoder)
        if shape is not None:
            self.build((None, *shape))

    # ----------------------------------------------------------------- shapes
    def build(self, input_shape: Sequence[int | None]) -> None:
        """Read :math:`N_z` and the data's shape off the networks, and check that they fit together."""
        if self.built:
            return
        data_shape = _shape(tuple(input_shape)[1:], "the data's shape")
        declared = _declared_input_shape(self.encoder)
        if declared is not None and declared != data_shape:
            raise ValueError(f"the encoder takes data of shape {declared}, got data of shape {data_shape}")
        h = self.encoder(tf.zeros((1, *data_shape)))
        per_latent = self.encoder_outputs_per_latent
        if len(h.shape) != 2 or h.shape[-1] % per_latent:
            raise ValueError(
                f"the encoder must give {per_latent} x N_z numbers per datum, shape (N, {per_latent} * N_z), "
                f"got shape {tuple(h.shape)}"
            )
        latent_dim = h.shape[-1] // per_latent
        out = self.decoder(tf.zeros((1, latent_dim)))
        self._layout, parameters = _decoder_layout(tuple(out.shape[1:]), data_shape)
        self.likelihood.build(data_shape, parameters)
        self.data_shape, self.latent_dim = data_shape, latent_dim
        self._check_prior()
        self.built = True

    def _check_prior(self) -> None:
        """Subclasses with a prior check it against :math:`N_z`."""

    def get_build_config(self) -> dict[str, Any] | None:
        return None if self.data_shape is None else {"input_shape": [None, *self.data_shape]}

    def build_from_config(self, config: dict[str, Any]) -> None:
        self.build(config["input_shape"])

    def _ensure_built(self, shape: Sequence[int | None]) -> None:
        if not self.built:
            self.build(shape)

    # ----------------------------------------------------------------- factories
    @classmethod
    def mlp(
        cls,
        data_shape: Sequence[int] = (28, 28),
        latent_dim: int = 20,
        hidden_units: Sequence[int] = (500,),
        activation: str = "tanh",
        likelihood: str | likelihoods.Likelihood = "bernoulli",
        initializer: str | dict = "glorot_uniform",
        outputs_per_value: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """The paper's MLP model: by default 784-500-20 with tanh and a Bernoulli decoder.

        ``outputs_per_value``: the decoder's numbers per data value (default: the likelihood's first, 1; 2 for
        a Gaussian whose scale depends on :math:`z`). Other ``kwargs`` go to the constructor (``prior``,
        ``name``).
        """
        options = {
            "data_shape": list(_shape(data_shape, "data_shape")),
            "latent_dim": check_positive_int(latent_dim, "latent_dim"),
            "hidden_units": [check_positive_int(u, "hidden_units entry") for u in hidden_units],
            "activation": activation,
            "initializer": initializer,
        }
        return cls._from_recipe("mlp", options, likelihood, outputs_per_value, kwargs)

    @classmethod
    def conv(
        cls,
        data_shape: Sequence[int] = (28, 28),
        latent_dim: int = 2,
        filters: Sequence[int] = (32, 64),
        hidden_units: Sequence[int] = (16,),
        likelihood: str | likelihoods.Likelihood = "bernoulli",
        initializer: str | dict = "glorot_uniform",
        outputs_per_value: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """A convolutional model: two stride-2 3x3 convolutions each way (the Keras VAE example)."""
        options = {
            "data_shape": list(_shape(data_shape, "data_shape")),
            "latent_dim": check_positive_int(latent_dim, "latent_dim"),
            "filters": [check_positive_int(f, "filters entry") for f in filters],
            "hidden_units": [check_positive_int(u, "hidden_units entry") for u in hidden_units],
            "initializer": initializer,
        }
        return cls._from_recipe("conv", options, likelihood, outputs_per_value, kwargs)

    @classmethod
    def _from_recipe(
        cls,
        factory: str,
        options: dict[str, Any],
        likelihood: str | likelihoods.Likelihood,
        outputs_per_value: int | None,
        kwargs: dict[str, Any],
    ) -> Any:
        likelihood = likelihoods.get(likelihood)
        if outputs_per_value is None:
            outputs_per_value = likelihood.parameters_per_value[0]
        outputs_per_value = check_positive_int(outputs_per_value, "outputs_per_value")
        build_encoder, build_decoder = FACTORIES[factory]
        shared = {k: v for k, v in options.items() if k != "initializer"}
        shared["initializer"] = _initializer(options["initializer"])
        encoder = build_encoder(**shared, outputs_per_latent=cls.encoder_outputs_per_latent)
        decoder = build_decoder(**shared, outputs_per_value=outputs_per_value)
        recipe = {"factory": factory, **options, "outputs_per_value": outputs_per_value}
        return cls(encoder, decoder, likelihood=likelihood, _recipe=recipe, **kwargs)

    # ----------------------------------------------------------------- saving
    def get_config(self) -> dict[str, Any]:
        """The networks (or, for a model of :meth:`mlp` or :meth:`conv`, the factory's options) and the likelihood.

        A factory's model records its options rather than its layers, so that a model saved by one Keras
        version loads in another (whose layers may take other options).
        """
        config: dict[str, Any] = {
            "name": self.name,
            "likelihood": keras.saving.serialize_keras_object(self.likelihood),
        }
        if self._recipe is not None:
            config["networks"] = dict(self._recipe)
        else:
            config["encoder"] = keras.saving.serialize_keras_object(self.encoder)
            config["decoder"] = keras.saving.serialize_keras_object(self.decoder)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EncoderDecoder:
        config = dict(config)
        likelihood = likelihoods.get(config.pop("likelihood"))
        recipe = config.pop("networks", None)
        if recipe is not None:
            recipe = dict(recipe)
            factory = recipe.pop("factory")
            if factory not in FACTORIES:
                raise ValueError(f"unknown network factory {factory!r}; the factories are {', '.join(FACTORIES)}")
            return getattr(cls, factory)(likelihood=likelihood, **recipe, **config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, likelihood=likelihood, **config)

    # ----------------------------------------------------------------- the model
    def check_data(self, x: Any) -> tf.Tensor:
        """Check a batch of data against this model: shape, dtype, finite, within the likelihood's support."""
        shape = np.shape(x) if not isinstance(x, (tf.Tensor, tf.Variable)) else tuple(x.shape)
        if not self.built and len(shape) >= 2:
            self._ensure_built((None, *shape[1:]))
        if not self.built:
            raise ValueError(f"x must be a batch of data of shape (N, ...), got shape {shape}")
        return check_data(x, self.data_shape, likelihood=self.likelihood)

    @property
    def decoder_variables(self) -> list[tf.Variable]:
        r"""The trainable weights of :math:`p_\theta(x|z)`: the decoder's and the likelihood's (a learned scale)."""
        return [*self.decoder.trainable_variables, *self.likelihood.trainable_variables]

    def decode(self, z: Any, training: bool = False) -> tfd.Independent:
        r""":math:`p(x|z)` with event shape ``data_shape`` and batch shape ``z.shape[:-1]``.

        ``z`` may carry sample dimensions in front, e.g. ``(L, N, N_z)`` gives batch shape ``(L, N)``.
        """
        if not self.built:
            raise ValueError("the model is not built yet: give it data first (its networks declare no input shape)")
        z = tf.convert_to_tensor(z, dtype=tf.float32)
        if z.shape.rank is None or z.shape.rank < 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"z must have shape (..., N, {self.latent_dim}), got {z.shape}")
        leading = tf.shape(z)[:-1]
        out = self.decoder(tf.reshape(z, [-1, self.latent_dim]), training=training)
        parameters = self.likelihood.parameters
        if self._layout == "blocks":  # (B, k * D): k blocks of D values, one after the other
            out = tf.transpose(tf.reshape(out, [-1, parameters, math.prod(self.data_shape)]), [0, 2, 1])
        shape = tf.concat([leading, self.data_shape, [parameters]], axis=0)
        return self.likelihood.distribution(tf.reshape(out, shape))

    def encode(self, x: Any, training: bool = False) -> tfd.Distribution:
        """The encoder's distribution over :math:`z` for a batch (subclasses say which)."""
        raise NotImplementedError

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Reconstruction means: the decoder's mean at the encoder's mean (what ``predict`` returns)."""
        return self.decode(self.encode(x, training=training).mean(), training=training).mean()

    def reconstruct(self, x: Any) -> np.ndarray:
        r""":math:`\mathbb{E}[x | z = \mu(x)]`: decode the encoder's mean, return the decoder's mean."""
        return self(self.check_data(x)).numpy()

    # ----------------------------------------------------------------- training
    def compile(
        self,
        optimizer: str | keras.optimizers.Optimizer = "adam",
        *,
        weight_decay: float = 0.0,
        seed: int | None = None,
        jit_compile: bool | str = "auto",
        compiled_loop: bool = True,
        **kwargs: Any,
    ) -> None:
        r"""Configure training on the model's own objective (no ``loss`` argument is needed).

        Args:
            optimizer: any Keras optimizer.
            weight_decay: :math:`\lambda \ge 0`; adds :math:`\frac{\lambda}{2}\lVert(\theta, \phi)\rVert^2` over
                all weights, the decoder's and the encoder's, to the per-example loss.
            seed: where the noise of every training and evaluation step comes from (see
                :meth:`VAE.compile`).
            jit_compile: ``"auto"`` (the default): XLA for a ``fit`` that brings the model's training to at
                least :data:`vaelib.model.XLA_MIN_STEPS` steps, unless the networks have convolutions (XLA
                slowed them down on a CPU), and always where TensorFlow sees a GPU; ``True`` or ``False`` as in
                Keras.
            compiled_loop: with XLA on, run the ``steps_per_execution`` steps of each call as one loop
                inside one XLA computation (:mod:`vaelib.compiled_loop`): the same steps, the same
                weights bit for bit, without leaving XLA between steps. ``False``: Keras's own loop.
            **kwargs: passed to ``keras.Model.compile``; ``metrics`` are computed on the reconstructions
                (``y_true`` the data, ``y_pred`` what ``predict`` returns). Unless given, ``steps_per_execution``
                is 20; inside a ``tf.distribute`` strategy's scope it is 1, and XLA off.
        """
        self.weight_decay = check_non_negative(weight_decay, "weight_decay")
        self.noise_seed = seed
        if not isinstance(compiled_loop, bool):
            raise TypeError(f"compiled_loop must be True or False, got {compiled_loop!r}")
        if jit_compile not in ("auto", True, False):
            raise ValueError(f"jit_compile must be 'auto', True or False, got {jit_compile!r}")
        self.compiled_loop = compiled_loop
        if kwargs.get("loss") is not None:
            raise ValueError(f"{type(self).__name__}.compile() takes no loss: the model trains on its own objective")
        kwargs.pop("loss", None)
        for name in ("loss_weights", "weighted_metrics"):
            if kwargs.get(name) is not None:
                raise ValueError(f"{type(self).__name__}.compile() takes no {name}: the model has no loss to weight")
        distributed = tf.distribute.has_strategy()
        kwargs.setdefault("steps_per_execution", 1 if distributed else STEPS_PER_EXECUTION)
        self.xla = False if distributed and jit_compile == "auto" else jit_compile
        super().compile(optimizer=optimizer, jit_compile=self.xla is True, **kwargs)

    def get_compile_config(self) -> dict[str, Any] | None:
        if not self.compiled:
            return None
        config = super().get_compile_config() or {}
        config.pop("loss", None)
        return dict(
            config,
            jit_compile=self.xla,
            weight_decay=self.weight_decay,
            seed=self.noise_seed,
            compiled_loop=self.compiled_loop,
        )

    def compile_from_config(self, config: dict[str, Any]) -> None:
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**{k: v for k, v in config.items() if v is not None})
        self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        compiled = getattr(self, "_compile_metrics", None)
        return [self.loss_tracker, *self.term_trackers.values(), *([compiled] if compiled is not None else [])]

    def uses_xla(self, total_steps: int | None) -> bool:
        """Whether a ``fit`` that brings training to ``total_steps`` steps runs with XLA (``None``: unknown, long)."""
        if self.xla != "auto":
            return bool(self.xla)
        if tf.config.list_physical_devices("GPU"):
            return True
        long_enough = total_steps is None or total_steps >= XLA_MIN_STEPS
        return long_enough and not has_convolutions(self)

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
            self._reset_functions()  # the compiled steps captured the old seed: trace them again

    def _reset_functions(self) -> None:
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

    def _record(self, x: tf.Tensor, loss: tf.Tensor, terms: dict[str, tf.Tensor], training: bool) -> dict:
        # weight each batch's mean loss by its size, so the epoch's loss is a per-example mean like the rest
        batch_size = tf.shape(x)[0]
        self.loss_tracker.update_state(loss, sample_weight=tf.cast(batch_size, loss.dtype))
        for name, tracker in self.term_trackers.items():
            tracker.update_state(terms[name])
        if getattr(self, "_compile_metrics", None) is not None:
            self._compile_metrics.update_state(x, self(x, training=training))
        return self.get_metrics_result()

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
        return self._record(x, loss, terms, training=True)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = self.check_data(x)
        loss, terms = self._loss_and_terms(x, stream=1)
        return self._record(x, loss, terms, training=False)

    def _check_fit_input(self, x: Any) -> None:
        if isinstance(x, (np.ndarray, tf.Tensor, list)):
            self.check_data(x)
        elif isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            spec = spec[0] if isinstance(spec, tuple) else spec
            if not isinstance(spec, tf.TensorSpec):
                raise TypeError(f"the dataset must yield batches of data (tensors), got elements {x.element_spec}")
            if not self.built and spec.shape.rank is not None and spec.shape.rank >= 2:
                self._ensure_built((None, *spec.shape[1:]))
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
        elif x is None:
            raise ValueError("fit and evaluate need data: an array of shape (N, *data_shape) or a tf.data.Dataset")

    def _planned_steps(self, x: Any, arguments: dict[str, Any]) -> int | None:
        """How many steps a ``fit`` with these arguments runs (``None`` if it cannot tell)."""
        epochs = int(arguments.get("epochs", 1)) - int(arguments.get("initial_epoch", 0))
        per_epoch = arguments.get("steps_per_epoch")
        if per_epoch is None:
            if isinstance(x, tf.data.Dataset):
                cardinality = int(x.cardinality())
                per_epoch = cardinality if cardinality >= 0 else None
            elif x is not None:
                batch_size = arguments.get("batch_size") or 32
                per_epoch = -(-len(x) // int(batch_size))
        return None if per_epoch is None else max(epochs, 0) * int(per_epoch)

    def fit(self, x: Any = None, *args: Any, **kwargs: Any) -> keras.callbacks.History:
        """Keras ``fit``, after checking the data (shape, dtype, support, NaN) up front.

        With ``compile(jit_compile="auto")`` it decides here whether to run with XLA: from the steps the
        model will have trained at the end of this call (the optimizer's count and this call's), so a run
        resumed from a checkpoint decides as the uninterrupted run did.
        """
        self._check_fit_input(x)
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # a dataset shuffles itself (see vaelib.make_dataset)
        if self.compiled and self.xla == "auto":
            arguments = inspect.signature(keras.Model.fit).bind_partial(self, x, *args, **kwargs).arguments
            planned = self._planned_steps(x, arguments)
            total = None if planned is None else int(np.asarray(self.optimizer.iterations)) + planned
            xla = self.uses_xla(total)
            if xla != self.jit_compile:
                self.jit_compile = xla
                self._reset_functions()
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        """Keras ``evaluate``, after checking the data up front; reports the loss and the objective's terms."""
        self._check_fit_input(x)
        return super().evaluate(x, *args, **kwargs)


def _decoder_layout(output_shape: tuple[int, ...], data_shape: tuple[int, ...]) -> tuple[str, int]:
    """How the decoder's numbers for one datum map onto the data: ``(layout, numbers per value)``."""
    size = math.prod(data_shape)
    if output_shape == data_shape:
        return "values", 1
    if len(output_shape) == len(data_shape) + 1 and output_shape[:-1] == data_shape:
        return "values", output_shape[-1]
    if len(output_shape) == 1 and output_shape[0] % size == 0:  # k >= 2 for 1-D data: k = 1 matched above
        return "blocks", output_shape[0] // size
    values, got = ", ".join(map(str, data_shape)), ", ".join(map(str, output_shape))
    raise ValueError(
        f"the decoder must give the likelihood's parameters for every data value: shape (N, {values}), "
        f"(N, {values}, k) or (N, k * {size}); got shape (N, {got})"
    )


@keras.saving.register_keras_serializable(package="vaelib")
class VAE(EncoderDecoder):
    r"""A variational auto-encoder: ``encode(x)`` gives :math:`q(z|x)`, ``decode(z)`` gives :math:`p(x|z)`.

    Compose one from your own networks, ``VAE(encoder, decoder, likelihood="bernoulli", prior=None)``, or build
    the paper's with :meth:`~vaelib.VAE.mlp` or :meth:`~vaelib.VAE.conv`.

    Args:
        encoder: a Keras model from a batch of data to :math:`2 N_z` numbers per datum (:math:`\mu`, then the raw
            value of :math:`\sigma`).
        decoder: a Keras model from :math:`z` to the likelihood's parameters (see :class:`EncoderDecoder`).
        likelihood: ``"bernoulli"``, ``"continuous_bernoulli"``, ``"gaussian"`` or a
            :class:`vaelib.likelihoods.Likelihood`.
        prior: :math:`p(z)`, a ``tfp.distributions`` object with event shape :math:`(N_z,)`; ``None``: the
            standard normal.
        **kwargs: passed to ``keras.Model`` (e.g. ``name``).
    """

    encoder_outputs_per_latent = 2  # mu and sigma for every latent dimension
    probabilistic_encoder = True  # encode(x) is a distribution q(z|x), so the bounds are defined
    reported_terms = ("elbo", "kl", "reconstruction")

    def __init__(
        self,
        encoder: keras.layers.Layer,
        decoder: keras.layers.Layer,
        likelihood: str | likelihoods.Likelihood = "bernoulli",
        prior: tfd.Distribution | None = None,
        **kwargs: Any,
    ) -> None:
        if prior is not None and not isinstance(prior, tfd.Distribution):
            raise TypeError(f"prior must be a tfp.distributions.Distribution or None, got {type(prior).__name__}")
        self._given_prior = prior
        kwargs.setdefault("name", "vae")
        super().__init__(encoder, decoder, likelihood, **kwargs)
        self.objective: objectives.Objective = objectives.ELBO()

    def _check_prior(self) -> None:
        prior = self._given_prior
        if prior is None:
            self._prior = standard_normal(self.latent_dim)
            return
        if prior.event_shape.as_list() != [self.latent_dim] or prior.batch_shape.as_list() != []:
            raise ValueError(
                f"the prior must have event shape ({self.latent_dim},), the encoder's N_z, and no batch shape; got "
                f"event shape {tuple(prior.event_shape)} and batch shape {tuple(prior.batch_shape)}"
            )
        self._prior = prior

    @property
    def prior(self) -> tfd.Distribution:
        r"""The prior :math:`p(z)`, event shape ``(latent_dim,)`` (by default :math:`\mathcal{N}(0, I)`)."""
        if not self.built:
            raise ValueError("the model is not built yet: give it data first (its networks declare no input shape)")
        return self._prior

    def get_config(self) -> dict[str, Any]:
        prior = self._given_prior
        return dict(super().get_config(), prior=None if prior is None else serialize_distribution(prior))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> VAE:
        config = dict(config)
        prior = config.pop("prior", None)
        if prior is not None:
            config["prior"] = deserialize_distribution(prior)
        return super().from_config(config)

    def _mean_and_scale(self, x: Any, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        h = self.encoder(self.check_data(x), training=training)
        mean, raw_scale = tf.split(h, 2, axis=-1)
        return mean, tf.nn.softplus(raw_scale) + ENCODER_MIN_SCALE

    def encoder_outputs(self, x: Any, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        r"""The encoder's outputs :math:`(\mu, \log\sigma^2)` for a batch, each of shape ``(N, N_z)``."""
        mean, scale = self._mean_and_scale(x, training)
        return mean, 2.0 * tf.math.log(scale)

    def encode(self, x: Any, training: bool = False) -> tfd.MultivariateNormalDiag:
        r""":math:`q(z|x)`, a diagonal Gaussian with batch shape ``(N,)`` and event shape ``(N_z,)``."""
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
        optimizer: str | keras.optimizers.Optimizer | None = None,
        objective: str | objectives.Objective = "elbo",
        **kwargs: Any,
    ) -> None:
        r"""Configure training on an objective (no ``loss`` argument is needed).

        Args:
            optimizer: any Keras optimizer. ``None`` (the default): a new :class:`vaelib.AveragedAdam`, Adam
                with step size :math:`3 \cdot 10^{-3}` and a moving average of the weights, which ``fit``
                leaves in the model when it returns; it reaches a good bound in less than half the epochs of
                ``"adam"``, Keras's Adam at :math:`10^{-3}`.
            objective: what training maximises, an object of :mod:`vaelib.objectives`: ``"elbo"`` (the
                default, :class:`~vaelib.ELBO` with :math:`L = 1` and the closed-form KL),
                ``vaelib.ELBO(num_samples, kl, beta)``, ``vaelib.IWAE(num_samples)``, or another algorithm's
                (``vaelib.paper.WakeSleep()``).
            **kwargs: ``weight_decay``, ``seed``, ``jit_compile`` and ``compiled_loop``
                (:meth:`vaelib.EncoderDecoder.compile`), and the rest of ``keras.Model.compile`` (``metrics``,
                ``steps_per_execution``, ...). ``weight_decay`` :math:`\lambda = 1/N` adds
                :math:`-\frac1N \log p(\theta, \phi)` for the prior :math:`p(\theta, \phi) = \mathcal{N}(0, I)` (up to a
                constant), as in the paper's MNIST experiments. ``seed``: where the noise :math:`\epsilon` of
                every training and evaluation step comes from. ``None``: TensorFlow's global random state
                (reproducible after ``keras.utils.set_random_seed``, but not restored by a checkpoint). An int in
                :math:`[0, 2^{31})`: step :math:`t` draws from the stateless seed ``(seed, t)``, with :math:`t` the
                optimizer's step count, which every checkpoint holds, so a run restored from a checkpoint draws
                exactly the noise the uninterrupted run drew (:func:`vaelib.train` sets it).
        """
        self.objective = objectives.get(objective)
        super().compile(optimizer=AveragedAdam() if optimizer is None else optimizer, **kwargs)

    def get_compile_config(self) -> dict[str, Any] | None:
        config = super().get_compile_config()
        if config is None:
            return None
        return dict(config, objective=keras.saving.serialize_keras_object(self.objective))

    def _objective(self, x: tf.Tensor, seed: tf.Tensor | None = None) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """The batch's loss before regularisation, and the per-example terms that ``fit`` reports."""
        return self.objective(self, x, seed)

"""Input checks shared by the library: clear errors instead of silent NaNs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= 1, got {value!r} of type {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value}")
    return int(value)


def check_non_negative(value: object, name: str) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a finite number >= 0, got {value!r} of type {type(value).__name__}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def check_open_unit(value: object, name: str) -> float:
    """Return ``value`` as a float, or raise if it is not a number strictly between 0 and 1 (a rate)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in (0, 1), got {value!r} of type {type(value).__name__}")
    if not 0.0 < value < 1.0:  # NaN fails this too
        raise ValueError(f"{name} must be in (0, 1), got {value}")
    return float(value)


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return str(value)


def check_data(
    x: object,
    event_shape: Sequence[int],
    *,
    likelihood: Any = None,
    name: str = "x",
    dtype: tf.DType = tf.float32,
) -> tf.Tensor:
    """Check a batch of data points and return it as a tensor of ``dtype`` (float32 by default).

    Expects shape ``(N, *event_shape)`` with N >= 1 and a floating dtype, and finite values. With a
    ``likelihood`` (:class:`vaelib.likelihoods.Likelihood`), the values must lie in its support. Shape and
    dtype are checked when tracing too; values are checked when running eagerly (inside a compiled
    training step they cannot raise a Python error).
    """
    event_shape = tuple(int(d) for d in event_shape)
    if isinstance(x, (tf.Tensor, tf.Variable)):
        dtype = x.dtype
        if not (dtype.is_floating):
            raise TypeError(f"{name} must be floating point (float32 values, e.g. images / 255.), got {dtype.name}")
        t = tf.cast(x, dtype)
    else:
        arr = np.asarray(x)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.floating):
            raise TypeError(
                f"{name} must be floating point (float32 values, e.g. images / 255.), got dtype {arr.dtype}"
            )
        t = tf.convert_to_tensor(arr, dtype=dtype)
    shape = tuple(t.shape)
    expected = "(N, " + ", ".join(str(d) for d in event_shape) + ")"
    if len(shape) != len(event_shape) + 1:
        raise ValueError(f"{name} must have shape {expected}, got shape {shape} (rank {len(shape)})")
    if any(s is not None and s != e for s, e in zip(shape[1:], event_shape)):
        raise ValueError(f"{name} must have shape {expected}, got shape {shape}")
    if shape[0] == 0:
        raise ValueError(f"{name} is empty: expected at least one data point of shape {event_shape}")
    if tf.executing_eagerly():
        check_values(t.numpy(), likelihood, name)
    return t


def check_values(values: np.ndarray, likelihood: Any = None, name: str = "x") -> None:
    """Raise ``ValueError`` on NaN or infinite ``values``, or values outside ``likelihood``'s support."""
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if likelihood is not None:
        likelihood.check_support(values, name)


def check_seed(seed: object, name: str = "seed") -> int:
    """``seed`` as an int in :math:`[0, 2^{31})`, or a ``TypeError``/``ValueError`` that says what was expected."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name} must be an int in [0, 2**31), got {seed!r}")
    if not 0 <= seed < 2**31:
        raise ValueError(f"{name} must be an int in [0, 2**31), got {seed}")
    return int(seed)


def stateless_seed(seed: int | tf.Tensor | None) -> tf.Tensor:
    """A shape-``[2]`` int32 seed for TFP's stateless samplers.

    ``None`` draws a fresh seed (different on every call); an int always gives the same seed, so two
    calls with the same int see the same random numbers; a shape-``[2]`` integer tensor is used as is.
    """
    if seed is None:
        return tfp.random.sanitize_seed(None)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return tf.constant([check_seed(seed), 0x5EED], dtype=tf.int32)
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or seed.shape != (2,):
        raise TypeError(f"seed must be None, an int or an integer tensor of shape [2], got {seed!r}")
    return tf.cast(seed, tf.int32)


def folded_seed(seed: int, stream: int, *counts: tf.Tensor) -> tf.Tensor:
    """The int32 stateless seed ``(seed, stream)`` folded with each of ``counts`` in turn.

    A training loop folds in its step count, so every step draws new noise, and a resumed run the noise
    the uninterrupted run would have drawn.
    """
    folded = tf.constant([seed, stream], dtype=tf.int64)
    for count in counts:
        folded = tf.random.experimental.stateless_fold_in(folded, tf.cast(count, tf.int64))
    return tf.cast(folded % (2**31), tf.int32)

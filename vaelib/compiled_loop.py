r"""Several training steps as one XLA computation: the loop that ``fit`` runs when XLA is on.

Keras's own loop for ``steps_per_execution`` :math:`= n` is a TensorFlow while-loop that enters the
XLA-compiled step once per minibatch: between two steps the executor leaves XLA, runs the loop's own
operations, fetches the next minibatch from the pipeline and enters XLA again. In a profiler's
timeline of the MLP on a 2-core CPU that took about half a millisecond a step, against 3.4 ms of XLA
code (``benchmarks/train_speed.py``'s ``mlp_profile`` times ``fit`` with both loops). Here the next
:math:`n` minibatches are fetched first and stacked into one tensor of shape :math:`(n, M, \dots)`, and
the :math:`n` steps run as a loop *inside* one XLA computation.

The steps are the same, in the same order, on the same minibatches: every step calls the model's
``train_step``, which draws its noise from the optimizer's step count (:meth:`EncoderDecoder.step_seed
<vaelib.EncoderDecoder.step_seed>`), so the weights after any number of steps are those of
Keras's loop bit for bit (tested). Minibatches are stacked in runs of one size: the smaller last one
of an epoch starts a run of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from vaelib.networks import has_convolutions

__all__ = ["compiled_train_function", "runs_compiled_loop"]


def runs_compiled_loop(model: keras.Model) -> bool:
    """Whether ``model``'s ``fit`` runs its steps as one compiled loop (:func:`compiled_train_function`).

    It does when the model asks for it (``compile(compiled_loop=True)``, the default), XLA is on, more
    than one step runs per call, the model does not run eagerly, no ``tf.distribute`` strategy is in
    use (whose replicas Keras's own loop coordinates), and the networks have no convolutions: XLA on a CPU
    compiled the conv model's convolutions inside a loop into code about thirty times slower than the same
    step compiled alone (2 s against 64 ms a step of 100 images, AMD EPYC with AVX-512), so models with
    convolutions keep Keras's loop everywhere (no GPU was available to measure them there).
    """
    return bool(
        getattr(model, "compiled_loop", False)
        and not has_convolutions(model)
        and model.jit_compile
        and not model.run_eagerly
        and model.steps_per_execution > 1
        and not tf.distribute.has_strategy()
    )


def _leading_size(batch: Any) -> tf.Tensor:
    """The number of examples in a minibatch (the first dimension of its first tensor)."""
    return tf.shape(tf.nest.flatten(batch)[0])[0]


def compiled_train_function(model: keras.Model, fallback: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A ``train_function`` for Keras's ``fit`` that runs ``steps_per_execution`` steps per call in XLA.

    Called with the epoch's ``tf.data`` iterator, it takes the next :math:`n` = ``steps_per_execution``
    minibatches (fewer if the data run out), as Keras's own function does, and runs their steps in
    order: each run of minibatches of one size is stacked and trained as one loop in one XLA
    computation. It returns the logs of the last step, the model's metrics after it (what the
    ``train_step`` of :class:`~vaelib.EncoderDecoder` returns), and raises ``StopIteration`` when
    the iterator had nothing left. Anything else Keras may pass (a Python generator from
    ``train_on_batch``, or an iterator whose elements are not plain tensors) goes to ``fallback``,
    Keras's own function.
    """
    steps = int(model.steps_per_execution)

    @tf.function(jit_compile=True, reduce_retracing=True)
    def run_steps(stacked: Any, count: tf.Tensor) -> dict[str, tf.Tensor]:
        for i in tf.range(count):
            model.train_step(tf.nest.map_structure(lambda t, i=i: t[i], stacked))
        # what the last train_step returned: the metrics after it
        return {metric.name: metric.result() for metric in model.metrics}

    def multi_step(iterator: tf.data.Iterator, first: Any) -> dict[str, tf.Tensor]:
        nothing = tf.experimental.Optional.empty(iterator.element_spec)

        def segment(start: Any, taken: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor, Any]:
            """Train on ``start`` and the minibatches after it of its size; return the logs, how many, what follows."""
            size = _leading_size(start)

            def fetch(count: tf.Tensor) -> tf.experimental.Optional:
                # never more than `steps` minibatches a call: the rest belong to the next call
                return tf.cond(taken + count < steps, iterator.get_next_as_optional, lambda: nothing)

            def same_size(count, arrays, following) -> tf.Tensor:
                return tf.cond(
                    following.has_value(),
                    lambda: tf.equal(_leading_size(following.get_value()), size),
                    lambda: tf.constant(False),
                )

            def take(count, arrays, following):
                values = tf.nest.flatten(following.get_value())
                return count + 1, [a.write(count, v) for a, v in zip(arrays, values)], fetch(count + 1)

            arrays = [tf.TensorArray(t.dtype, size=steps).write(0, t) for t in tf.nest.flatten(start)]
            count, arrays, following = tf.while_loop(same_size, take, (tf.constant(1), arrays, fetch(1)))

            def stacked(array: tf.TensorArray, like: tf.Tensor) -> tf.Tensor:
                written = array.gather(tf.range(count))
                # fewer than `steps`: pad with zeros (never read), so that one compiled loop serves all calls
                padding = tf.zeros(tf.concat([[steps - count], tf.shape(like)], 0), like.dtype)
                full = tf.cond(count < steps, lambda: tf.concat([written, padding], 0), lambda: written)
                return tf.ensure_shape(full, [steps, *like.shape])

            batches = [stacked(a, t) for a, t in zip(arrays, tf.nest.flatten(start))]
            return run_steps(tf.nest.pack_sequence_as(start, batches), count), count, following

        logs, taken, following = segment(first, tf.constant(0))

        def next_segment(taken, logs, following):
            logs, count, following = segment(following.get_value(), taken)
            return taken + count, logs, following

        # a minibatch of another size (the smaller last one of an epoch) starts a segment of its own
        _, logs, _ = tf.while_loop(
            lambda taken, logs, following: following.has_value(), next_segment, (taken, logs, following)
        )
        return logs

    compiled: dict[str, Callable[..., dict[str, tf.Tensor]]] = {}

    def function(iterator: Any) -> Any:
        if not isinstance(iterator, tf.data.Iterator) or not all(
            isinstance(spec, tf.TensorSpec) for spec in tf.nest.flatten(iterator.element_spec)
        ):
            return fallback(iterator)
        first = iterator.get_next_as_optional()
        if not first.has_value():
            raise StopIteration
        spec = iterator.element_spec
        # traced for the iterator's element spec, not the first minibatch's shape, so that every
        # segment of a call shares one traced (and, per minibatch shape, one compiled) loop
        key = repr(spec)
        if key not in compiled:
            compiled[key] = tf.function(multi_step, input_signature=[tf.data.IteratorSpec(spec), spec])
        return compiled[key](iterator, first.get_value())

    return function

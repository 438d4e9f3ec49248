"""The compiled training loop: the steps of Keras's loop, the same weights bit for bit, in one XLA computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vaelib
from vaelib import make_stream
from vaelib.compiled_loop import compiled_train_function, runs_compiled_loop

# 1,030 images: 11 minibatches of 100 a pass, the last one of 30, so the epochs do not split into
# whole calls of 4 steps and every call that meets the small minibatch trains on two sizes.
N, STEPS_PER_CALL = 1030, 4


@pytest.fixture(scope="module")
def images(mnist):
    (x_train, _), _ = mnist
    return x_train[:N]


def small_model(compiled_loop: bool) -> vaelib.VAE:
    keras.utils.set_random_seed(0)
    model = vaelib.VAE.mlp(latent_dim=4, hidden_units=(32,))
    model.compile(
        optimizer="adam", seed=3, steps_per_execution=STEPS_PER_CALL, compiled_loop=compiled_loop, jit_compile=True
    )
    return model


def trained(compiled_loop: bool, data, **fit_args) -> tuple[vaelib.VAE, dict, list]:
    """A model after ``fit``, its history and the logs every callback call saw."""
    model = small_model(compiled_loop)
    seen = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append((batch, dict(logs))))
    history = model.fit(data(), verbose=0, callbacks=[record], **fit_args)
    return model, history.history, seen


DATA = {
    # a finite, reshuffled dataset whose passes end in a small minibatch
    "dataset": (lambda x: vaelib.make_dataset(x, "bernoulli", batch_size=100, seed=1), {"epochs": 3}),
    # an endless stream cut into epochs of 7 steps (so the calls run past the epochs' ends, as Keras's do)
    "stream": (lambda x: make_stream(x, "bernoulli", 100, "dynamic", seed=1), {"epochs": 3, "steps_per_epoch": 7}),
    # an array: Keras makes the dataset
    "array": (lambda x: x, {"epochs": 2, "batch_size": 64}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DATA))
def test_compiled_loop_trains_to_the_weights_of_keras_loop_bit_for_bit(images, name):
    make, fit_args = DATA[name]
    ours, ours_history, ours_seen = trained(True, lambda: make(images), **fit_args)
    keras_, keras_history, keras_seen = trained(False, lambda: make(images), **fit_args)
    assert runs_compiled_loop(ours) and not runs_compiled_loop(keras_)
    assert int(ours.optimizer.iterations) == int(keras_.optimizer.iterations) > 0
    for a, b in zip(ours.get_weights(), keras_.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(ours.optimizer.variables, keras_.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert ours_history == keras_history  # the epochs' metrics
    assert ours_seen == keras_seen  # every call's logs, at the same steps


def test_the_compiled_loop_trains_datasets_itself_and_leaves_other_input_to_keras(images):
    """A dataset's steps run in the compiled loop (Keras's function is never called); train_on_batch's go to Keras."""
    model = small_model(True)
    keras.Model.make_train_function(model, force=True)  # Keras's own function, for the hand-over
    keras_function, handed_over = model.train_function, []

    def fallback(iterator):
        handed_over.append(iterator)
        return keras_function(iterator)

    model.train_function = compiled_train_function(model, fallback=fallback)
    model.fit(vaelib.make_dataset(images, "bernoulli", batch_size=100, seed=1), epochs=2, verbose=0)
    assert handed_over == [] and int(model.optimizer.iterations) == 2 * 11
    logs = model.train_on_batch(images[:100], return_dict=True)
    assert len(handed_over) == 1 and not isinstance(handed_over[0], tf.data.Iterator)
    assert int(model.optimizer.iterations) == 2 * 11 + 1 and np.isfinite(logs["loss"])


def test_the_compiled_loop_stops_when_the_data_run_out(images):
    model = small_model(True)
    model.make_train_function()
    iterator = iter(vaelib.make_dataset(images[:250], "bernoulli", batch_size=100, shuffle=False))
    model.train_function(iterator)  # 100, 100, then 50: three steps in one call (two segments)
    assert int(model.optimizer.iterations) == 3
    with pytest.raises(StopIteration):
        model.train_function(iterator)


def test_compiled_loop_is_used_only_with_xla_and_several_steps_per_call():
    def model(**options):
        built = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
        built.compile(optimizer="adam", **options)
        return built

    assert runs_compiled_loop(model(jit_compile=True))  # with XLA, at 20 steps a call by default
    assert not runs_compiled_loop(model())  # XLA, by default, only once a fit is long: see test_model
    assert not runs_compiled_loop(model(jit_compile=True, compiled_loop=False))
    assert not runs_compiled_loop(model(jit_compile=False))
    assert not runs_compiled_loop(model(jit_compile=True, steps_per_execution=1))
    assert not runs_compiled_loop(model(run_eagerly=True, jit_compile=False))
    conv = vaelib.VAE.conv(latent_dim=2, filters=(4, 8), hidden_units=(8,))
    conv.compile(optimizer="adam", jit_compile=True)  # XLA compiles convolutions in a loop badly: Keras's loop
    assert not runs_compiled_loop(conv)
    with pytest.raises(TypeError, match="compiled_loop must be True or False"):
        model(compiled_loop="yes")


def test_compiled_loop_choice_is_saved_with_the_model(tmp_path):
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    model.compile(optimizer="adam", compiled_loop=False)
    model.optimizer.build(model.trainable_variables)  # saved with its slots, as load_model rebuilds them
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.compiled_loop is False and not runs_compiled_loop(loaded)

"""The run engine's randomness: a stream that can start at any step, noise drawn from the step count."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vaelib
from vaelib.data import make_stream, steps_per_epoch


def _images(n=25, seed=0):
    return np.random.default_rng(seed).random((n, 4, 4)).astype(np.float32)


def test_a_stream_started_at_step_t_yields_what_the_whole_stream_yields_from_t():
    x = _images()
    whole = [b.numpy() for b in make_stream(x, "bernoulli", 10, seed=3).take(14)]
    for start in (1, 3, 5, 11):
        later = [b.numpy() for b in make_stream(x, "bernoulli", 10, seed=3, start_step=start).take(14 - start)]
        for a, b in zip(whole[start:], later, strict=True):
            np.testing.assert_array_equal(a, b)


def test_every_pass_of_the_stream_is_a_permutation_in_a_new_order():
    x = _images()
    steps = steps_per_epoch(len(x), 10)
    assert steps == 3
    batches = [b.numpy() for b in make_stream(x, "bernoulli", 10, binarize=None, seed=1).take(3 * steps)]
    assert [len(b) for b in batches[:steps]] == [10, 10, 5]  # the last batch of a pass is smaller
    passes = [np.concatenate(batches[i * steps : (i + 1) * steps]) for i in range(3)]
    key = lambda images: sorted(map(bytes, images))  # noqa: E731
    assert all(key(p) == key(x) for p in passes)  # each pass holds every image once
    assert not np.array_equal(passes[0], passes[1]) and not np.array_equal(passes[1], passes[2])


def test_dynamic_binarisation_of_the_stream_is_fresh_every_pass_and_fixed_by_the_seed():
    x = np.full((6, 4, 4), 0.5, np.float32)
    first, second = (b.numpy() for b in make_stream(x, "bernoulli", 6, seed=2).take(2))
    assert set(np.unique(first)) <= {0.0, 1.0} and not np.array_equal(first, second)
    again = next(iter(make_stream(x, "bernoulli", 6, seed=2))).numpy()
    np.testing.assert_array_equal(first, again)
    other = next(iter(make_stream(x, "bernoulli", 6, seed=5))).numpy()
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "options", [{"batch_size": 0}, {"binarize": "otsu"}, {"seed": -1}, {"seed": 2**31}, {"start_step": -1}]
)
def test_stream_options_are_checked(options):
    with pytest.raises((ValueError, TypeError)):
        make_stream(_images(), "bernoulli", **options)


def _model(seed=None):
    keras.utils.set_random_seed(0)
    model = vaelib.VAE.mlp(data_shape=(4, 4), latent_dim=2, hidden_units=(8,))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), seed=seed)
    return model


def test_noise_comes_from_the_seed_and_the_step_count():
    x = (_images(16) > 0.5).astype(np.float32)
    a, b, c = _model(seed=7), _model(seed=7), _model(seed=8)
    for model in (a, b, c):
        model.fit(x, batch_size=8, epochs=2, verbose=0, shuffle=False)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)  # the same seed: the same noise, the same weights
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))
    first = a.step_seed(0).numpy()
    a.optimizer.iterations.assign_add(1)
    assert not np.array_equal(first, a.step_seed(0).numpy())  # a new step, new noise
    assert not np.array_equal(a.step_seed(0).numpy(), a.step_seed(1).numpy())  # training and evaluation differ
    assert _model().step_seed(0) is None  # no seed: TensorFlow's global random state
    # the stream is (seed, stream) folded with the step count: runs saved earlier resume on the same noise
    step = tf.cast(a.optimizer.iterations, tf.int64)
    folded = tf.random.experimental.stateless_fold_in(tf.constant([7, 1], tf.int64), step)
    np.testing.assert_array_equal(a.step_seed(1).numpy(), tf.cast(folded % 2**31, tf.int32).numpy())
    with pytest.raises(ValueError, match="seed"):
        _model(seed=-1)
    with pytest.raises(TypeError, match="seed"):
        _model(seed=1.5)


def test_train_resumed_with_another_initialisation_ends_as_the_uninterrupted_run(tmp_path):
    x = (_images(60, seed=4) > 0.5).astype(np.float32)  # 60 images, M = 25: 3 steps per epoch, the last of 10
    whole = vaelib.train(_model(), x, 5, tmp_path / "whole", verbose=0, batch_size=25, binarize=None, seed=2)
    vaelib.train(_model(), x, 2, tmp_path / "cut", verbose=0, batch_size=25, binarize=None, seed=2)
    keras.utils.set_random_seed(99)  # the resumed session builds different initial weights: they must be replaced
    fresh = vaelib.VAE.mlp(data_shape=(4, 4), latent_dim=2, hidden_units=(8,))
    fresh.compile(optimizer=keras.optimizers.Adam(1e-2))
    cut = vaelib.train(fresh, x, 5, tmp_path / "cut", verbose=0, batch_size=25, binarize=None, seed=2)
    assert int(fresh.optimizer.iterations) == 5 * 3  # every epoch is 3 steps, none run past its end
    for got, want in zip(
        fresh.get_weights(), keras.models.load_model(tmp_path / "whole" / "model.keras").get_weights()
    ):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    for key in whole:
        np.testing.assert_allclose(cut[key], whole[key], rtol=0, atol=1e-5)


def test_a_dataset_is_checked_by_its_first_batch(binary_batch):
    import tensorflow as tf

    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    model.compile()
    bad = binary_batch.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="first batch: .*NaN"):
        model.fit(tf.data.Dataset.from_tensor_slices(bad).batch(4), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"first batch: .*\[0, 1\]"):
        model.fit(tf.data.Dataset.from_tensor_slices(binary_batch * 255).batch(4), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="empty"):
        model.fit(tf.data.Dataset.from_tensor_slices(binary_batch).take(0).batch(4), epochs=1, verbose=0)


def test_a_run_with_compiles_default_optimizer_resumes_as_the_uninterrupted_run(tmp_path):
    """The default keeps a moving average of the weights: its checkpoints hold it, and the run ends on it."""
    x = (_images(60, seed=4) > 0.5).astype(np.float32)

    def model():
        keras.utils.set_random_seed(0)
        built = vaelib.VAE.mlp(data_shape=(4, 4), latent_dim=2, hidden_units=(8,))
        built.compile()
        return built

    whole_model, cut_model = model(), model()
    vaelib.train(whole_model, x, 4, tmp_path / "whole", verbose=0, batch_size=25, binarize=None, seed=2)
    vaelib.train(model(), x, 2, tmp_path / "cut", verbose=0, batch_size=25, binarize=None, seed=2)
    vaelib.train(cut_model, x, 4, tmp_path / "cut", verbose=0, batch_size=25, binarize=None, seed=2)
    assert cut_model.optimizer.use_ema and int(cut_model.optimizer.iterations) == 4 * 3
    for got, want in zip(cut_model.get_weights(), whole_model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    averages = [v.numpy() for v in whole_model.optimizer._model_variables_moving_average]
    for average, weight in zip(averages, whole_model.trainable_weights, strict=True):
        np.testing.assert_array_equal(average, weight.numpy())  # the run ends on the average

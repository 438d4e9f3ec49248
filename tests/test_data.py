"""Finding MNIST, binarising it, and the tf.data pipeline."""

import os
import shutil

import keras
import numpy as np
import pytest

import vaelib
from vaelib.data import DATA_ENV


def test_mnist_is_the_canonical_data_set(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert np.issubdtype(y_train.dtype, np.integer)
    # Published checks of canonical MNIST (mean 33.3184 of 0..255, label counts, first labels)
    assert x_train.mean() * 255 == pytest.approx(33.3184, abs=1e-3)
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def _no_download(monkeypatch, tmp_path):
    (tmp_path / "home").mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)


def _shared_mnist() -> str:
    source = os.environ.get(DATA_ENV)
    if not source:
        pytest.skip(f"needs {DATA_ENV} pointing at a folder with mnist.npz")
    return os.path.join(source, "mnist.npz")


def test_data_dir_argument_is_used_first(tmp_path, monkeypatch):
    shutil.copy(_shared_mnist(), tmp_path / "mnist.npz")
    _no_download(monkeypatch, tmp_path)
    (x_train, _), _ = vaelib.load_mnist(tmp_path)
    assert x_train.shape == (60000, 28, 28)


def test_keras_cache_is_found_where_keras_puts_it(tmp_path, monkeypatch):
    source = _shared_mnist()
    _no_download(monkeypatch, tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    (tmp_path / "keras_home" / "datasets").mkdir(parents=True)
    shutil.copy(source, tmp_path / "keras_home" / "datasets" / "mnist.npz")
    (x_train, _), _ = vaelib.load_mnist()
    assert x_train.shape == (60000, 28, 28)


def test_a_changed_pixel_is_an_error_that_names_the_file(tmp_path, monkeypatch):
    with np.load(_shared_mnist()) as f:
        arrays = {key: f[key].copy() for key in f.files}
    _no_download(monkeypatch, tmp_path)
    arrays["x_test"][123, 14, 14] ^= 1  # one pixel of one test image, by one grey level
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(ValueError, match=r"mnist\.npz is not the canonical MNIST.*delete it"):
        vaelib.load_mnist(tmp_path)
    arrays["x_test"][123, 14, 14] ^= 1  # restored: the same arrays in a new file are accepted
    np.savez(tmp_path / "mnist.npz", **arrays)
    assert vaelib.load_mnist(tmp_path)[1][0].shape == (10000, 28, 28)


def test_missing_file_offline_says_how_to_fix_it(tmp_path, monkeypatch):
    _no_download(monkeypatch, tmp_path)
    with pytest.raises(FileNotFoundError, match=DATA_ENV):
        vaelib.load_mnist(tmp_path / "nowhere")


def test_corrupt_file_is_reported(tmp_path, monkeypatch):
    _no_download(monkeypatch, tmp_path)
    (tmp_path / "mnist.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable MNIST file"):
        vaelib.load_mnist(tmp_path)
    np.savez(tmp_path / "whole.npz", x_train=np.zeros((5, 28, 28)))
    (tmp_path / "mnist.npz").write_bytes((tmp_path / "whole.npz").read_bytes()[:500])  # a download cut short
    with pytest.raises(ValueError, match="not a readable MNIST file"):
        vaelib.load_mnist(tmp_path)
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((5, 28, 28)), y_train=np.zeros(5),
             x_test=np.zeros((5, 28, 28)), y_test=np.zeros(5))  # fmt: skip
    with pytest.raises(ValueError, match="expected"):
        vaelib.load_mnist(tmp_path)


def test_dynamic_binarisation_draws_afresh_every_epoch():
    x = np.random.default_rng(0).random((2000, 28, 28)).astype(np.float32)
    ds = vaelib.make_dataset(x, "bernoulli", batch_size=500, shuffle=False, seed=1)
    first, second = (np.concatenate([b.numpy() for b in ds]) for _ in range(2))
    assert set(np.unique(first)) == {0.0, 1.0}
    assert (first != second).mean() > 0.2  # pixels with p in (0, 1) flip between epochs
    # E[x_b] = x: the mean binary value matches the mean grey level to ~5 standard errors
    stderr = np.sqrt(0.25 / first.size)
    assert abs(first.mean() - x.mean()) < 5 * stderr


def test_fixed_binarisation_is_reproducible():
    x = np.random.default_rng(0).random((10, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(vaelib.fixed_binarize(x, 3), vaelib.fixed_binarize(x, 3))
    assert (vaelib.fixed_binarize(x, 3) != vaelib.fixed_binarize(x, 4)).any()
    ds = vaelib.make_dataset(x, "bernoulli", batch_size=4, binarize="fixed", shuffle=False, seed=3)
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in ds]), vaelib.fixed_binarize(x, 3))


def test_pipeline_bad_input():
    with pytest.raises(TypeError, match="255"):
        vaelib.make_dataset(np.zeros((4, 28, 28), np.uint8), "bernoulli")
    with pytest.raises(ValueError, match="non-empty"):
        vaelib.make_dataset(np.zeros((0, 28, 28), np.float32), "bernoulli")
    with pytest.raises(ValueError, match="batch_size"):
        vaelib.make_dataset(np.zeros((4, 28, 28), np.float32), "bernoulli", batch_size=0)
    with pytest.raises(ValueError, match="binarize"):
        vaelib.make_dataset(np.zeros((4, 28, 28), np.float32), "bernoulli", binarize="otsu")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vaelib.fixed_binarize(np.full((2, 2), 3.0))


def test_download_goes_through_keras_checked_download_into_its_cache(tmp_path, monkeypatch):
    source = _shared_mnist()
    _no_download(monkeypatch, tmp_path)
    calls = []

    def fake_get_file(fname, origin, file_hash=None):  # what keras.utils.get_file returns: the cached path
        calls.append((fname, origin, file_hash))
        target = tmp_path / "downloaded" / fname
        target.parent.mkdir()
        shutil.copy(source, target)
        return str(target)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    (x_train, _), _ = vaelib.load_mnist(tmp_path / "empty")
    assert x_train.shape == (60000, 28, 28)
    assert calls == [("mnist.npz", vaelib.data.KERAS_MNIST_URL, vaelib.data.KERAS_MNIST_SHA256)]


def test_a_stream_with_index_names_each_batch_s_rows():
    x = np.random.default_rng(0).random((25, 4, 4)).astype(np.float32)
    plain = [b.numpy() for b in vaelib.make_stream(x, "bernoulli", 10, binarize=None, seed=3).take(5)]
    indexed = list(vaelib.make_stream(x, "bernoulli", 10, binarize=None, seed=3, with_index=True).take(5))
    for batch, (same, index) in zip(plain, indexed):
        np.testing.assert_array_equal(batch, same.numpy())  # the same batches, in the same order
        np.testing.assert_array_equal(same.numpy(), x[index.numpy()])  # and the index says where they are
    assert sorted(np.concatenate([i.numpy() for _, i in indexed[:3]]).tolist()) == list(range(25))  # a pass

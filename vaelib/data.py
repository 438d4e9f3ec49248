"""MNIST: finding the file, binarising it, and feeding it to training as a ``tf.data`` pipeline.

Where :func:`vaelib.load_mnist` looks, in order:

1. the ``data_dir`` argument;
2. the ``VAELIB_DATA`` environment variable (a folder holding ``mnist.npz``), for offline machines;
3. the Keras cache, ``datasets/mnist.npz`` in the folder Keras uses (``KERAS_HOME``, else ``~/.keras``,
   else ``/tmp/.keras`` where the home folder is not writable);
4. a download through ``keras.utils.get_file`` from Keras's own source (needs internet), into that cache.

Whichever file is found is checked: its four arrays must have the SHA-256 of canonical MNIST
(``vaelib.data.MNIST_SHA256``), or the file itself the SHA-256 of Keras's download. A changed pixel is an error
that names the file and what to do, not a silently different data set.

The pipelines prepare data for a model: :func:`vaelib.make_dataset` and :func:`vaelib.make_stream` take the
model (or its likelihood, :mod:`vaelib.likelihoods`), check that the data lie in the likelihood's support, and binarise
them only for a Bernoulli likelihood, by default dynamically (``binarize="default"`` follows the likelihood;
asking another likelihood for binarised data is an error).

MNIST has grey levels; the Bernoulli decoder wants binary pixels. *Dynamic* binarisation draws
:math:`x_b \\sim \\operatorname{Bernoulli}(x)` afresh every epoch (as in Burda et al. 2016), a
regulariser and an honest binary data set; *fixed* binarisation draws once with a fixed seed, so
evaluation numbers are reproducible.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from vaelib import likelihoods
from vaelib._checks import check_positive_int, check_seed, check_values, stateless_seed

__all__ = [
    "load_mnist",
    "dynamic_binarize",
    "fixed_binarize",
    "make_dataset",
    "make_stream",
    "steps_per_epoch",
    "check_stream_options",
    "DATA_ENV",
]

DATA_ENV = "VAELIB_DATA"
MNIST_FILE = "mnist.npz"
_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}
#: SHA-256 of the bytes of x_train, y_train, x_test and y_test (uint8, C order), one after the other
MNIST_SHA256 = "06b0d1f124c4e5fa796686ade41a9b778edacc8622f2195a352ef479ad44fc16"
#: SHA-256 of the file keras.datasets.mnist downloads, and where from
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
KERAS_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
_verified: set[tuple[str, int, int]] = set()  # (path, size, mtime) of files already checked

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _keras_datasets_dir() -> Path:
    """The folder where Keras keeps downloaded data sets, found the way Keras finds it."""
    if os.environ.get("KERAS_HOME"):
        base = Path(os.environ["KERAS_HOME"]).expanduser()
    else:
        home = Path.home()
        base = (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"
    if not os.access(base, os.W_OK):  # as keras.utils.get_file does
        base = Path("/tmp") / ".keras"
    return base / "datasets"


def _candidates(data_dir: str | os.PathLike | None) -> list[Path]:
    places = []
    if data_dir is not None:
        places.append(Path(data_dir))
    if os.environ.get(DATA_ENV):
        places.append(Path(os.environ[DATA_ENV]))
    places.append(_keras_datasets_dir())
    return [p if p.suffix == ".npz" else p / MNIST_FILE for p in places]


def _sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Raise ValueError unless the arrays are canonical MNIST (or the file is Keras's download)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _verified:
        return
    digest = hashlib.sha256()
    for name in _SHAPES:
        array = arrays[name]
        digest.update(np.ascontiguousarray(array).tobytes() if array.dtype == np.uint8 else b"not uint8")
    if digest.hexdigest() != MNIST_SHA256 and _sha256_of_file(path) != KERAS_MNIST_SHA256:
        raise ValueError(
            f"{path} is not the canonical MNIST: the SHA-256 of its arrays is {digest.hexdigest()}, expected "
            f"{MNIST_SHA256} (uint8 arrays in the keras.datasets layout). The file is damaged or was changed: "
            f"delete it and let vaelib download a fresh copy, or point {DATA_ENV} at a good copy of {MNIST_FILE}."
        )
    _verified.add(key)


def _download() -> Path:
    """Download mnist.npz into the Keras cache with Keras's own checked download; return its path."""
    import keras

    return Path(keras.utils.get_file(MNIST_FILE, KERAS_MNIST_URL, file_hash=KERAS_MNIST_SHA256))


def _read(path: Path) -> Arrays:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in _SHAPES}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{path} is not a readable MNIST file (expected an .npz with arrays {', '.join(_SHAPES)}): {err}"
        ) from err
    for key, shape in _SHAPES.items():
        if arrays[key].shape != shape:
            raise ValueError(f"{path}: {key} has shape {arrays[key].shape}, expected {shape}")
    _verify(path, arrays)
    x_train = arrays["x_train"].astype(np.float32) / 255.0
    x_test = arrays["x_test"].astype(np.float32) / 255.0
    return (x_train, arrays["y_train"].astype(np.int64)), (x_test, arrays["y_test"].astype(np.int64))


def load_mnist(data_dir: str | os.PathLike | None = None) -> Arrays:
    """Load MNIST as ``((x_train, y_train), (x_test, y_test))``.

    Images are float32 grey levels in [0, 1] of shape ``(N, 28, 28)`` (N = 60,000 and 10,000), labels
    int64 digits. ``data_dir`` may be a folder holding ``mnist.npz`` or the file itself.

    Raises:
        FileNotFoundError: no file was found and the download failed (e.g. offline); the message says
            how to point ``VAELIB_DATA`` at a copy.
        ValueError: a file was found but is not MNIST in the Keras layout, or not the canonical MNIST
            (its SHA-256 differs); the message names the file and what to do.
    """
    tried = _candidates(data_dir)
    for path in tried:
        if path.is_file():
            return _read(path)
    try:
        downloaded = _download()
    except Exception as err:  # any download failure: no network, proxy, certificate, ...
        places = "\n  ".join(str(p.absolute()) for p in tried)  # a relative VAELIB_DATA: where it led
        raise FileNotFoundError(
            f"MNIST not found. Looked in:\n  {places}\nand the download through keras failed ({err}).\n"
            f"Offline, copy mnist.npz (the keras.datasets layout) into a folder and set "
            f"{DATA_ENV}=/that/folder, or pass load_mnist(data_dir=...)."
        ) from err
    return _read(downloaded)


def dynamic_binarize(x: Any, seed: int | tf.Tensor | None = None) -> tf.Tensor:
    r"""A fresh binary draw :math:`x_b \sim \operatorname{Bernoulli}(x)` of every pixel (float32 0/1 tensor).

    ``x`` holds probabilities, values in [0, 1] (a ``ValueError`` naming the range found otherwise, checked
    when run eagerly). ``seed``: ``None`` draws fresh randomness; an int or a shape-``[2]`` integer tensor
    makes the draw reproducible (as for every seed of vaelib).
    """
    x = tf.convert_to_tensor(x, dtype=tf.float32)
    if tf.executing_eagerly():
        _check_probabilities(x.numpy(), "dynamic_binarize")
    return _binarized(x, seed)


def _check_probabilities(values: np.ndarray, function: str) -> None:
    check_values(values, name=f"{function}'s x")
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        raise ValueError(
            f"{function} draws binary values with probabilities x, which must lie in [0, 1]; got values in "
            f"[{values.min():g}, {values.max():g}]. Scale images into [0, 1] (images / 255); binarise only data for "
            "a Bernoulli likelihood."
        )


def _binarized(x: tf.Tensor, seed: int | tf.Tensor | None) -> tf.Tensor:
    if seed is None:
        u = tf.random.uniform(tf.shape(x))
    else:
        u = tf.random.stateless_uniform(tf.shape(x), seed=stateless_seed(seed))
    return tf.cast(u < x, tf.float32)


def fixed_binarize(x: np.ndarray, seed: int = 0) -> np.ndarray:
    r"""One fixed draw :math:`x_b \sim \operatorname{Bernoulli}(x)`: the same output for the same ``x`` and seed.

    Used for evaluation so test-set numbers are reproducible; ``seed`` is an int (default 0, the
    binarisation every number of the book is measured on). Returns a NumPy array.
    """
    seed = check_seed(seed)
    x = np.asarray(x, dtype=np.float32)
    _check_probabilities(x, "fixed_binarize")
    u = np.random.default_rng(seed).random(x.shape, dtype=np.float32)
    return (u < x).astype(np.float32)


def _likelihood(model: Any) -> likelihoods.Likelihood:
    """The likelihood of ``model`` (a model with one, a likelihood, or a likelihood's name)."""
    if isinstance(model, (str, likelihoods.Likelihood)):
        return likelihoods.get(model)
    found = getattr(model, "likelihood", None)
    if isinstance(found, likelihoods.Likelihood):
        return found
    raise TypeError(
        "model must be a vaelib model, a vaelib.likelihoods.Likelihood or a likelihood's name, "
        f"got {type(model).__name__}"
    )


def _prepared(x: Any, likelihood: likelihoods.Likelihood, binarize: str | None, seed: int) -> np.ndarray:
    """``x`` as float32 data for ``likelihood``, fixed-binarised if asked, or a clear error."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be floating point data (e.g. images / 255.), got dtype {x.dtype}")
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty batch of shape (N, ...), got shape {x.shape}")
    x = x.astype(np.float32, copy=False)
    check_values(x, likelihood)
    return fixed_binarize(x, seed) if binarize == "fixed" else x


def make_dataset(
    x: np.ndarray,
    model: Any,
    batch_size: int = 100,
    binarize: str | None = "default",
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """A ``tf.data`` pipeline of data batches for ``model.fit``: shuffle, batch, binarise, prefetch.

    Args:
        x: data, shape ``(N, ...)``, float, within the likelihood's support.
        model: the model the data are for, or its likelihood (or the likelihood's name, e.g. ``"bernoulli"``).
        batch_size: :math:`M`.
        binarize: ``"default"``: what the likelihood asks for (dynamic for a Bernoulli, none otherwise);
            for a Bernoulli also ``"dynamic"`` (a new draw every epoch), ``"fixed"`` (one draw, made here,
            with ``seed``) or ``None`` (grey levels as they are).
        shuffle: reshuffle every epoch.
        seed: an int: makes the shuffling and the binarisation reproducible; every epoch still differs.
        drop_remainder: drop the last, smaller batch.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    likelihood = _likelihood(model)
    binarize = likelihood.check_binarization(binarize)
    seed = check_seed(seed)
    x = _prepared(x, likelihood, binarize, seed)
    ds = tf.data.Dataset.from_tensor_slices(x)
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if binarize == "dynamic":
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2, drop_remainder=True)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda batch, s: _binarized(batch, tf.cast(s % (2**31), tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    r"""Minibatches in one pass over ``num_examples`` examples, the last possibly smaller: :math:`\lceil N/M \rceil`."""
    num_examples = check_positive_int(num_examples, "num_examples")
    return -(-num_examples // check_positive_int(batch_size, "batch_size"))


def check_stream_options(
    model: Any, batch_size: int, binarize: str | None, seed: int
) -> tuple[likelihoods.Likelihood, int, str | None, int]:
    """The options of :func:`vaelib.make_stream`, checked (``binarize`` resolved), or an error naming the bad one."""
    likelihood = _likelihood(model)
    binarize = likelihood.check_binarization(binarize)
    return likelihood, check_positive_int(batch_size, "batch_size"), binarize, check_seed(seed)


def make_stream(
    x: np.ndarray,
    model: Any,
    batch_size: int = 100,
    binarize: str | None = "default",
    seed: int = 0,
    start_step: int = 0,
    with_index: bool = False,
) -> tf.data.Dataset:
    r"""An endless ``tf.data`` stream of minibatches, epoch after epoch, that can start at any step.

    Pass :math:`e = 0, 1, \ldots` is a permutation of ``x`` cut into :math:`\lceil N/M \rceil`
    minibatches; with ``binarize="dynamic"`` step :math:`t` binarises its minibatch afresh. The
    permutation of pass :math:`e` is drawn from the stateless seed ``(seed, e)`` and the binarisation of
    step :math:`t` from ``(seed, t)``: every batch is a function of ``seed`` and its step number alone,
    so a stream started at ``start_step`` yields exactly what an uninterrupted stream yields from that
    step on. That is what lets :func:`vaelib.train` resume a killed run with the data order it would have
    had. (:func:`vaelib.make_dataset` draws from TensorFlow's random state instead, which no checkpoint restores.)
    Use with ``fit(..., steps_per_epoch=steps_per_epoch(len(x), batch_size))``.

    Args:
        x: data, shape ``(N, ...)``, float, within the likelihood's support.
        model: the model the data are for, or its likelihood (or its name), as for :func:`vaelib.make_dataset`.
        batch_size: :math:`M`.
        binarize: as for :func:`vaelib.make_dataset`: ``"default"``, or for a Bernoulli ``"dynamic"``, ``"fixed"``
            (one draw with ``seed``, made here) or ``None``.
        seed: an int in :math:`[0, 2^{31})`.
        start_step: the number of the first minibatch (0 for a new run).
        with_index: yield ``(batch, index)``, the batch's positions in ``x`` too (for methods that keep a
            state per data point, such as Monte Carlo EM's chains).
    """
    likelihood, batch_size, binarize, seed = check_stream_options(model, batch_size, binarize, seed)
    if isinstance(start_step, bool) or not isinstance(start_step, (int, np.integer)) or start_step < 0:
        raise ValueError(f"start_step must be an int >= 0, got {start_step!r}")
    x = _prepared(x, likelihood, binarize, seed)
    images = tf.convert_to_tensor(x)
    n, steps = len(x), steps_per_epoch(len(x), batch_size)
    order_key = tf.constant([int(seed), 0], tf.int64)
    binarize_key = tf.constant([int(seed), 1], tf.int64)

    def one_pass(epoch: tf.Tensor) -> tf.data.Dataset:
        key = tf.random.experimental.stateless_fold_in(order_key, epoch)
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=key)
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        return batches.enumerate().map(lambda b, index: (epoch * steps + b, index))

    def load(step: tf.Tensor, index: tf.Tensor) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
        batch = tf.gather(images, index)
        if binarize == "dynamic":
            key = tf.random.experimental.stateless_fold_in(binarize_key, step)
            batch = _binarized(batch, tf.cast(key % (2**31), tf.int32))
        return (batch, index) if with_index else batch

    first_epoch, skip = divmod(int(start_step), steps)
    ds = tf.data.Dataset.range(first_epoch, 2**62).flat_map(one_pass).skip(skip)
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

r"""Training and evaluation speed of vaelib against hand-written references, side by side in one process.

Cases (examples per second over whole epochs of binarised MNIST, after one warm-up epoch; the timed
epochs alternate between vaelib and its reference, and the ratio of each pair of neighbouring epochs is
kept to show the spread):

- ``mlp``: vaelib's paper model (784-500-20 tanh, Bernoulli decoder, closed-form KL, Adam, M = 100)
  trained with ``model.fit``, against a hand-written TensorFlow ``tf.function`` step of the same model
  (plain variables, :math:`-\mathcal{L}_B` written out, Adam written out).
- ``mlp_profile``: where a step of the MLP spends its time, with XLA and without, for vaelib's step and
  the plain one: the matrix products alone (same shapes), the element-wise work, the Adam update, and
  what ``fit`` adds (the loop, Python, the input pipeline), with vaelib's compiled loop
  (:mod:`vaelib.compiled_loop`), with Keras's own loop, and on batches made in advance; and the floor:
  the step's FLOPs at the machine's large-sgemm rate, which bounds how much faster than the plain step any step can be.
- ``conv``: ``vaelib.VAE.conv`` trained with ``fit``, against a Keras-example-style conv VAE of the same
  architecture (a ``Sampling`` layer and a custom ``train_step``), also trained with ``fit``.
- ``conv_xla``: vaelib's conv model with its default compilation against the same with XLA on (the
  reason XLA is off by default for convolutions).
- ``conv_profile``: where the conv step's time goes. Both conv models are profiled for a few steps;
  the share of kernel time spent in convolutions (forward, and both backward passes) bounds what any
  change outside the convolutions can gain: with the same convolutions, vaelib's step cannot be
  shorter than the reference's convolution time, so its ratio cannot exceed 1 / (reference's share).
- ``same_results``: the test ELBO after 5 epochs with vaelib's fast settings and with them off, same seed.
- ``first_fit``: what a reader waits for first: building the 784-500-20 model, compiling it with its defaults
  and one ``fit`` of 256 images, each in a fresh process, against a plain Keras autoencoder of the same size
  (784-500-20-500-784, binary cross-entropy) doing the same, alternating.
- ``xla_break_even``: where ``compile(jit_compile="auto")`` starts paying for XLA: the extra time of XLA's
  first call (compiling) over the saving per step, both measured on the MLP in this process, in steps.
- ``log_likelihood``: ``vaelib.log_likelihood`` with k = 5000 on the 10,000 test images for a
  784-200-200-50 model, with its wall time and the peak resident memory of a process that does only that;
  then, in the same process, its decoding in slices against decoding each call's 20,000 draws at once
  (the reference), alternating on 200 images.

Run ``python benchmarks/train_speed.py --save`` (``--tiny`` for a seconds-long smoke run). It prints the
machine (CPU model, vector extensions, kind), one line per case with the ratio to its reference, and
with ``--save`` keeps the record (command, date, versions, hardware, results) as the last one of this
CPU's kind, ``benchmarks/results/avx2.json`` or ``avx512.json``; the README shows a table per kind.
Machines are noisy: compare numbers from one run only.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import vaelib  # noqa: E402
from vaelib._files import write_text_atomically  # noqa: E402
from vaelib._scripts import cpu_kind, cpu_model, vector_extensions, versions  # noqa: E402

BATCH = 100


# ----------------------------------------------------------------------------- data
def training_data(tiny: bool) -> np.ndarray:
    (x_train, _), _ = vaelib.load_mnist()
    return x_train[:2000] if tiny else x_train


def batches(x: np.ndarray) -> tuple[tf.data.Dataset, int]:
    """A fresh dynamically binarised pipeline of full batches of ``x``, and how many examples it yields."""
    return vaelib.make_dataset(x, "bernoulli", batch_size=BATCH, drop_remainder=True), (len(x) // BATCH) * BATCH


def side_by_side(reference_epoch, vaelib_epoch, epochs: int, examples: int) -> tuple[float, float, list[float]]:
    """Examples per second of two training loops over ``epochs`` whole epochs each, and the per-epoch ratios.

    Both get one untimed warm-up epoch (tracing, compilation); the timed epochs alternate between the
    two, so that a slow spell of a shared machine hits both alike. The rates are over all timed epochs;
    the ratios (vaelib over reference) are one per pair of neighbouring epochs, to show the spread.
    """
    reference_epoch()
    vaelib_epoch()
    seconds = [0.0, 0.0]
    ratios = []
    for _ in range(epochs):
        pair = []
        for i, run in enumerate((reference_epoch, vaelib_epoch)):
            start = time.perf_counter()
            run()
            pair.append(time.perf_counter() - start)
            seconds[i] += pair[-1]
        ratios.append(pair[0] / pair[1])
    return epochs * examples / seconds[0], epochs * examples / seconds[1], ratios


def fit_epoch(model: keras.Model, dataset: tf.data.Dataset):
    """One epoch of ``model.fit`` on ``dataset``, as a function of no arguments (to time or to profile)."""
    return lambda: model.fit(dataset, epochs=1, verbose=0, shuffle=False)


def compiled(model: keras.Model, **options) -> keras.Model:
    """``model``, compiled with Adam (and ``options``, e.g. ``jit_compile``)."""
    model.compile(optimizer="adam", **options)
    return model


def keras_case(case: str, reference_name: str, reference: keras.Model, model: keras.Model, x, epochs: int) -> dict:
    """Two compiled Keras models trained with ``fit`` side by side on the same batches of ``x``."""
    dataset, examples = batches(x)
    ref, ours, ratios = side_by_side(fit_epoch(reference, dataset), fit_epoch(model, dataset), epochs, examples)
    return speed_result(case, reference_name, ref, ours, ratios)


def speed_result(
    case: str, reference: str, reference_ex_s: float, vaelib_ex_s: float, epoch_ratios: list[float]
) -> dict:
    """A speed comparison's record: both rates (examples per second), vaelib's ratio, and the per-epoch ratios."""
    return {
        "case": case,
        "reference": reference,
        "reference_ex_s": reference_ex_s,
        "vaelib_ex_s": vaelib_ex_s,
        "ratio": vaelib_ex_s / reference_ex_s,
        "epoch_ratios": epoch_ratios,
    }


# ----------------------------------------------------------------------------- MLP reference
class PlainTFVAE(tf.Module):
    r"""The paper's MLP VAE as plain TensorFlow: variables, a ``tf.function`` step, Adam by hand.

    Loss per batch: the mean over examples of :math:`-\mathcal{L}_2 + \mathrm{KL}`, with
    :math:`\mathrm{KL} = -\tfrac12\sum_j (1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2)` and
    :math:`\log p(x|z)` the negated sigmoid cross-entropy of the decoder's logits.
    """

    def __init__(self, hidden: int = 500, latent: int = 20, learning_rate: float = 1e-3, seed: int = 0):
        super().__init__()
        init = keras.initializers.GlorotUniform(seed=seed)

        def dense(n_in, n_out):
            return tf.Variable(init((n_in, n_out))), tf.Variable(tf.zeros(n_out))

        self.params = [*dense(784, hidden), *dense(hidden, 2 * latent), *dense(latent, hidden), *dense(hidden, 784)]
        self.m = [tf.Variable(tf.zeros_like(p)) for p in self.params]
        self.v = [tf.Variable(tf.zeros_like(p)) for p in self.params]
        self.t = tf.Variable(0.0)
        self.lr, self.latent = learning_rate, latent

    def loss(self, x):
        w1, b1, w2, b2, w3, b3, w4, b4 = self.params
        x = tf.reshape(x, [-1, 784])
        mean, log_var = tf.split(tf.tanh(x @ w1 + b1) @ w2 + b2, 2, axis=-1)
        z = mean + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mean))
        logits = tf.tanh(z @ w3 + b3) @ w4 + b4
        reconstruction = -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), -1)
        kl = -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mean) - tf.exp(log_var), -1)
        return tf.reduce_mean(kl - reconstruction)

    @tf.function
    def step(self, x):
        with tf.GradientTape() as tape:
            loss = self.loss(x)
        grads = tape.gradient(loss, self.params)
        self.t.assign_add(1.0)
        b1, b2, eps = 0.9, 0.999, 1e-7
        lr = self.lr * tf.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m.assign(b1 * m + (1.0 - b1) * g)
            v.assign(b2 * v + (1.0 - b2) * tf.square(g))
            p.assign_sub(lr * m / (tf.sqrt(v) + eps))
        return loss


def mlp_case(x: np.ndarray, epochs: int) -> dict:
    dataset, examples = batches(x)

    reference = PlainTFVAE()

    def reference_epoch():
        for batch in dataset:
            reference.step(batch)

    keras.utils.set_random_seed(0)
    model = compiled(vaelib.VAE.mlp(), jit_compile=True)  # what "auto" picks for a long run
    ref, ours, ratios = side_by_side(reference_epoch, fit_epoch(model, dataset), epochs, examples)
    return speed_result("mlp", "plain TF tf.function step", ref, ours, ratios)


# ----------------------------------------------------------------------------- MLP profile
def step_matrix_products(x: tf.Tensor, kernels: list[tf.Variable], latent: int) -> tuple[tf.Tensor, ...]:
    """The matrix products of one training step of the MLP, and nothing else; returns the kernels' gradients.

    Forward: ``x W1``, ``h1 W2``, ``z W3``, ``h2 W4``. Backward: every kernel's gradient ``h^T delta`` and
    every layer's input gradient ``delta W^T`` except the first (the data need none) -- the products a
    step of either model computes, on operands of the same shapes.
    """
    w1, w2, w3, w4 = kernels
    x = tf.reshape(x, [-1, w1.shape[0]])
    h1 = x @ w1
    out = h1 @ w2
    z = out[:, :latent]
    h2 = z @ w3
    logits = h2 @ w4
    d_h2 = logits @ tf.transpose(w4)
    d_z = d_h2 @ tf.transpose(w3)
    d_out = tf.concat([d_z, d_z], axis=1)
    d_h1 = d_out @ tf.transpose(w2)
    return tf.transpose(x) @ d_h1, tf.transpose(h1) @ d_out, tf.transpose(z) @ d_h2, tf.transpose(h2) @ logits


def step_flops(hidden: int = 500, latent: int = 20, data: int = 784) -> int:
    """Floating-point operations of the step's matrix products (2 per multiply-add), per batch of ``BATCH``."""
    forward = data * hidden + hidden * 2 * latent + latent * hidden + hidden * data
    backward = 2 * forward - data * hidden  # weight gradients of every layer, input gradients of all but the first
    return 2 * BATCH * (forward + backward)


def sgemm_gflops(n: int = 1024, repeats: int = 20) -> float:
    """The machine's single-precision matrix-product rate on a large square product (best of ``repeats``)."""
    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    product = tf.function(lambda: a @ b)
    product()
    best = min(timed(product) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def timed(run) -> float:
    """Seconds one call of ``run()`` takes, up to the result being ready."""
    start = time.perf_counter()
    result = run()
    if result is not None:
        np.asarray(tf.nest.flatten(result)[0])
    return time.perf_counter() - start


def median_ms(runs: dict, calls: int, rounds: int) -> dict:
    """Median milliseconds per call of each function in ``runs``, over ``rounds`` rounds of ``calls`` calls.

    Each round runs every function in turn, so that a slow spell of the machine hits all of them alike.
    """
    for run in runs.values():
        run()
        run()
    samples: dict = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            samples[name].append(1e3 * sum(timed(run) for _ in range(calls)) / calls)
    return {name: float(np.median(ms)) for name, ms in samples.items()}


def mlp_profile_case(x: np.ndarray, rounds: int) -> dict:
    """Where one training step of the MLP spends its time, with XLA and without, for both models.

    Every part is timed on its own, on a fixed batch, as a compiled function: the step's matrix products
    alone (same shapes), the loss and its gradients, the optimizer update, the whole step. The
    differences give the element-wise work (loss and gradients less the products) and the Adam update
    (step less loss and gradients). ``fit`` over the input pipeline, per step, less the step itself, is
    what the loop, Python and the pipeline add: ``fit`` is timed over whole epochs of ``x`` with vaelib's
    compiled loop (the default), with Keras's own loop (``compiled_loop=False``) and with the compiled
    loop on the same batches made in advance (so without the pipeline's work beside the steps); the
    pipeline alone is timed too. The large square product gives the machine's matrix-product rate, so
    the products' floor (their FLOPs at that rate) says how much faster than the plain step any
    implementation could be.
    """
    # fit runs over whole epochs of the training set (below); the parts on its first batch
    epoch, examples = batches(x)
    batch = next(iter(epoch))
    keras.utils.set_random_seed(0)
    reference = PlainTFVAE()
    model = vaelib.VAE.mlp()
    model.compile(optimizer="adam", seed=0, jit_compile=True)
    kernels = [v for v in model.trainable_variables if len(v.shape) == 2]

    def reference_grads():
        with tf.GradientTape() as tape:
            loss = reference.loss(batch)
        return tape.gradient(loss, reference.params)

    def vaelib_grads():
        with tf.GradientTape() as tape:
            loss, _ = model._loss_and_terms(batch)
        return tape.gradient(loss, model.trainable_variables)

    fixed_grads = [tf.zeros_like(v) for v in model.trainable_variables]
    model.optimizer.build(model.trainable_variables)
    reference_step = PlainTFVAE.step.python_function

    parts = {}
    for xla in (False, True):
        compile_ = functools.partial(tf.function, jit_compile=xla)
        label = "xla" if xla else "no_xla"
        parts[f"products_{label}"] = compile_(lambda: step_matrix_products(batch, kernels, model.latent_dim))
        parts[f"reference_grads_{label}"] = compile_(reference_grads)
        parts[f"reference_step_{label}"] = compile_(lambda: reference_step(reference, batch))
        parts[f"vaelib_grads_{label}"] = compile_(vaelib_grads)
        parts[f"vaelib_adam_{label}"] = compile_(
            lambda: model.optimizer.apply_gradients(zip(fixed_grads, model.trainable_variables))
        )
        parts[f"vaelib_step_{label}"] = compile_(lambda: model.train_step(batch))
    ms = median_ms(parts, calls=20, rounds=rounds)

    # whole epochs: a call's batches are taken at its start, so an epoch's first call waits for a cold
    # pipeline, which short epochs would overweight
    steps = examples // BATCH
    fit_models = {}
    for loop in (True, False):
        fit_models[loop] = vaelib.VAE.mlp()
        fit_models[loop].compile(optimizer="adam", seed=0, compiled_loop=loop, jit_compile=True)
    made_in_advance = tf.data.Dataset.from_tensor_slices(np.stack([b.numpy() for b in epoch])).cache()
    pipeline = lambda: [None for _ in epoch]  # noqa: E731
    loops = median_ms(
        {
            "fit": lambda: fit_models[True].fit(epoch, epochs=1, verbose=0),
            "fit_keras_loop": lambda: fit_models[False].fit(epoch, epochs=1, verbose=0),
            "fit_made_in_advance": lambda: fit_models[True].fit(made_in_advance.prefetch(2), epochs=1, verbose=0),
            "pipeline": pipeline,
        },
        1,
        max(1, rounds // 3),
    )
    flops = step_flops()
    gflops = sgemm_gflops()
    return {
        "case": "mlp_profile",
        "ms_per_step": ms,
        "fit_ms_per_step": loops["fit"] / steps,
        "fit_keras_loop_ms_per_step": loops["fit_keras_loop"] / steps,
        "fit_made_in_advance_ms_per_step": loops["fit_made_in_advance"] / steps,
        "pipeline_ms_per_batch": loops["pipeline"] / steps,
        "step_gflop": flops / 1e9,
        "sgemm_gflops": gflops,
        "products_floor_ms": 1e3 * flops / (gflops * 1e9),
    }


def breakdown(r: dict) -> dict:
    """The profile as parts of a step (ms): products, element-wise work, Adam, loop and pipeline."""
    ms = r["ms_per_step"]
    rows = {}
    for label in ("no_xla", "xla"):
        for model in ("reference", "vaelib"):
            grads, step = ms[f"{model}_grads_{label}"], ms[f"{model}_step_{label}"]
            rows[f"{model}, {'XLA' if label == 'xla' else 'no XLA'}"] = {
                "products": ms[f"products_{label}"],
                "element-wise": grads - ms[f"products_{label}"],
                "optimizer": step - grads,
                "step": step,
            }
    return rows


# ----------------------------------------------------------------------------- conv reference
class Sampling(keras.layers.Layer):
    """z = mu + sigma * eps, as in the Keras VAE example."""

    def call(self, inputs):
        mean, log_var = inputs
        return mean + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mean))


class KerasExampleVAE(keras.Model):
    """A conv VAE written the way the Keras VAE example writes it: custom ``train_step``, ``fit``."""

    def __init__(self, latent: int = 2, **kwargs):
        super().__init__(**kwargs)
        inputs = keras.Input((28, 28, 1))
        h = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(inputs)
        h = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
        h = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(h))
        mean, log_var = keras.layers.Dense(latent)(h), keras.layers.Dense(latent)(h)
        self.encoder = keras.Model(inputs, [mean, log_var, Sampling()([mean, log_var])])
        z = keras.Input((latent,))
        h = keras.layers.Reshape((7, 7, 64))(keras.layers.Dense(7 * 7 * 64, activation="relu")(z))
        h = keras.layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(h)
        h = keras.layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(h)
        self.decoder = keras.Model(z, keras.layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(h))
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        data = tf.expand_dims(data, -1)
        with tf.GradientTape() as tape:
            mean, log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            rec_loss = tf.reduce_mean(
                tf.reduce_sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
            )
            kl = tf.reduce_mean(tf.reduce_sum(-0.5 * (1 + log_var - tf.square(mean) - tf.exp(log_var)), axis=1))
            loss = rec_loss + kl
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def conv_models() -> tuple[keras.Model, keras.Model]:
    """The Keras-example conv VAE and vaelib's conv model, both compiled, from seed 0."""
    keras.utils.set_random_seed(0)
    return compiled(KerasExampleVAE()), compiled(vaelib.VAE.conv())


def conv_case(x: np.ndarray, epochs: int) -> dict:
    return keras_case("conv", "Keras-example conv VAE", *conv_models(), x, epochs)


def conv_xla_case(x: np.ndarray, epochs: int) -> dict:
    """vaelib's conv model as compiled by default (no XLA) against the same model with XLA on."""
    keras.utils.set_random_seed(0)
    with_xla = compiled(vaelib.VAE.conv(), jit_compile=True)
    return keras_case("conv_xla", "the same with XLA", with_xla, compiled(vaelib.VAE.conv()), x, epochs)


# ----------------------------------------------------------------------------- conv profile
def kernel_times(train, steps: int) -> collections.Counter:
    """Seconds spent in each kind of TensorFlow kernel during ``train()``, summed over the executor's threads.

    Read from a ``tf.profiler`` trace: every kernel the executor runs is an event named
    ``<op name>:<kernel type>`` on a ``tf_Compute`` thread (``ExecutorState::Process`` events enclose them).
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        train()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    seconds: collections.Counter = collections.Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" in name and name != "ExecutorState::Process":
                    seconds[name.rsplit(":", 1)[1]] += event.duration_ps * 1e-12 / steps
    return seconds


def convolution_share(seconds: collections.Counter) -> float:
    """The fraction of kernel time in convolution kernels (``Conv2D``, ``Conv2DBackpropInput``/``Filter``)."""
    total = sum(seconds.values())
    return sum(s for kernel, s in seconds.items() if "Conv2D" in kernel) / total


def conv_profile_case(x: np.ndarray, steps: int) -> dict:
    dataset = vaelib.make_dataset(x[: steps * BATCH], "bernoulli", batch_size=BATCH, drop_remainder=True)
    reference, model = conv_models()
    out = {"case": "conv_profile", "steps": steps}
    for label, train in (("reference", fit_epoch(reference, dataset)), ("vaelib", fit_epoch(model, dataset))):
        train()  # trace and warm up outside the profile
        seconds = kernel_times(train, steps)
        out[f"{label}_kernel_ms_per_step"] = 1e3 * sum(seconds.values())
        out[f"{label}_convolution_share"] = convolution_share(seconds)
    out["ratio_ceiling"] = 1.0 / out["reference_convolution_share"]
    return out


# ----------------------------------------------------------------------------- same results
def same_results_case(x: np.ndarray, epochs: int) -> dict:
    """Test ELBO after ``epochs`` epochs with vaelib's fast defaults and with them switched off, same seed.

    XLA draws different random numbers than the default kernels, so the two runs differ by training
    noise, not by a bias: the difference should be small next to the spread of the bound itself.
    """
    (_, _), (x_test, _) = vaelib.load_mnist()
    x_test = vaelib.fixed_binarize(x_test[:2000])
    dataset, _ = batches(x)
    out = {"case": "same_results", "epochs": epochs}
    for label, options in (
        ("fast", {"jit_compile": True}),
        ("plain", {"jit_compile": False, "steps_per_execution": 1}),
    ):
        keras.utils.set_random_seed(0)
        model = vaelib.VAE.mlp()
        model.compile(optimizer="adam", **options)
        model.fit(dataset, epochs=epochs, verbose=0)
        out[f"{label}_test_elbo"] = float(np.mean(vaelib.elbo(model, x_test, seed=0)))
    return out


# ----------------------------------------------------------------------------- first fit
FIRST_FIT = """
import os, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
start = time.perf_counter()
import keras, numpy as np
import vaelib
imported = time.perf_counter()
x = (np.random.default_rng(0).random((256, 28, 28)) > 0.5).astype("float32")
keras.utils.set_random_seed(0)
if {plain}:
    layers = keras.layers
    model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Dense(500, "tanh"), layers.Dense(20),
                              layers.Dense(500, "tanh"), layers.Dense(784), layers.Reshape((28, 28))])
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x, x, batch_size=100, epochs=1, verbose=0)
else:
    model = vaelib.VAE.mlp()
    model.compile()
    model.fit(x, batch_size=100, epochs=1, verbose=0)
print(time.perf_counter() - imported)
"""


def first_fit_case(rounds: int) -> dict:
    """Seconds from a built, compiled model to the end of its first ``fit`` of 256 images, in fresh processes.

    Each round runs the plain Keras autoencoder and vaelib's model, one after the other, each in a new
    Python process (so that neither finds the other's traced functions); the time excludes the imports.
    """
    times: dict[str, list[float]] = {"plain": [], "vaelib": []}
    for _ in range(rounds):
        for label in times:
            code = FIRST_FIT.format(plain=label == "plain")
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            times[label].append(float(out.stdout.strip().splitlines()[-1]))
    plain, ours = (float(np.median(times[label])) for label in ("plain", "vaelib"))
    return {"case": "first_fit", "rounds": rounds, "plain_seconds": plain, "vaelib_seconds": ours,
            "seconds": times, "ratio": ours / plain}  # fmt: skip


def xla_break_even_case(x: np.ndarray, epochs: int) -> dict:
    """Steps after which XLA pays on the MLP: its first call's extra time over its saving per step.

    For XLA off and on, a fresh model's first ``fit`` of 20 steps (tracing, and compiling with XLA), then
    ``epochs`` whole epochs, of which the fastest gives the time per step.
    """
    dataset, examples = batches(x)
    out: dict = {"case": "xla_break_even", "epochs": epochs}
    for xla in (False, True):
        keras.utils.set_random_seed(0)
        model = compiled(vaelib.VAE.mlp(), jit_compile=xla)
        start = time.perf_counter()
        model.fit(dataset.take(20), epochs=1, verbose=0)
        first = time.perf_counter() - start
        per_step = []
        for _ in range(epochs):
            start = time.perf_counter()
            model.fit(dataset, epochs=1, verbose=0)
            per_step.append((time.perf_counter() - start) / (examples // BATCH))
        label = "xla" if xla else "no_xla"
        out[f"{label}_first_seconds"], out[f"{label}_ms_per_step"] = first, 1e3 * min(per_step)
    saving = out["no_xla_ms_per_step"] - out["xla_ms_per_step"]
    extra = out["xla_first_seconds"] - out["no_xla_first_seconds"]
    out["break_even_steps"] = 1e3 * extra / saving if saving > 0 else None
    out["xla_min_steps"] = vaelib.model.XLA_MIN_STEPS
    return out


# ----------------------------------------------------------------------------- log-likelihood
def log_likelihood_case(num_samples: int, num_images: int, compared_images: int) -> dict:
    """Run in a fresh process so that its peak memory is the evaluation's own.

    After the timed evaluation (and the reading of its peak memory), the same process times the
    reference: ``log_likelihood`` decoding each call's draws at once (one slice of up to 20,000 decodes,
    as before slicing) against the default slices, alternating, on the first ``compared_images`` images,
    same seed, so that both compute the same numbers.
    """
    code = f"""
import json, os, resource, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, numpy as np, vaelib
from vaelib import evaluation
keras.utils.set_random_seed(0)
(_, _), (x, _) = vaelib.load_mnist()
x = vaelib.fixed_binarize(x[:{num_images}])
m = vaelib.VAE.mlp(latent_dim=50, hidden_units=(200, 200))
t = time.perf_counter()
ll = vaelib.log_likelihood(m, x, num_samples={num_samples})
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
sliced, whole = evaluation.DECODES_PER_SLICE, evaluation.MAX_CHUNK
times, values = {{sliced: [], whole: []}}, {{}}
for _ in range(2):
    for decodes in times:
        evaluation.DECODES_PER_SLICE = decodes
        t = time.perf_counter()
        values[decodes] = vaelib.log_likelihood(m, x[:{compared_images}], num_samples={num_samples}, seed=0)
        times[decodes].append(time.perf_counter() - t)
print(json.dumps({{
    "seconds": seconds, "peak_rss_mb": peak, "mean_ll": float(ll.mean()),
    "compared_images": {compared_images}, "decodes_per_slice": sliced,
    "sliced_seconds": min(times[sliced]), "reference_seconds": min(times[whole]),
    "largest_difference": float(np.abs(values[sliced] - values[whole]).max()),
}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["ratio"] = result["reference_seconds"] / result["sliced_seconds"]
    return {"case": "log_likelihood", "k": num_samples, "images": num_images, **result}


# ----------------------------------------------------------------------------- report
RESULTS = Path(__file__).resolve().parent / "results"  # the last record of each CPU kind: results/<kind>.json
KIND_NAMES = {"avx2": "AVX2 (no AVX-512)", "avx512": "AVX-512", "other": "other CPUs"}


def summary(r: dict) -> str:
    """The printed lines of a case's result."""
    if "reference_ex_s" in r:
        spread = r.get("epoch_ratios") or [r["ratio"]]
        return (
            f"{r['case']:>5}: vaelib {r['vaelib_ex_s']:8.0f} ex/s, {r['reference']} {r['reference_ex_s']:8.0f} ex/s,"
            f" ratio {r['ratio']:.2f} (epoch pairs {min(spread):.2f}-{max(spread):.2f},"
            f" median {float(np.median(spread)):.2f})"
        )
    if r["case"] == "first_fit":
        return (
            f"first fit: vaelib {r['vaelib_seconds']:.2f} s, plain Keras autoencoder {r['plain_seconds']:.2f} s"
            f" (median of {r['rounds']} fresh processes each), ratio {r['ratio']:.2f} (goal: at most 2.5)"
        )
    if r["case"] == "xla_break_even":
        even = r["break_even_steps"]
        return (
            f"XLA on the MLP: first 20 steps {r['no_xla_first_seconds']:.1f} s without, {r['xla_first_seconds']:.1f} s"
            f" with; {r['no_xla_ms_per_step']:.2f} against {r['xla_ms_per_step']:.2f} ms a step; pays after"
            f" {'never' if even is None else f'{even:.0f}'} steps (jit_compile='auto' turns it on from"
            f" {r['xla_min_steps']})"
        )
    if r["case"] == "mlp_profile":
        lines = [
            "MLP profile, ms per step of 100 examples (median of alternating rounds):",
            f"  {'':22s} {'products':>9s} {'element-wise':>13s} {'optimizer':>10s} {'step':>7s}",
        ]
        for name, row in breakdown(r).items():
            lines.append(
                f"  {name:22s} {row['products']:9.2f} {row['element-wise']:13.2f} {row['optimizer']:10.2f}"
                f" {row['step']:7.2f}"
            )
        lines.append(
            f"  vaelib fit: {r['fit_ms_per_step']:.2f} ms per step (loop, Python and pipeline add"
            f" {r['fit_ms_per_step'] - r['ms_per_step']['vaelib_step_xla']:.2f}); the pipeline alone, iterated"
            f" from Python: {r['pipeline_ms_per_batch']:.2f} ms per batch"
        )
        if "fit_keras_loop_ms_per_step" in r:  # records before the compiled loop have neither
            lines.append(
                f"  fit with Keras's own loop: {r['fit_keras_loop_ms_per_step']:.2f} ms per step; with the compiled"
                f" loop on the same batches made in advance (no pipeline beside the steps):"
                f" {r['fit_made_in_advance_ms_per_step']:.2f}"
            )
        lines.append(
            f"  floor: the step's {r['step_gflop']:.2f} GFLOP of products at the machine's {r['sgemm_gflops']:.0f}"
            f" GFLOP/s (1024^2 sgemm) take {r['products_floor_ms']:.2f} ms, so no step can beat the plain one"
            f" by more than {physical_limit(r):.1f}x"
        )
        return "\n".join(lines)
    if r["case"] == "conv_profile":
        return (
            f"conv profile: convolutions take {r['reference_convolution_share']:.0%} of the reference's kernel time"
            f" and {r['vaelib_convolution_share']:.0%} of vaelib's ({r['reference_kernel_ms_per_step']:.1f} and"
            f" {r['vaelib_kernel_ms_per_step']:.1f} ms of kernels per step): with the same convolutions the conv"
            f" ratio cannot exceed {r['ratio_ceiling']:.2f}"
        )
    if r["case"] == "same_results":
        return (
            f"same results: test ELBO after {r['epochs']} epochs {r['fast_test_elbo']:.2f} nats with the fast"
            f" defaults, {r['plain_test_elbo']:.2f} without (jit off, one step per call)"
        )
    summary_line = (
        f"log_likelihood: k = {r['k']} on {r['images']} test images in {r['seconds']:.1f} s,"
        f" peak RSS {r['peak_rss_mb']:.0f} MB"
    )
    if "ratio" in r:  # records before the in-run reference have none
        summary_line += (
            f"; on {r['compared_images']} images, slices of {r['decodes_per_slice']:,} decodes"
            f" {r['sliced_seconds']:.1f} s,"
            f" all of a call's draws at once {r['reference_seconds']:.1f} s: ratio {r['ratio']:.2f}"
            f" (same numbers within {r['largest_difference']:.1e} nats)"
        )
    return summary_line


def physical_limit(profile: dict) -> float:
    """How many times faster than the plain (no-XLA) step a step made of nothing but its products could be."""
    return profile["ms_per_step"]["reference_step_no_xla"] / profile["products_floor_ms"]


def markdown_table(record: dict) -> str:
    """A README performance table, made from a results record (so the two cannot disagree)."""
    hardware, v = record["hardware"], record["versions"]
    extensions = ", ".join(hardware.get("vector_extensions") or ["not recorded"])
    rows = [
        f"**{KIND_NAMES[hardware['kind']]}**: {hardware['processor']} ({hardware['cpus']} cores; vector extensions:"
        f" {extensions}), {record['date']}, TensorFlow {v['tensorflow']}, Keras {v['keras']},"
        f" TFP {v['tensorflow_probability']}, vaelib {v['vaelib']}, by `{record['command']}`:",
        "",
        "| case | vaelib | reference | ratio |",
        "| --- | --- | --- | --- |",
    ]
    names = {
        "mlp": "MLP 784-500-20, `fit`",
        "conv": "conv (2 stride-2 convolutions each way), `fit`",
        "conv_xla": "conv, `fit`, without XLA (the default)",
    }
    for r in record["results"]:
        if r["case"] in names:
            rows.append(
                f"| {names[r['case']]} | {r['vaelib_ex_s']:,.0f} ex/s"
                f" | {r['reference']}: {r['reference_ex_s']:,.0f} ex/s | {r['ratio']:.2f} |"
            )
        elif r["case"] == "mlp_profile":
            ms = r["ms_per_step"]
            rows.append(
                f"| MLP: one step on a fixed batch, XLA (products {ms['products_xla']:.1f} ms) |"
                f" {ms['vaelib_step_xla']:.1f} ms | plain step without XLA: {ms['reference_step_no_xla']:.1f} ms |"
                f" {ms['reference_step_no_xla'] / ms['vaelib_step_xla']:.2f} |"
            )
            if "fit_keras_loop_ms_per_step" in r:
                rows.append(
                    f"| MLP: `fit`, ms per step, the compiled loop (on batches made in advance:"
                    f" {r['fit_made_in_advance_ms_per_step']:.1f} ms) | {r['fit_ms_per_step']:.1f} ms |"
                    f" Keras's own loop: {r['fit_keras_loop_ms_per_step']:.1f} ms |"
                    f" {r['fit_keras_loop_ms_per_step'] / r['fit_ms_per_step']:.2f} |"
                )
            rows.append(
                f"| MLP: a step of nothing but its products at the sgemm rate ({r['sgemm_gflops']:.0f} GFLOP/s) |"
                f" {r['products_floor_ms']:.1f} ms | plain step without XLA: {ms['reference_step_no_xla']:.1f} ms |"
                f" at most {physical_limit(r):.1f} |"
            )
        elif r["case"] == "first_fit":
            rows.append(
                f"| first `fit` of 256 images on a new 784-500-20 model, fresh process (median of {r['rounds']}) |"
                f" {r['vaelib_seconds']:.2f} s | plain Keras autoencoder: {r['plain_seconds']:.2f} s |"
                f" {r['ratio']:.2f} (goal at most 2.5) |"
            )
        elif r["case"] == "xla_break_even":
            even = r["break_even_steps"]
            rows.append(
                f"| MLP: steps after which XLA pays (its compilation over its saving per step) |"
                f" {r['xla_ms_per_step']:.2f} ms a step with XLA, first 20 steps {r['xla_first_seconds']:.1f} s |"
                f" without: {r['no_xla_ms_per_step']:.2f} ms, {r['no_xla_first_seconds']:.1f} s |"
                f" {'never' if even is None else f'{even:.0f} steps'} |"
            )
        elif r["case"] == "conv_profile":
            rows.append(
                f"| conv: the most any change outside the convolutions could give |"
                f" convolutions {r['vaelib_convolution_share']:.0%} of kernel time"
                f" | convolutions {r['reference_convolution_share']:.0%} of kernel time"
                f" | at most {r['ratio_ceiling']:.2f} |"
            )
        elif r["case"] == "log_likelihood":
            rows.append(
                f"| `log_likelihood`, k = {r['k']:,}, {r['images']:,} test images, 784-200-200-50 |"
                f" {r['seconds']:.0f} s, peak RSS {r['peak_rss_mb']:,.0f} MB | target: 300 s, 4,096 MB |"
                f" {300 / r['seconds']:.2f} |"
            )
            if "ratio" in r:
                rows.append(
                    f"| `log_likelihood`, the same on {r['compared_images']} images, decoding in slices of"
                    f" {r['decodes_per_slice']:,} | {r['sliced_seconds']:.1f} s | each call's 20,000 decodes at once:"
                    f" {r['reference_seconds']:.1f} s | {r['ratio']:.2f} |"
                )
    return "\n".join(rows)


def hardware() -> dict:
    """The machine a record was measured on: CPU model, its vector extensions and kind, cores."""
    extensions = vector_extensions()
    return {
        "machine": platform.machine(),
        "processor": cpu_model(),
        "vector_extensions": extensions,
        "kind": cpu_kind(extensions),
        "cpus": os.cpu_count(),
    }


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a smoke run: 2,000 images, one epoch, k = 10")
    parser.add_argument(
        "--epochs", type=int, default=6, help="timed epochs per case (after one warm-up; twice as many for the MLP)"
    )
    parser.add_argument(
        "--cases",
        default="first_fit,xla_break_even,mlp,mlp_profile,conv,conv_xla,conv_profile,same_results,log_likelihood",
        help="comma-separated cases to run",
    )
    parser.add_argument(
        "--save",
        action="store_true",
        help="keep the results as the last record of this CPU's kind, in benchmarks/results/<kind>.json",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here (instead of --save)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cases = args.cases.split(",")
    epochs = 1 if args.tiny else args.epochs
    tiny = args.tiny
    runs = {
        "first_fit": lambda: first_fit_case(1 if tiny else 5),
        "xla_break_even": lambda: xla_break_even_case(x, 1 if tiny else 3),
        "mlp": lambda: mlp_case(x, 2 * epochs),  # its epochs are short: twice as many, for a steadier ratio
        "mlp_profile": lambda: mlp_profile_case(x, 3 if tiny else 15),
        "conv": lambda: conv_case(x, epochs),
        "conv_xla": lambda: conv_xla_case(x, max(1, epochs // 2)),
        "conv_profile": lambda: conv_profile_case(x, 10 if tiny else 100),
        "same_results": lambda: same_results_case(x, 1 if tiny else 5),
        "log_likelihood": lambda: log_likelihood_case(10 if tiny else 5000, 200 if tiny else 10_000, 200),
    }
    unknown = sorted(set(cases) - set(runs))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; the cases are {', '.join(runs)}")
    machine = hardware()
    print(
        f"{machine['processor']}, {machine['cpus']} cores, {KIND_NAMES[machine['kind']]}:",
        *machine["vector_extensions"],
    )
    x = training_data(tiny)
    results = []
    for name, run in runs.items():
        if name in cases:
            results.append(run())
            print(summary(results[-1]), flush=True)
    out = RESULTS / f"{machine['kind']}.json" if args.save else args.out
    if out:
        write_record(out, machine, started, results, markdown_table)
    return 0


def write_record(out: Path, machine: dict, started: float, results: list, table: Callable, **settings) -> None:
    """Keep a benchmark's record as JSON at ``out`` (command, date, versions, hardware, its ``settings``, the
    wall time since ``started``, the results, peak memory) and print it as ``table`` renders it."""
    record = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "versions": versions(),
        "hardware": machine,
        **settings,
        "wall_seconds": time.perf_counter() - started,
        "results": results,
        "peak_rss_mb_of_this_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out, json.dumps(record, indent=2) + "\n")
    print(f"written to {out}")
    print(table(record))


if __name__ == "__main__":
    raise SystemExit(main())

r"""Training and evaluation speed of vaelib against hand-written references, side by side in one process.

Cases (examples per second over whole epochs of binarised MNIST, after one warm-up epoch; the timed
epochs alternate between vaelib and its reference):

- ``mlp``: vaelib's paper model (784-500-20 tanh, Bernoulli decoder, closed-form KL, Adam, M = 100)
  trained with ``model.fit``, against a hand-written TensorFlow ``tf.function`` step of the same model
  (plain variables, :math:`-\mathcal{L}_B` written out, Adam written out).
- ``conv``: ``vaelib.VAE.conv`` trained with ``fit``, against a Keras-example-style conv VAE of the same
  architecture (a ``Sampling`` layer and a custom ``train_step``), also trained with ``fit``.
- ``conv_xla``: vaelib's conv model with its default compilation against the same with XLA on (the
  reason XLA is off by default for convolutions).
- ``conv_profile``: where the conv step's time goes. Both conv models are profiled for a few steps;
  the share of kernel time spent in convolutions (forward, and both backward passes) bounds what any
  change outside the convolutions can gain: with the same convolutions, vaelib's step cannot be
  shorter than the reference's convolution time, so its ratio cannot exceed 1 / (reference's share).
- ``same_results``: the test ELBO after 5 epochs with vaelib's fast defaults and with them off, same seed.
- ``log_likelihood``: ``vaelib.log_likelihood`` with k = 5000 on the 10,000 test images for a
  784-200-200-50 model, with its wall time and the peak resident memory of a process that does only that.

Run ``python benchmarks/train_speed.py`` (``--tiny`` for a seconds-long smoke run). It prints one line
per case with the ratio to its reference and writes the table, the command, versions and hardware to
``--out`` (JSON). Machines are noisy: compare numbers from one run only.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import vaelib  # noqa: E402
from vaelib._files import write_text_atomically  # noqa: E402
from vaelib._scripts import cpu_model, versions  # noqa: E402

BATCH = 100


# ----------------------------------------------------------------------------- data
def training_data(tiny: bool) -> np.ndarray:
    (x_train, _), _ = vaelib.load_mnist()
    return x_train[:2000] if tiny else x_train


def batches(x: np.ndarray) -> tuple[tf.data.Dataset, int]:
    """A fresh dynamically binarised pipeline of full batches of ``x``, and how many examples it yields."""
    return vaelib.make_dataset(x, batch_size=BATCH, drop_remainder=True), (len(x) // BATCH) * BATCH


def side_by_side(reference_epoch, vaelib_epoch, epochs: int, examples: int) -> tuple[float, float]:
    """Examples per second of two training loops, each timed over ``epochs`` whole epochs.

    Both get one untimed warm-up epoch (tracing, compilation); the timed epochs alternate between the
    two, so that a slow spell of a shared machine hits both alike.
    """
    reference_epoch()
    vaelib_epoch()
    seconds = [0.0, 0.0]
    for _ in range(epochs):
        for i, run in enumerate((reference_epoch, vaelib_epoch)):
            start = time.perf_counter()
            run()
            seconds[i] += time.perf_counter() - start
    return epochs * examples / seconds[0], epochs * examples / seconds[1]


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
    ref, ours = side_by_side(fit_epoch(reference, dataset), fit_epoch(model, dataset), epochs, examples)
    return speed_result(case, reference_name, ref, ours)


def speed_result(case: str, reference: str, reference_ex_s: float, vaelib_ex_s: float) -> dict:
    """A speed comparison's record: both rates (examples per second) and vaelib's ratio to the reference."""
    return {
        "case": case,
        "reference": reference,
        "reference_ex_s": reference_ex_s,
        "vaelib_ex_s": vaelib_ex_s,
        "ratio": vaelib_ex_s / reference_ex_s,
    }


# ----------------------------------------------------------------------------- MLP reference
class PlainTFVAE(tf.Module):
    r"""The paper's MLP VAE as plain TensorFlow: variables, a ``tf.function`` step, Adam by hand.

    Loss per batch: the mean over examples of :math:`-\mathcal{L}_2 + \mathrm{KL}`, with
    :math:`\mathrm{KL} = -\tfrac12\sum_j (1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2)` and
    :math:`\log p(x|z)` the negated sigmoid cross-entropy of the decoder's logits.
    """

    def __init__(self, hidden: int = 500, latent: int = 20, learning_rate: float = 1e-3):
        super().__init__()
        init = keras.initializers.GlorotUniform(seed=0)

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
    model = compiled(vaelib.VAE.mlp())
    ref, ours = side_by_side(reference_epoch, fit_epoch(model, dataset), epochs, examples)
    return speed_result("mlp", "plain TF tf.function step", ref, ours)


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
    dataset = vaelib.make_dataset(x[: steps * BATCH], batch_size=BATCH, drop_remainder=True)
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
    for label, options in (("fast", {}), ("plain", {"jit_compile": False, "steps_per_execution": 1})):
        keras.utils.set_random_seed(0)
        model = vaelib.VAE.mlp()
        model.compile(optimizer="adam", **options)
        model.fit(dataset, epochs=epochs, verbose=0)
        out[f"{label}_test_elbo"] = float(np.mean(vaelib.elbo(model, x_test, seed=0)))
    return out


# ----------------------------------------------------------------------------- log-likelihood
def log_likelihood_case(num_samples: int, num_images: int) -> dict:
    """Run in a fresh process so that its peak memory is the evaluation's own."""
    code = (
        "import os, time, resource, json; os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3');"
        "import keras, vaelib;"
        "keras.utils.set_random_seed(0);"
        "(_, _), (x, _) = vaelib.load_mnist();"
        f"x = vaelib.fixed_binarize(x[:{num_images}]);"
        "m = vaelib.VAE.mlp(latent_dim=50, hidden_units=(200, 200));"
        "t = time.perf_counter();"
        f"ll = vaelib.log_likelihood(m, x, num_samples={num_samples});"
        "s = time.perf_counter() - t;"
        "print(json.dumps({'seconds': s, 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " 'mean_ll': float(ll.mean())}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"case": "log_likelihood", "k": num_samples, "images": num_images, **result}


# ----------------------------------------------------------------------------- report
def summary(r: dict) -> str:
    """One printed line for a case's result."""
    if "reference_ex_s" in r:
        return (
            f"{r['case']:>5}: vaelib {r['vaelib_ex_s']:8.0f} ex/s, {r['reference']} {r['reference_ex_s']:8.0f} ex/s,"
            f" ratio {r['ratio']:.2f}"
        )
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
    return (
        f"log_likelihood: k = {r['k']} on {r['images']} test images in {r['seconds']:.1f} s,"
        f" peak RSS {r['peak_rss_mb']:.0f} MB"
    )


def markdown_table(record: dict) -> str:
    """The README's performance table, made from a results record (so the two cannot disagree)."""
    hardware, v = record["hardware"], record["versions"]
    rows = [
        f"Measured on {hardware['processor']} ({hardware['cpus']} cores), TensorFlow {v['tensorflow']},"
        f" Keras {v['keras']}, TFP {v['tensorflow_probability']}, by `{record['command']}`:",
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
    return "\n".join(rows)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a smoke run: 2,000 images, one epoch, k = 10")
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per case (after one warm-up)")
    parser.add_argument(
        "--cases",
        default="mlp,conv,conv_xla,conv_profile,same_results,log_likelihood",
        help="comma-separated cases to run",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cases = args.cases.split(",")
    epochs = 1 if args.tiny else args.epochs
    tiny = args.tiny
    runs = {
        "mlp": lambda: mlp_case(x, epochs),
        "conv": lambda: conv_case(x, epochs),
        "conv_xla": lambda: conv_xla_case(x, max(1, epochs // 2)),
        "conv_profile": lambda: conv_profile_case(x, 10 if tiny else 100),
        "same_results": lambda: same_results_case(x, 1 if tiny else 5),
        "log_likelihood": lambda: log_likelihood_case(10 if tiny else 5000, 200 if tiny else 10_000),
    }
    unknown = sorted(set(cases) - set(runs))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; the cases are {', '.join(runs)}")
    x = training_data(tiny)
    results = []
    for name, run in runs.items():
        if name in cases:
            results.append(run())
            print(summary(results[-1]))
    if args.out:
        record = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "versions": versions(),
            "hardware": {"machine": platform.machine(), "processor": cpu_model(), "cpus": os.cpu_count()},
            "wall_seconds": time.perf_counter() - started,
            "results": results,
            "peak_rss_mb_of_this_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(args.out, json.dumps(record, indent=2) + "\n")
        print(markdown_table(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

r"""Time to a good model: training seconds until the test ELBO reaches a target, vaelib's defaults against plain TF.

What a reader waits for is a good model, not a fast step. Both recipes train the paper's 784-500-20 model
(tanh, Bernoulli decoder) on the 60,000 MNIST training images, epoch by epoch, until the bound on 2,000 test
images (binarised once, ``vaelib.fixed_binarize``) reaches ``--target`` (-105 nats), or ``--max-epochs``:

- ``vaelib``: the README's quickstart, with every default: ``vaelib.VAE.mlp(latent_dim=20)``,
  ``model.compile()``, then one ``model.fit(vaelib.make_dataset(x_train, model), epochs=max_epochs)``, paused
  after every epoch (:class:`PausedFit`) and stopped once the target is reached. The default optimizer keeps
  a moving average of the weights, which ``fit`` leaves in the model when it returns: the evaluation after
  an epoch sees those weights, as if ``fit`` had returned there. ``--variant`` adds recipes that override
  some of those defaults (to measure what each buys), e.g. ``--variant learning_rate=1e-3`` (Keras's Adam at
  :math:`10^{-3}`, no average) or ``--variant batch_size=250,output_bias=mean``.
- ``plain``: a hand-written TensorFlow step (``train_speed.PlainTFVAE``: plain variables, :math:`-\mathcal{L}_B`
  written out, Adam by hand with step size :math:`10^{-3}`), XLA-compiled (``tf.function(jit_compile=True)``),
  on minibatches of :math:`M = 100` binarised afresh every epoch.

Their epochs alternate in one process (each epoch, every recipe still training runs one epoch, in an order
that rotates), so that a slow spell of the shared machine hits all alike. Only training is timed: tracing and
compiling, which a reader waits for too, count; the evaluation after every epoch does not. Every recipe is
evaluated by the same function, :func:`test_elbo`: the closed-form KL and one draw of :math:`z` per image,
with the same noise :math:`\epsilon` for every recipe and epoch.

Run ``python benchmarks/time_to_elbo.py --seeds 0,1,2 --save``: one line per recipe and seed (epochs and
training seconds to the target, and the ratio plain/vaelib), then the ratio's spread over seeds. ``--save``
keeps the record (command, date, versions, hardware, results) as ``benchmarks/results/time_to_elbo/<kind>.json``
for this CPU's kind; ``--tiny`` is a smoke run of seconds. Timings are comparable within one run only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from train_speed import KIND_NAMES, PlainTFVAE, hardware, write_record  # noqa: E402

import vaelib  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "time_to_elbo"
OPTIONS = ("batch_size", "learning_rate", "output_bias", "jit_compile")


# ----------------------------------------------------------------------------- the evaluator
@tf.function
def test_elbo(encode: Callable, decode_logits: Callable, x: tf.Tensor, epsilon: tf.Tensor) -> tf.Tensor:
    r"""The mean over ``x`` of :math:`\widehat{\mathcal{L}}_B = \log p(x|z) - \mathrm{KL}(q(z|x)\|\mathcal{N}(0, I))`.

    ``encode(x)`` gives :math:`(\mu, \sigma)`, each ``(N, N_z)``; ``decode_logits(z)`` the Bernoulli logits,
    ``(N, 784)``. :math:`z = \mu + \sigma \odot \epsilon` with the given ``epsilon`` (one draw per image), and
    :math:`\mathrm{KL} = \frac12\sum_j (\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2)`.
    """
    mean, scale = encode(x)
    logits = decode_logits(mean + scale * epsilon)
    x = tf.reshape(x, tf.shape(logits))
    log_px = -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), axis=-1)
    kl = 0.5 * tf.reduce_sum(tf.square(mean) + tf.square(scale) - 1.0 - 2.0 * tf.math.log(scale), axis=-1)
    return tf.reduce_mean(log_px - kl)


def vaelib_networks(model: vaelib.VAE) -> tuple[Callable, Callable]:
    """``encode`` and ``decode_logits`` of :func:`test_elbo` for a vaelib model."""

    def encode(x):
        q = model.encode(x)
        return q.mean(), q.stddev()

    return encode, lambda z: tf.reshape(model.decoder(z), [-1, 784])


def plain_networks(plain: PlainTFVAE) -> tuple[Callable, Callable]:
    """``encode`` and ``decode_logits`` of :func:`test_elbo` for the plain model (its own parameterisation)."""
    w1, b1, w2, b2, w3, b3, w4, b4 = plain.params

    def encode(x):
        mean, log_var = tf.split(tf.tanh(tf.reshape(x, [-1, 784]) @ w1 + b1) @ w2 + b2, 2, axis=-1)
        return mean, tf.exp(0.5 * log_var)

    return encode, lambda z: tf.tanh(z @ w3 + b3) @ w4 + b4


# ----------------------------------------------------------------------------- the recipes
def parse_variant(text: str) -> dict:
    """``"batch_size=250,learning_rate=3e-3"`` as a dict of overrides of vaelib's defaults (or a clear error)."""
    overrides: dict = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in OPTIONS or not value:
            raise ValueError(f"a variant is name=value pairs with names among {', '.join(OPTIONS)}; got {item!r}")
        if name == "batch_size":
            overrides[name] = int(value)
        elif name == "learning_rate":
            overrides[name] = float(value)
        elif name == "jit_compile":
            overrides[name] = {"auto": "auto", "true": True, "false": False}[value.lower()]
        else:
            overrides[name] = value
    return overrides


def variant_name(overrides: dict) -> str:
    return "vaelib" if not overrides else "vaelib " + ",".join(f"{k}={v}" for k, v in overrides.items())


class PausedFit:
    """One ``model.fit(dataset, epochs=max_epochs)``, run in a thread that pauses after every epoch.

    Calling the object runs the next epoch (the first call starts ``fit``) and returns when it has ended;
    :meth:`evaluated` puts the weights ``fit`` would leave in the model there while the thread waits, and
    :meth:`finish` stops ``fit`` at the epoch reached. So epochs of other recipes can run in between,
    while this recipe trains as one ``fit`` call, as the quickstart does.
    """

    def __init__(self, model: keras.Model, dataset: tf.data.Dataset, max_epochs: int) -> None:
        self.model, self.dataset, self.max_epochs = model, dataset, max_epochs
        self._go, self._paused = threading.Semaphore(0), threading.Semaphore(0)
        self._stop, self._error = False, None
        self._thread = threading.Thread(target=self._fit, daemon=True)
        self._thread.start()

    def _fit(self) -> None:
        pause = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: self._pause())
        self._go.acquire()
        try:
            if not self._stop:
                self.model.fit(self.dataset, epochs=self.max_epochs, verbose=0, callbacks=[pause])
        except BaseException as err:  # shown by the next call
            self._error = err
        self._paused.release()

    def _pause(self) -> None:
        self._paused.release()
        self._go.acquire()
        if self._stop:
            self.model.stop_training = True

    def __call__(self) -> None:
        if not self._thread.is_alive():
            raise RuntimeError(f"fit has ended after {self.max_epochs} epochs")
        self._go.release()
        self._paused.acquire()
        if self._error is not None:
            raise self._error

    @contextlib.contextmanager
    def evaluated(self) -> Iterator[None]:
        """The weights ``fit`` leaves in the model (the optimizer's moving average, if it keeps one), then
        back to the weights it trains."""
        variables = self.model.trainable_variables
        trained = [v.numpy() for v in variables]
        self.model.optimizer.finalize_variable_values(variables)
        try:
            yield
        finally:
            for variable, value in zip(variables, trained):
                variable.assign(value)

    def finish(self) -> None:
        """Stop ``fit`` where it is and wait for it to return."""
        self._stop = True
        self._go.release()
        self._thread.join()


def vaelib_recipe(x: np.ndarray, seed: int, overrides: dict, max_epochs: int) -> PausedFit:
    """The quickstart's model, compile and pipeline (``overrides`` replacing some defaults), as one paused fit."""
    keras.utils.set_random_seed(seed)
    model = vaelib.VAE.mlp(latent_dim=20)
    bias = overrides.get("output_bias")
    if bias == "zeros":  # Keras's initialisation, undoing any data-dependent one
        model.decoder.layers[-2].bias.assign(tf.zeros(784))
    elif bias == "mean":  # the logit of the mean training image, as in Burda et al.'s code
        mean = np.clip(x.reshape(len(x), -1).mean(0), 1e-3, 1 - 1e-3)
        model.decoder.layers[-2].bias.assign(np.log(mean / (1 - mean)).astype(np.float32))
    compile_options = {}
    if "learning_rate" in overrides:
        compile_options["optimizer"] = keras.optimizers.Adam(overrides["learning_rate"])
    if "jit_compile" in overrides:
        compile_options["jit_compile"] = overrides["jit_compile"]
    model.compile(**compile_options)
    data_options = {"batch_size": overrides["batch_size"]} if "batch_size" in overrides else {}
    recipe = PausedFit(model, vaelib.make_dataset(x, model, seed=seed, **data_options), max_epochs)
    recipe.networks = vaelib_networks(model)
    return recipe


def plain_recipe(x: np.ndarray, seed: int) -> Callable[[], None]:
    """The plain TF model, its step XLA-compiled, Adam 1e-3, M = 100, dynamic binarisation; returns one epoch."""
    keras.utils.set_random_seed(seed)
    plain = PlainTFVAE(seed=seed)
    step = tf.function(lambda batch: PlainTFVAE.step.python_function(plain, batch), jit_compile=True)
    dataset = vaelib.make_dataset(x, "bernoulli", batch_size=100, seed=seed)

    def epoch():
        for batch in dataset:
            step(batch)

    epoch.networks = plain_networks(plain)
    epoch.evaluated = contextlib.nullcontext
    epoch.finish = lambda: None
    return epoch


# ----------------------------------------------------------------------------- the race
def race(
    recipes: dict[str, Callable[[], None]],
    x_test: tf.Tensor,
    epsilon: tf.Tensor,
    target: float,
    max_epochs: int,
    verbose: bool = False,
) -> dict[str, dict]:
    """Train every recipe epoch by epoch, alternating, until its test ELBO reaches ``target`` (or ``max_epochs``).

    A recipe is called to train one epoch; its ``evaluated()`` context holds the weights to evaluate, its
    ``finish()`` ends it. Returns, per recipe, the test ELBO and the training seconds of every epoch, and the
    epochs and the training seconds to the target (``None`` if it was not reached).
    """
    out = {name: {"test_elbo": [], "epoch_seconds": [], "epochs": None, "seconds": None} for name in recipes}
    names = list(recipes)
    for epoch in range(max_epochs):
        running = [n for n in names[epoch % len(names) :] + names[: epoch % len(names)] if out[n]["epochs"] is None]
        if not running:
            break
        for name in running:
            start = time.perf_counter()
            recipes[name]()
            out[name]["epoch_seconds"].append(time.perf_counter() - start)
            with recipes[name].evaluated():
                value = float(test_elbo(*recipes[name].networks, x_test, epsilon))
            out[name]["test_elbo"].append(value)
            if verbose:
                print(
                    f"  epoch {epoch + 1:2d} {name:50s} {out[name]['epoch_seconds'][-1]:5.1f} s, {value:.2f}",
                    flush=True,
                )
            if value >= target:
                out[name]["epochs"] = epoch + 1
                out[name]["seconds"] = sum(out[name]["epoch_seconds"])
                recipes[name].finish()
    for name in names:
        if out[name]["epochs"] is None:
            recipes[name].finish()
    return out


def summary(seed: int, result: dict[str, dict]) -> list[str]:
    """One printed line per recipe of one seed's race."""
    plain = result["plain"]["seconds"]
    lines = []
    for name, r in result.items():
        reached = (
            f"{r['epochs']:2d} epochs, {r['seconds']:6.1f} s"
            if r["epochs"]
            else f"not in {len(r['test_elbo'])} epochs ({max(r['test_elbo']):.2f})"
        )
        ratio = f", plain/this {plain / r['seconds']:.2f}" if plain and r["seconds"] and name != "plain" else ""
        lines.append(f"seed {seed}: {name:50s} {reached}{ratio}")
    return lines


def ratios(results: dict[str, dict[str, dict]]) -> dict[str, list[float]]:
    """Per vaelib recipe, the ratio plain seconds / its seconds of every seed where both reached the target."""
    out: dict[str, list[float]] = {}
    for result in results.values():
        for name, r in result.items():
            if name != "plain" and r["seconds"] and result["plain"]["seconds"]:
                out.setdefault(name, []).append(result["plain"]["seconds"] / r["seconds"])
    return out


def markdown_table(record: dict) -> str:
    """The README's table of a record: per recipe, epochs and seconds to the target per seed, and the ratio."""
    hw, v = record["hardware"], record["versions"]
    rows = [
        f"**{KIND_NAMES[hw['kind']]}**: {hw['processor']} ({hw['cpus']} cores; vector extensions:"
        f" {', '.join(hw['vector_extensions'])}), {record['date']}, TensorFlow {v['tensorflow']}, Keras"
        f" {v['keras']}, vaelib {v['vaelib']}, by `{record['command']}`, test ELBO target {record['target']:g} nats:",
        "",
        "| recipe | epochs to the target (per seed) | training seconds (per seed) | ratio plain/recipe (per seed) |",
        "| --- | --- | --- | --- |",
    ]
    seeds = list(record["results"])
    names = list(record["results"][seeds[0]])
    for name in names:
        runs = [record["results"][s][name] for s in seeds]
        plain = [record["results"][s]["plain"]["seconds"] for s in seeds]
        epochs = ", ".join(str(r["epochs"]) if r["epochs"] else "–" for r in runs)
        seconds = ", ".join(f"{r['seconds']:.1f}" if r["seconds"] else "–" for r in runs)
        ratio = (
            "1"
            if name == "plain"
            else ", ".join(f"{p / r['seconds']:.2f}" if p and r["seconds"] else "–" for p, r in zip(plain, runs))
        )
        rows.append(f"| {name} | {epochs} | {seconds} | {ratio} |")
    medians = ", ".join(f"{name} {np.median(values):.2f}" for name, values in ratios(record["results"]).items())
    rows += ["", f"Median over the seeds of the ratio plain/recipe: {medians}."]
    return "\n".join(rows)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, one race each (default 0)")
    parser.add_argument("--target", type=float, default=-105.0, help="the test ELBO to reach, nats (default -105)")
    parser.add_argument("--max-epochs", type=int, default=20, help="the cap on epochs per recipe (default 20)")
    parser.add_argument("--test-images", type=int, default=2000, help="test images evaluated (default 2,000)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="a vaelib recipe with some defaults overridden, e.g. 'batch_size=100,learning_rate=1e-3,"
        "output_bias=zeros' (output_bias: zeros or mean; jit_compile: auto, true or false); repeatable",
    )
    parser.add_argument("--no-defaults", action="store_true", help="race only the variants and plain TF")
    parser.add_argument("--tiny", action="store_true", help="a smoke run: 2,000 images, 2 epochs")
    parser.add_argument("--verbose", action="store_true", help="print every epoch's seconds and test ELBO")
    parser.add_argument(
        "--save", action="store_true", help="keep the record as benchmarks/results/time_to_elbo/<kind>.json"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the record as JSON here (instead of --save)")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        variants = [parse_variant(v) for v in args.variant]
    except (ValueError, KeyError) as err:
        parser.error(f"{err}")
    started = time.perf_counter()
    machine = hardware()
    print(
        f"{machine['processor']}, {machine['cpus']} cores, {KIND_NAMES[machine['kind']]}:",
        *machine["vector_extensions"],
    )
    (x_train, _), (x_test, _) = vaelib.load_mnist()
    if args.tiny:
        x_train, args.max_epochs = x_train[:2000], 2
    x_test = tf.constant(vaelib.fixed_binarize(x_test[: args.test_images]))
    epsilon = tf.constant(np.random.default_rng(0).standard_normal((len(x_test), 20)), tf.float32)
    recipes_of_seed = [] if args.no_defaults else [{}]
    recipes_of_seed += variants
    results = {}
    for seed in seeds:
        recipes = {variant_name(o): vaelib_recipe(x_train, seed, o, args.max_epochs) for o in recipes_of_seed}
        recipes["plain"] = plain_recipe(x_train, seed)
        results[str(seed)] = race(recipes, x_test, epsilon, args.target, args.max_epochs, args.verbose)
        print(*summary(seed, results[str(seed)]), sep="\n", flush=True)
    for name, values in ratios(results).items():
        print(
            f"{name}: ratio plain/vaelib {np.median(values):.2f} (median of {len(values)} seeds,"
            f" {min(values):.2f}-{max(values):.2f})"
        )
    out = RESULTS / f"{machine['kind']}.json" if args.save else args.out
    if out:
        settings = {"target": args.target, "max_epochs": args.max_epochs, "test_images": len(x_test)}
        write_record(out, machine, started, results, markdown_table, **settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

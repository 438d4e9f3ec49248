r"""The paper's experiments, resumable: AEVB Figure 2 and the log-likelihood of a reference model.

The scripts in ``experiments/`` call these functions with the full budgets and write ``results/``; the
book's chapters call them with tiny budgets in quick mode, so the same code runs in every build.

**AEVB Figure 2** (Kingma & Welling 2013, Sec. 5): the MLP 784-500-:math:`N_z` with tanh and a Bernoulli
decoder, weights initialised from :math:`\mathcal{N}(0, 0.01^2)` and biases at 0, trained by Adagrad on minibatches of
:math:`M = 100` with :math:`L = 1` to maximise :math:`\frac1N[\sum_i \mathcal{L}_B(x^{(i)}) + \log
p(\theta, \phi)]`, :math:`p(\theta, \phi) = \mathcal{N}(0, I)` on every weight (``weight_decay`` :math:`= 1/N`).
The lower bound per datapoint is recorded on the training and the test set at log-spaced numbers of training samples
evaluated. The baseline, the wake-sleep algorithm (:mod:`vaelib.paper.wake_sleep`), trains the same networks
with the same optimizer, prior :math:`p(\theta, \phi)`, minibatches and step-size choice, and is measured by the
same lower bound (``method="wake_sleep"``).

**Reference model** (Burda et al. 2016): 784-200-200-50 with tanh, dynamically binarised data, trained
with the ELBO or the IWAE objective for a fixed wall-clock budget.

Every run lives in a folder of its own, a run of :class:`vaelib.training.Run` (one state schema for every
run), and keeps its state there after each segment of training, so a killed run resumes where it stopped
when it is started again with the same arguments.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vaelib._checks import check_choice, check_positive_int, check_seed
from vaelib._files import replaced_atomically, save_model_atomically
from vaelib._machine import cpu_model
from vaelib.bound import elbo
from vaelib.data import fixed_binarize, make_stream, steps_per_epoch
from vaelib.evaluation import hmc_log_likelihood, rate_and_distortion
from vaelib.model import VAE
from vaelib.objectives import ELBO, Objective
from vaelib.paper.mcem import MonteCarloEM
from vaelib.paper.wake_sleep import WakeSleep
from vaelib.training import Run, _fit_epochs_exactly, data_sha256, model_config, train

__all__ = [
    "FIG2_LATENT_DIMS",
    "fig2_run_folder",
    "FIG2_METHODS",
    "ADAGRAD_STEP_SIZES",
    "paper_model",
    "evaluation_points",
    "mean_bound",
    "choose_step_size",
    "aevb_curve",
    "FIG3_METHODS",
    "FIG3_TRAIN_SIZES",
    "figure3_model",
    "figure3_curve",
    "ESTIMATOR_BURNIN",
    "marginal_likelihoods",
    "mean_marginal_likelihood",
    "burda_learning_rate",
    "cosine_learning_rate",
    "reference_model",
    "train_for",
    "beta_sweep",
    "results_file",
    "results_url",
]

FIG2_LATENT_DIMS = (3, 5, 10, 20, 200)
FIG2_METHODS = {"aevb": ELBO, "wake_sleep": WakeSleep}  # Figure 2's methods and the objective each trains
ADAGRAD_STEP_SIZES = (0.01, 0.02, 0.1)
PAPER_INIT = {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.01}}
REPOSITORY_URL = "https://github.com/vae-book/vae-book"  # as in the book's _config.yml (a test keeps them equal)
RESULTS_ENV = "VAELIB_RESULTS"


SEGMENT_QUANTUM = 2000  # training samples: 20 minibatches of 100, one call into the compiled loop
CHECKPOINT_EVERY = 500_000  # training samples between checkpoints of a Figure 2 curve (a multiple of the above)


def paper_model(latent_dim: int, step_size: float, dataset_size: int, method: str = "aevb") -> VAE:
    """The paper's MNIST model, compiled with Adagrad and the weight-decay term of :math:`p(\\theta, \\phi)`.

    ``method``: ``"aevb"`` trains on the bound, ``"wake_sleep"`` trains the same model by wake-sleep.
    """
    objective = FIG2_METHODS[check_choice(method, "method", tuple(FIG2_METHODS))]()
    model = VAE.mlp(latent_dim=latent_dim, hidden_units=(500,), initializer=PAPER_INIT)
    model.compile(
        optimizer=keras.optimizers.Adagrad(learning_rate=step_size),
        objective=objective,
        weight_decay=1.0 / check_positive_int(dataset_size, "dataset_size"),
        jit_compile=True,  # a long run
    )
    return model


def fig2_run_folder(runs: str | os.PathLike, method: str, n_z: int) -> Path:
    """Where a Figure 2 curve trains: ``<method>_nz<N_z>``."""
    method = check_choice(method, "method", tuple(FIG2_METHODS))
    return Path(runs) / f"{method}_nz{n_z}"


def evaluation_points(max_samples: int, first: int = 10_000, per_decade: int = 4) -> list[int]:
    """Log-spaced numbers of training samples, ``first`` to ``max_samples``, multiples of 2,000."""
    max_samples = check_positive_int(max_samples, "max_samples")
    first = check_positive_int(first, "first")
    if max_samples < first:
        raise ValueError(f"max_samples ({max_samples}) must be at least first ({first})")
    decades = np.log10(max_samples / first)
    raw = first * 10.0 ** (np.arange(int(np.floor(decades * per_decade + 1e-9)) + 1) / per_decade)
    points = sorted({max(SEGMENT_QUANTUM, int(round(p / SEGMENT_QUANTUM)) * SEGMENT_QUANTUM) for p in raw})
    if points[-1] != max_samples:
        points.append(int(np.ceil(max_samples / SEGMENT_QUANTUM)) * SEGMENT_QUANTUM)
    return points


def mean_bound(model: VAE, x: np.ndarray, batch_size: int = 1000, seed: int = 0) -> float:
    """:math:`\\frac1N\\sum_i \\widehat{\\mathcal{L}}_B(x^{(i)})` over ``x`` (nats per datapoint, :math:`L = 1`)."""
    total = 0.0
    for start in range(0, len(x), batch_size):
        total += float(tf.reduce_sum(elbo(model, x[start : start + batch_size], seed=seed + start)))
    return total / len(x)


def _train_samples(model: VAE, x: np.ndarray, samples: int, seed: int, batch_size: int = 100) -> None:
    """Train on the next ``samples`` dynamically binarised examples of the run's stream.

    The stream (:func:`vaelib.make_stream`, seed ``seed``) continues from the optimizer's step
    count, and the noise is drawn from ``seed`` and that count, so training in segments, or resuming from
    a checkpoint between them, draws exactly what one long call would.
    """
    steps = samples // batch_size
    model.noise_seed = seed
    _fit_epochs_exactly(model, steps)
    stream = make_stream(x, model, batch_size, "dynamic", seed, start_step=int(model.optimizer.iterations))
    model.fit(stream, epochs=1, steps_per_epoch=steps, verbose=0)


def choose_step_size(
    latent_dim: int,
    x_train: np.ndarray,
    samples: int = 100_000,
    step_sizes: Sequence[float] = ADAGRAD_STEP_SIZES,
    seed: int = 0,
    method: str = "aevb",
) -> tuple[float, dict[float, float]]:
    """The paper's choice: the Adagrad step size with the best training bound after the first iterations.

    Returns the chosen step size and the training bound (on the first 10,000 images, binarised once) that
    each candidate reached after ``samples`` training samples of ``method`` (both methods choose this way).
    """
    x_check = fixed_binarize(x_train[:10_000], seed)
    scores = {}
    for step_size in step_sizes:
        keras.utils.set_random_seed(seed)
        model = paper_model(latent_dim, step_size, len(x_train), method)
        _train_samples(model, x_train, samples, seed)
        scores[float(step_size)] = mean_bound(model, x_check, seed=seed)
    best = max(scores, key=scores.get)
    return best, scores


def aevb_curve(
    run_dir: str | os.PathLike,
    latent_dim: int,
    x_train: np.ndarray,
    x_test: np.ndarray,
    max_samples: int,
    step_size: float | None = None,
    seed: int = 0,
    first: int = 10_000,
    log: bool = False,
    method: str = "aevb",
) -> list[dict[str, float]]:
    """One curve of AEVB Figure 2: train and test bound per datapoint against training samples evaluated.

    Args:
        run_dir: the run's folder (created; a run already there is resumed).
        latent_dim: :math:`N_z`.
        x_train, x_test: grey-level images in [0, 1]. Training binarises ``x_train`` afresh every
            pass; the bounds are measured on one fixed binarisation of each set (seed ``seed``).
        max_samples: train until this many training samples have been evaluated.
        step_size: Adagrad's step size; ``None`` chooses it with :func:`choose_step_size`.
        seed: seeds the initialisation, the data order and the binarisation.
        first: the first evaluation point (see :func:`evaluation_points`).
        log: print a line per evaluation point.
        method: ``"aevb"`` or ``"wake_sleep"`` (see :func:`paper_model`).

    Returns:
        The rows, one per evaluation point, each with ``method``, ``n_z``, ``samples``, ``train_bound`` and
        ``test_bound`` (nats per datapoint), ``seconds`` (training time so far) and ``cpu``.
    """
    points = evaluation_points(max_samples, first)
    method = check_choice(method, "method", tuple(FIG2_METHODS))
    if step_size is not None and not (np.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a positive number or None, got {step_size}")
    settings = {
        "experiment": "aevb_curve",
        "method": method,
        "n_z": check_positive_int(latent_dim, "latent_dim"),
        "seed": check_seed(seed),
        "first": first,
        "data_sha256": data_sha256(x_train, x_test),
    }
    run = Run(run_dir, settings)
    notes = run.state["notes"]
    if not run.started:
        scores = None
        if step_size is None:
            step_size, scores = choose_step_size(latent_dim, x_train, seed=seed, method=method)
        notes.update(step_size=step_size, step_size_scores=scores)
    elif step_size not in (None, notes["step_size"]):
        raise ValueError(
            f"{run.dir} holds a run with step size {notes['step_size']}, asked for {step_size}: use a new folder"
        )
    keras.utils.set_random_seed(seed)
    model = paper_model(latent_dim, notes["step_size"], len(x_train), method)
    train_eval, test_eval = fixed_binarize(x_train, seed), fixed_binarize(x_test, seed)

    def measure() -> dict[str, float]:
        return {
            "train_bound": mean_bound(model, train_eval, seed=seed),
            "test_bound": mean_bound(model, test_eval, seed=seed),
        }

    return _measured_run(
        run,
        model,
        lambda samples: _train_samples(model, x_train, samples, seed),
        measure,
        points,
        {"method": method, "n_z": latent_dim},
        model,
        log,
    )


def _measured_run(
    run: Run,
    trainer: keras.Model,
    train: Callable[[int], None],
    measure: Callable[[], dict[str, float]],
    points: Sequence[int],
    labels: dict[str, Any],
    saved_model: keras.Model,
    log: bool,
    batch_size: int = 100,
) -> list[dict[str, Any]]:
    """Train ``trainer`` to each of ``points`` training samples and ``measure`` it there; resumable.

    The run's state holds the rows so far in ``rows``, and its ``steps`` (minibatches of ``batch_size``)
    count the samples trained on. Training goes in segments of at most :data:`CHECKPOINT_EVERY` samples,
    each followed by a checkpoint, so a kill loses at most one segment; a row is saved with the checkpoint
    of its point. A run that has reached every point and saved its model returns its rows without loading
    anything, so a finished run folder may be kept without its last checkpoint. ``train(n)`` trains on the
    run's next ``n`` samples (resuming the stream and the noise from the step count); a row is ``labels``,
    ``samples``, what ``measure()`` returns, ``seconds`` (training time so far) and ``cpu``, the CPU that
    trained the stretch up to it and measured it (a run resumed on another machine has rows from each).
    ``saved_model`` is saved as ``model.keras`` at the end.
    """
    state = run.state
    done = state["steps"] * batch_size
    if all(target <= done for target in points) and (run.dir / "model.keras").exists():
        return state["rows"]  # finished and saved: nothing to load, train or save (its checkpoint may be gone)
    run.restore(trainer)
    for target in points:
        if target <= done:  # a row of its own is saved with the checkpoint that reaches it
            continue
        while done < target:  # in segments, each saved, so a kill loses at most one segment's training
            segment = min(target - done, CHECKPOINT_EVERY)
            with run.timed():
                train(segment)
            done += segment
            state["steps"] = done // batch_size
            if done < target:
                run.save(trainer)
        measured = measure()
        if not np.isfinite(list(measured.values())).all():
            described = ", ".join(f"{k} {v}" for k, v in labels.items())
            raise ValueError(f"{described}: not finite after {target} samples ({measured}); training diverged")
        seconds = round(state["seconds"], 1)
        row = {**labels, "samples": target, **measured, "seconds": seconds, "cpu": cpu_model()}
        state["rows"].append(row)
        run.save(trainer)
        if log:
            values = " ".join(f"{k} {v:8.2f}" for k, v in measured.items())
            print(
                f"{' '.join(map(str, labels.values()))} samples={target:>10,d} {values} ({seconds:6.0f} s)", flush=True
            )
    run.save_model(saved_model)
    return state["rows"]


FIG3_METHODS = ("aevb", "wake_sleep", "mcem")
FIG3_TRAIN_SIZES = (1_000, 50_000)


def figure3_model(method: str, step_size: float, dataset_size: int, seed: int = 0) -> tuple[keras.Model, VAE]:
    r"""Figure 3's model, 784-100-3 with tanh, set up to be trained by ``method``; returns (trainer, model).

    AEVB and wake-sleep train the VAE itself (``trainer`` is ``model``); Monte Carlo EM trains its decoder
    through a :class:`~vaelib.paper.mcem.MonteCarloEM` (``trainer``), with ``seed`` for its HMC transitions.
    All three use Adagrad at ``step_size`` and the prior :math:`\mathcal{N}(0, I)` on their weights (``weight_decay``
    :math:`= 1/N`).
    """
    method = check_choice(method, "method", FIG3_METHODS)
    dataset_size = check_positive_int(dataset_size, "dataset_size")
    model = VAE.mlp(latent_dim=3, hidden_units=(100,), initializer=PAPER_INIT)
    optimizer = keras.optimizers.Adagrad(learning_rate=step_size)
    if method == "mcem":
        trainer = MonteCarloEM(model, dataset_size, weight_decay=1.0 / dataset_size, seed=seed)
        trainer.compile(optimizer=optimizer)
        return trainer, model
    model.compile(
        optimizer=optimizer, objective=FIG2_METHODS[method](), weight_decay=1.0 / dataset_size, jit_compile=True
    )
    return model, model


def _train_mcem_samples(trainer: MonteCarloEM, x: np.ndarray, samples: int, seed: int, batch_size: int = 100) -> None:
    """Monte Carlo EM on the run's next ``samples`` examples: the indexed stream continues from its transitions."""
    steps = samples // batch_size
    _fit_epochs_exactly(trainer, steps)
    stream = make_stream(
        x, trainer.generative, batch_size, "dynamic", seed, start_step=int(trainer.transitions.numpy()), with_index=True
    )
    trainer.fit(stream, epochs=1, steps_per_epoch=steps, verbose=0)


ESTIMATOR_BURNIN = 300  # HMC transitions before the marginal-likelihood estimator's draws, for Figure 3


def marginal_likelihoods(
    model: Any,
    x: np.ndarray,
    num_samples: int = 500,
    num_burnin: int = ESTIMATOR_BURNIN,
    seed: int = 0,
    batch_size: int = 100,
) -> np.ndarray:
    """:func:`vaelib.hmc_log_likelihood` of every image of ``x``, in batches, shape ``(N,)`` (nats).

    The batch that starts at image :math:`i` uses seed ``seed + i``, so the estimates of the first images
    do not depend on how many follow them.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    if len(x) == 0:
        raise ValueError("x is empty: the marginal likelihood needs at least one image")
    return np.concatenate(
        [
            hmc_log_likelihood(model, x[start : start + batch_size], num_samples, num_burnin, seed=seed + start)
            for start in range(0, len(x), batch_size)
        ]
    )


def mean_marginal_likelihood(
    model: Any,
    x: np.ndarray,
    num_samples: int = 500,
    num_burnin: int = ESTIMATOR_BURNIN,
    seed: int = 0,
    batch_size: int = 100,
) -> float:
    """Mean of :func:`marginal_likelihoods` over ``x`` (nats per datapoint)."""
    return float(np.mean(marginal_likelihoods(model, x, num_samples, num_burnin, seed, batch_size), dtype=np.float64))


def figure3_curve(
    run_dir: str | os.PathLike,
    method: str,
    x_train: np.ndarray,
    x_test: np.ndarray,
    max_samples: int,
    step_size: float = 0.02,
    eval_images: int = 100,
    estimator_samples: int = 500,
    seed: int = 0,
    first: int = 10_000,
    log: bool = False,
) -> list[dict[str, Any]]:
    """One curve of AEVB Figure 3: the estimated marginal likelihood of train and test data against training samples.

    Args:
        run_dir: the run's folder (created; a run already there is resumed).
        method: ``"aevb"``, ``"wake_sleep"`` or ``"mcem"`` (see :func:`figure3_model`).
        x_train: the training set, grey levels in [0, 1] (the paper: 1,000 or 50,000 MNIST images),
            binarised afresh every pass.
        x_test: test images; the estimates use the first ``eval_images`` of each set, binarised once
            (seed ``seed``).
        max_samples: train until this many training samples have been evaluated.
        step_size: Adagrad's step size, the same for the three methods (0.02: what Figure 2's choice
            picked for AEVB and wake-sleep at small :math:`N_z`).
        eval_images: images of each set the marginal likelihood is estimated on at every point.
        estimator_samples: :math:`L` of :func:`~vaelib.hmc_log_likelihood`.
        seed: seeds the initialisation, the data order, the binarisation and the estimator.
        first: the first evaluation point (see :func:`evaluation_points`).
        log: print a line per evaluation point.

    Returns:
        The rows, one per evaluation point, each with ``method``, ``n_train``, ``samples``,
        ``train_marginal_ll`` and ``test_marginal_ll`` (nats per datapoint), ``seconds`` (training time
        so far) and ``cpu``.
    """
    points = evaluation_points(max_samples, first)
    method = check_choice(method, "method", FIG3_METHODS)
    if not (np.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a positive number, got {step_size}")
    eval_images = check_positive_int(eval_images, "eval_images")
    if eval_images > min(len(x_train), len(x_test)):
        raise ValueError(f"eval_images ({eval_images}) exceeds the images there are ({len(x_train)}, {len(x_test)})")
    settings = {
        "experiment": "figure3_curve",
        "method": method,
        "n_train": len(x_train),
        "step_size": float(step_size),
        "eval_images": eval_images,
        "estimator_samples": check_positive_int(estimator_samples, "estimator_samples"),
        "seed": seed,
        "first": first,
        "data_sha256": data_sha256(x_train, x_test),
    }
    run = Run(run_dir, settings)
    keras.utils.set_random_seed(seed)
    trainer, model = figure3_model(method, step_size, len(x_train), seed)
    train_eval = fixed_binarize(x_train[:eval_images], seed)
    test_eval = fixed_binarize(x_test[:eval_images], seed)

    def train(samples: int) -> None:
        if method == "mcem":
            _train_mcem_samples(trainer, x_train, samples, seed)
        else:
            _train_samples(model, x_train, samples, seed)

    def measure() -> dict[str, float]:
        return {
            "train_marginal_ll": mean_marginal_likelihood(model, train_eval, estimator_samples, seed=seed),
            "test_marginal_ll": mean_marginal_likelihood(model, test_eval, estimator_samples, seed=seed),
        }

    labels = {"method": method, "n_train": len(x_train)}
    return _measured_run(run, trainer, train, measure, points, labels, model, log)


def burda_learning_rate(epoch: int) -> float:
    r"""Burda et al.'s (2016) Adam schedule: step size :math:`10^{-3} \cdot 10^{-i/7}` for :math:`3^i` passes.

    ``epoch`` counts from 0: epoch 0 has :math:`i = 0`, epochs 1-3 have :math:`i = 1`, epochs 4-12 have
    :math:`i = 2`, and so on (3,280 epochs for :math:`i \le 7`).
    """
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    i, end = 0, 1
    while epoch >= end:
        i += 1
        end += 3**i
    return 1e-3 * 10.0 ** (-i / 7)


def cosine_learning_rate(epoch: int, epochs: int, peak: float = 1e-3) -> float:
    r"""A cosine schedule over a run of ``epochs`` passes: :math:`\eta_e = \frac{\eta_0}{2}(1 + \cos(\pi e / E))`.

    ``epoch`` :math:`e` counts from 0 to :math:`E - 1`; :math:`\eta_0` is ``peak``. The step size falls
    smoothly from :math:`\eta_0` towards 0 at the end of the run, so a run of a fixed length ends annealed,
    where Burda et al.'s schedule (:func:`burda_learning_rate`) needs 3,280 passes to get there.
    """
    epochs = check_positive_int(epochs, "epochs")
    if not 0 <= epoch < epochs:
        raise ValueError(f"epoch must be in [0, {epochs}), got {epoch}")
    return 0.5 * peak * (1.0 + math.cos(math.pi * epoch / epochs))


LEARNING_RATE_SCHEDULES = ("burda", "cosine")


def reference_model(objective: str | Objective = "elbo") -> VAE:
    """The IWAE paper's MNIST architecture, 784-200-200-50 with tanh, compiled with Adam for ``objective``.

    ``objective``: ``"elbo"`` or an objective such as ``vaelib.IWAE(num_samples=5)``.
    """
    model = VAE.mlp(latent_dim=50, hidden_units=(200, 200))
    model.compile(optimizer=keras.optimizers.Adam(burda_learning_rate(0)), objective=objective, jit_compile=True)
    return model


RELEASE_EVERY = 10  # train_for frees the finished epochs' data streams after this many epochs


def train_for(
    model: VAE,
    x_train: np.ndarray,
    minutes: float,
    run_dir: str | os.PathLike,
    batch_size: int = 100,
    seed: int = 0,
    log: bool = False,
    keep: Sequence[int] = (),
    schedule: str = "burda",
    epochs: int | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train a compiled model on dynamically binarised ``x_train`` for a wall-clock budget, resumably.

    Epoch by epoch until ``minutes`` of training time (summed over resumed sessions) have passed, with
    the step size of ``schedule``:

    * ``"burda"`` (:func:`burda_learning_rate`): a schedule of passes that does not depend on the run's
      length, so the budget can be raised to continue a run;
    * ``"cosine"`` (:func:`cosine_learning_rate`) over ``epochs`` passes: the run stops after ``epochs``
      passes, annealed, or when the budget is spent, whichever comes first. The schedule depends on
      ``epochs``, so a run continues only with the same ``epochs``; ``state["epochs"] < epochs`` at the
      end means the budget was too small for the planned run.

    After every epoch the weights, the optimizer state and ``state.json`` (epochs, steps, seconds, and the
    epoch's mean training loss in ``history["loss"]``) are saved in ``run_dir``, a :class:`vaelib.training.Run`
    (its ``config.json`` records the model, the data, the seed and the schedule).
    The data come from :func:`vaelib.make_stream` and the noise from ``seed`` and the step count,
    so the weights after epoch :math:`e` do not depend on how often the run was stopped before it.
    After each epoch in ``keep`` the model is also saved as ``snapshots/epoch<e>.keras``, and
    ``state["notes"]["snapshots"]`` maps the epoch to the training seconds it had taken, so a run can be measured
    along the way (at equal passes or equal time as another run). ``on_epoch``, if given, is called with
    the state once the run is opened (a new run or the resumed checkpoint's) and again after every
    epoch's checkpoint, so a caller can keep its own record current if the process is killed. Every
    ``RELEASE_EVERY`` epochs and at the end, the finished epochs' data streams are freed (``gc.collect``):
    each ``fit`` leaves its stream in reference cycles, which Python's collector reaches too rarely for a
    run of thousands of epochs (about 20 MB an epoch on MNIST). Returns the state.
    """
    if not minutes > 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    schedule = check_choice(schedule, "schedule", LEARNING_RATE_SCHEDULES)
    if (schedule == "cosine") != (epochs is not None):
        raise ValueError(f"epochs goes with the cosine schedule, and only with it: got {schedule!r}, epochs={epochs}")
    batch_size = check_positive_int(batch_size, "batch_size")
    steps = steps_per_epoch(len(x_train), batch_size)
    settings = {
        "experiment": "train_for",
        "model": model_config(model),
        "data_sha256": data_sha256(x_train),
        "batch_size": batch_size,
        "seed": check_seed(seed),
        "schedule": {"name": schedule, "epochs": None if epochs is None else check_positive_int(epochs, "epochs")},
    }
    run = Run(run_dir, settings)
    state = run.state
    model.noise_seed = seed
    run.restore(model)
    _fit_epochs_exactly(model, steps)
    if on_epoch is not None:
        on_epoch(state)
    while state["seconds"] < 60.0 * minutes and (epochs is None or state["epochs"] < epochs):
        stream = make_stream(x_train, model, batch_size, "dynamic", seed, start_step=int(model.optimizer.iterations))
        if schedule == "cosine":
            model.optimizer.learning_rate.assign(cosine_learning_rate(state["epochs"], epochs))
        else:
            model.optimizer.learning_rate.assign(burda_learning_rate(state["epochs"]))
        with run.timed():
            history = model.fit(stream, epochs=1, steps_per_epoch=steps, verbose=0)
        loss = float(history.history["loss"][-1])
        if not np.isfinite(loss):
            raise ValueError(f"training diverged at epoch {state['epochs'] + 1}: the loss is {loss}")
        state["epochs"] += 1
        state["steps"] = int(model.optimizer.iterations)
        state["history"].setdefault("loss", []).append(round(loss, 4))
        if state["epochs"] in keep:  # before state.json moves on: a kill in between redoes the epoch and the file
            (run.dir / "snapshots").mkdir(exist_ok=True)
            save_model_atomically(model, run.dir / "snapshots" / f"epoch{state['epochs']:05d}.keras")
            state["notes"].setdefault("snapshots", {})[str(state["epochs"])] = state["seconds"]
        run.save(model)
        if on_epoch is not None:
            on_epoch(state)
        if state["epochs"] % RELEASE_EVERY == 0:
            gc.collect()  # each epoch's fit leaves its stream in reference cycles; a long run would fill memory
        if log and state["epochs"] % 10 == 0:
            print(f"epoch {state['epochs']:5d}  loss {loss:8.3f}  {state['seconds'] / 60:6.1f} min", flush=True)
    gc.collect()
    return state


def beta_sweep(
    run_dir: str | os.PathLike,
    x_train: np.ndarray,
    x_test: np.ndarray,
    betas: Sequence[float],
    epochs: int,
    latent_dim: int = 20,
    seed: int = 0,
    log: bool = False,
) -> list[dict[str, Any]]:
    r"""One 784-500-``latent_dim`` model per :math:`\beta`, trained on :math:`\mathcal{L}_2 - \beta\mathrm{KL}`.

    Each model trains with Adam (step size :math:`10^{-3}`) for ``epochs`` passes over dynamically
    binarised ``x_train``. On ``x_test``, binarised once (seed ``seed``), it records the *rate*
    :math:`\mathrm{KL}(q(z|x)\|p(z))`, the *distortion* :math:`-\mathbb{E}_q[\log p(x|z)]` and the bound
    :math:`\mathcal{L}_B = -(\text{rate} + \text{distortion})` (nats per datapoint), 16 prior samples
    (decoder means) and the reconstructions of the first 8 test images. A finished :math:`\beta` is kept in
    ``run_dir`` (written atomically, so a kill never leaves half a file that counts as finished) and not
    trained again; a :math:`\beta` being trained keeps its run in ``run_dir/beta<β>/`` (see
    :func:`vaelib.train`), so a killed sweep resumes from its last epoch. Each kept model records its
    settings (``epochs``, ``latent_dim``, ``seed`` and a SHA-256
    of the data); reusing ``run_dir`` with other settings is an error, not a silent reuse of old models.
    """
    epochs = check_positive_int(epochs, "epochs")
    betas = [float(b) for b in betas]
    if not betas or not all(np.isfinite(b) and b >= 0 for b in betas):
        raise ValueError(f"betas must be a non-empty list of finite numbers >= 0, got {betas}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    x_eval = fixed_binarize(x_test, seed)
    data = hashlib.sha256(np.ascontiguousarray(x_train, np.float32).tobytes())
    data.update(np.ascontiguousarray(x_test, np.float32).tobytes())
    settings = {"epochs": epochs, "latent_dim": latent_dim, "seed": seed, "data_sha256": data.hexdigest()}
    check_seed(seed)  # before anything is written
    rows = []
    for beta in betas:
        path = run_dir / f"beta{beta:g}.npz"
        if not path.exists():
            keras.utils.set_random_seed(seed)
            model = VAE.mlp(latent_dim=latent_dim)
            model.compile(optimizer=keras.optimizers.Adam(1e-3), objective=ELBO(beta=beta))  # XLA if it pays
            start = time.perf_counter()
            train(model, x_train, epochs, run_dir / f"beta{beta:g}", verbose=0, seed=seed)  # resumable
            seconds = time.perf_counter() - start
            measured = rate_and_distortion(model, x_eval, seed=seed)
            rate, distortion = measured["rate"], measured["distortion"]
            with replaced_atomically(path) as partial, partial.open("wb") as f:
                np.savez(
                    f,
                    beta=beta,
                    rate=rate,
                    distortion=distortion,
                    seconds=seconds,
                    samples=model.sample(16, seed=seed),
                    reconstructions=model.reconstruct(x_eval[:8]),
                    settings=json.dumps(settings),
                )
            if log:
                print(f"beta={beta:5g}  rate {rate:7.2f}  distortion {distortion:7.2f}  ({seconds:.0f} s)", flush=True)
        try:
            with np.load(path) as f:
                row = {key: f[key] for key in f.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"{path} is not a readable result of beta_sweep ({err}): delete it to train again"
            ) from err
        row = {k: (v.item() if v.ndim == 0 else v) for k, v in row.items()}
        made_with = json.loads(row.pop("settings", "{}"))
        if made_with != settings:
            differ = ", ".join(
                f"{k}: {made_with.get(k)!r} there, {v!r} now" for k, v in settings.items() if made_with.get(k) != v
            )
            raise ValueError(
                f"{path} was made with other settings ({differ}): use a new run_dir, or delete the file to train again"
            )
        row["elbo"] = -(row["rate"] + row["distortion"])
        rows.append(row)
    return rows


def results_url(name: str) -> str:
    """Where a released vaelib downloads the results file ``name``: the repository at tag ``v<version>``."""
    raw = REPOSITORY_URL.replace("https://github.com/", "https://raw.githubusercontent.com/")
    return f"{raw}/v{_version()}/results/{name}"


def results_file(name: str, results_dir: str | os.PathLike | None = None) -> Path:
    """The path of the committed results file ``name`` (e.g. ``"aevb_fig2.csv"``).

    Looks in ``results_dir``, then in the folder named by ``VAELIB_RESULTS``, then in ``results/`` in the
    working directory or any folder above it (a chapter runs in ``book/`` of a clone), and last downloads
    the file into the Keras cache (Colab, where only vaelib is installed) from the repository's tag
    ``v<vaelib.__version__>`` (:func:`results_url`), checking it against the SHA-256 this version of
    vaelib records for it.

    Raises:
        ValueError: ``name`` is not a results file of this version of vaelib, or the download does not
            have the recorded SHA-256 (the message names the file and what to do).
        FileNotFoundError: no copy was found and the download failed; says where it looked.
    """
    from vaelib._results_sha256 import RESULTS_SHA256

    if not name or Path(name).name != name:
        raise ValueError(f"name must be a file name such as 'aevb_fig2.csv', got {name!r}")
    places = [Path(p) for p in (results_dir, os.environ.get(RESULTS_ENV)) if p]
    places += [folder / "results" for folder in (Path.cwd(), *Path.cwd().parents)]
    for folder in places:
        if (folder / name).is_file():
            return folder / name
    if name not in RESULTS_SHA256:
        raise ValueError(f"{name} is not a results file of vaelib; they are {', '.join(sorted(RESULTS_SHA256))}")
    url = results_url(name)
    try:
        return Path(keras.utils.get_file(f"vaelib-{_version()}-{name}", url, file_hash=RESULTS_SHA256[name]))
    except ValueError as err:  # Keras: the downloaded file does not have the hash
        raise ValueError(
            f"the results file {name} downloaded from {url} does not have the SHA-256 that vaelib {_version()} "
            f"records for it ({err}). Delete it from the Keras cache (datasets/ under KERAS_HOME or ~/.keras) "
            f"and run again; if it persists, run the chapter from a clone of the repository at tag v{_version()}."
        ) from err
    except Exception as err:  # no network, no such file, proxy, ...
        raise FileNotFoundError(
            f"results file {name} not found in {', '.join(map(str, places[:3]))} (or any results/ folder above the "
            f"working directory), and downloading {url} failed ({err}). Run the chapter from a clone of the "
            f"repository, or set {RESULTS_ENV} to its results/ folder."
        ) from err


def _version() -> str:
    import vaelib

    return vaelib.__version__

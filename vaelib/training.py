r"""The run engine: training that survives being killed and resumes exactly where it stopped.

Every long computation of vaelib (:func:`vaelib.train` and the CLI built on it, and the experiments of
:mod:`vaelib.paper`) keeps its run in a folder of its own:

* ``run.lock`` — held by the process that trains the run, for as long as it lives: a second process
  asking for the same folder gets :class:`RunInUse` instead of overwriting the first one's checkpoints
  (on systems with ``fcntl``, that is not on Windows);
* ``config.json`` — the run's whole configuration (model, optimizer, objective, data fingerprint,
  batch size, binarisation, seed, ...). It is written, atomically, only after every option has been
  checked; a folder whose ``config.json`` differs from what is asked for is refused with an error that
  names the differing settings, never reused silently.
* ``checkpoint-*.weights.h5`` — the weights and the optimizer's state, which includes its step count
  :math:`t`;
* ``state.json`` — the progress, in one form for every run (:data:`STATE_FIELDS`): ``steps`` (minibatches
  trained on), ``epochs`` (passes completed, for runs that count them), ``seconds`` (training time, summed
  over sittings), ``history`` (per-epoch metrics), ``rows`` (measurements along the way), ``notes`` (what
  the run settled once, e.g. a chosen step size) and ``checkpoint``, the name of the checkpoint that goes
  with them. A new checkpoint is written to a new file and flushed to disk; only then is ``state.json``
  replaced (atomically) to name it, and only then is the previous checkpoint deleted. A kill at any
  moment, in the middle of a save included, leaves a complete checkpoint with the progress that matches it.

:class:`Run` is the engine: it opens a folder, restores a model from its checkpoint (or saves a new run's
initial weights), times training and saves. :func:`vaelib.train` and the CLI run on it, and so do the paper's
experiments (:mod:`vaelib.paper`).

Randomness is a function of the configuration and of the position in the run, not of a random state
that lives only in memory: the data order and binarisation of step :math:`t` come from
:func:`vaelib.make_stream`, the noise :math:`\epsilon` of step :math:`t` from the model's
``noise_seed`` and :math:`t` (see :meth:`vaelib.VAE.compile`), and a new run saves its initial weights
before the first step. So a run that is killed, at any moment, and started again ends with the same
weights and the same history as a run that was never interrupted (on the same machine and software).

:func:`vaelib.train` also writes ``history.csv`` (one row per epoch, nats per example) and the final
``model.keras``, loadable with ``keras.models.load_model`` after ``import vaelib``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vaelib._checks import check_positive_int
from vaelib._files import fcntl, fsync_file, replaced_atomically, save_model_atomically, write_text_atomically
from vaelib.data import check_stream_options, make_stream, steps_per_epoch

__all__ = [
    "train",
    "Run",
    "open_run",
    "RunInUse",
    "model_config",
    "data_sha256",
    "read_state",
    "load_checkpoint",
    "save_checkpoint",
    "EpochCheckpoint",
    "StopOnNaN",
    "STATE_FIELDS",
]

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
#: The fields of every run's ``state.json``, with their types.
STATE_FIELDS = {
    "steps": int,
    "epochs": int,
    "seconds": float,
    "checkpoint": str,
    "history": dict,
    "rows": list,
    "notes": dict,
}
HISTORY_FILE = "history.csv"
MODEL_FILE = "model.keras"
LOCK_FILE = "run.lock"
_CLAIMED: dict[Path, Any] = {}  # the run folders this process holds, with their open lock files


class RunInUse(RuntimeError):
    """Another process is training in the run folder asked for."""


def _claim(run_dir: Path) -> None:
    """Lock ``run_dir`` for this process until it exits; :class:`RunInUse` if another process holds it."""
    key = run_dir.resolve()
    if fcntl is None or key in _CLAIMED:
        return
    lock = open(run_dir / LOCK_FILE, "w")  # noqa: SIM115 -- held open for the life of the process
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise RunInUse(
            f"{run_dir} is in use: another process is training this run. Wait for it to finish, or stop it "
            "(it resumes from its last checkpoint), or use another run folder"
        ) from None
    _CLAIMED[key] = lock


def data_sha256(*arrays: np.ndarray) -> str:
    """SHA-256 of the arrays' shapes, dtypes and values: the fingerprint a run records of its data."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def _differences(saved: Any, asked: Any, prefix: str = "") -> list[str]:
    """The settings that differ between two configurations, as ``name: saved -> asked`` lines."""
    if isinstance(saved, dict) and isinstance(asked, dict):
        return [
            line
            for key in sorted(set(saved) | set(asked), key=str)
            for line in _differences(saved.get(key), asked.get(key), f"{prefix}{key}.")
        ]
    return [] if saved == asked else [f"{prefix.rstrip('.')}: the run has {saved!r}, asked for {asked!r}"]


def open_run(run_dir: str | os.PathLike, config: Mapping[str, Any]) -> Path:
    """Claim ``run_dir`` for a run with this ``config``: create it, or check that it holds the same run.

    ``config`` is the run's whole configuration (JSON-able); ``config.json`` records it. Call this only
    after every option has been checked, so a command that fails on its options writes nothing.

    The folder stays claimed by this process (``run.lock``) until it exits.

    Raises:
        RunInUse: another process is training in ``run_dir``.
        ValueError: ``run_dir`` holds a run with another configuration (the message names each differing
            setting and the folder), a corrupt ``config.json``, or files that are not a run's.
    """
    run_dir = Path(run_dir)
    config = _as_json(dict(config))
    path = run_dir / CONFIG_FILE
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except ValueError as err:
            raise ValueError(f"{path} is corrupt ({err}): use a new run folder, or delete {run_dir}") from err
        differ = _differences(saved, config)
        if differ:
            raise ValueError(
                f"{run_dir} holds a run with other settings:\n  " + "\n  ".join(differ) + "\n"
                "Use a new run folder for these settings, or the settings of the run to continue it."
            )
        _claim(run_dir)
        return run_dir
    if run_dir.exists() and (not run_dir.is_dir() or any(p.name != LOCK_FILE for p in run_dir.iterdir())):
        raise ValueError(f"{run_dir} is not empty and holds no {CONFIG_FILE}, so it is not a run: use a new folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    _claim(run_dir)
    write_text_atomically(path, json.dumps(config, indent=1))
    return run_dir


def _unnamed(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "name"}


def _layers(network: keras.layers.Layer) -> list[dict[str, Any]]:
    """A network's leaf layers in order, each as its class and its configuration without its name."""
    leaves = [layer for layer in network._flatten_layers(include_self=False) if not layer._layers]
    return [{"class": type(layer).__name__, "config": _unnamed(layer.get_config())} for layer in leaves]


def model_config(model: keras.Model) -> dict[str, Any]:
    """What a run records of its model: class, architecture, objective and optimizer.

    Names are left out: Keras numbers the names of new layers, so the same model built again (to resume a
    run) has other names. A factory's model records the factory's options; a model of other networks
    records each network's layers in order (class and configuration), and the likelihood and the prior.
    """
    architecture = _unnamed(model.get_config())
    if "likelihood" in architecture:
        likelihood = dict(architecture["likelihood"])
        architecture["likelihood"] = dict(likelihood, config=_unnamed(likelihood.get("config", {})))
    for part in ("encoder", "decoder"):
        if part in architecture:
            architecture[part] = _layers(getattr(model, part))
    compiled = {k: v for k, v in (model.get_compile_config() or {}).items() if k not in ("optimizer", "seed")}
    optimizer = keras.optimizers.serialize(model.optimizer)
    optimizer["config"] = _unnamed(optimizer["config"])
    return _as_json(
        {"class": type(model).__name__, "architecture": architecture, "objective": compiled, "optimizer": optimizer}
    )


def new_state() -> dict[str, Any]:
    """The state of a run that has not trained yet."""
    return {"steps": 0, "epochs": 0, "seconds": 0.0, "checkpoint": "", "history": {}, "rows": [], "notes": {}}


def read_state(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The saved state of ``run_dir`` (:data:`STATE_FIELDS`), or ``None`` if it has none yet.

    Raises:
        ValueError: ``state.json`` is not JSON, or lacks a field or has one of another type.
    """
    path = Path(run_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        for name, kind in STATE_FIELDS.items():
            if not isinstance(state[name], kind) or isinstance(state[name], bool):
                if not (kind is float and isinstance(state[name], int)):
                    raise TypeError(f"{name} is {state[name]!r}, not a {kind.__name__}")
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is corrupt ({err}); delete the run directory {run_dir} to start again") from err
    state["seconds"] = float(state["seconds"])
    return state


class Run:
    """A run folder: its configuration, its state (:data:`STATE_FIELDS`) and its checkpoints.

    ``Run(run_dir, config)`` opens the folder (:func:`open_run`: created, or checked to hold the same run, and
    claimed by this process) and reads its state. Then :meth:`restore` a model, train it (inside
    :meth:`timed`, to count the training time), update ``state`` and :meth:`save`.
    """

    def __init__(self, run_dir: str | os.PathLike, config: Mapping[str, Any]) -> None:
        self.dir = open_run(run_dir, config)
        self.state = read_state(self.dir) or new_state()

    @property
    def started(self) -> bool:
        """Whether the run has a checkpoint (its initial weights at least)."""
        return bool(self.state["checkpoint"])

    def restore(self, model: keras.Model) -> None:
        """Load the run's checkpoint into ``model`` (compiled); a new run saves ``model``'s weights as step 0."""
        if self.started:
            load_checkpoint(model, self.dir / self.state["checkpoint"])
        else:  # its initial weights, so a kill before the first save restarts from them
            if getattr(model, "optimizer", None) is None:
                raise ValueError("compile() the model before training it in a run: the run saves its optimizer")
            model.optimizer.build(model.trainable_variables)
            self.save(model)

    def save(self, model: keras.Model) -> None:
        """Checkpoint ``model`` with the state as it is now (its ``steps`` name the file)."""
        save_checkpoint(model, self.dir, self.state, f"checkpoint-{self.state['steps']:011d}.weights.h5")

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """Add the time the block takes to ``state["seconds"]``."""
        start = time.perf_counter()
        yield
        self.state["seconds"] = round(self.state["seconds"] + time.perf_counter() - start, 2)

    def save_model(self, model: keras.Model, name: str = MODEL_FILE) -> None:
        """Save ``model`` as a ``.keras`` file in the run's folder (atomically)."""
        save_model_atomically(model, self.dir / name)


def load_checkpoint(model: keras.Model, path: str | os.PathLike) -> None:
    """Load a checkpoint's weights and optimizer state into ``model`` (compiled, of the same architecture).

    Raises:
        ValueError: the model is not compiled, or the checkpoint is missing, corrupt or from a different model.
    """
    path = Path(path)
    if getattr(model, "optimizer", None) is None:
        raise ValueError("compile() the model before resuming it, so the optimizer state can be restored")
    model.optimizer.build(model.trainable_variables)  # create the slots the checkpoint fills
    try:
        model.load_weights(path)
    except Exception as err:  # h5py/keras raise many types for truncated or mismatched files
        raise ValueError(
            f"cannot restore the checkpoint {path}: it is missing, corrupt or from a different model ({err}). "
            f"Delete the run directory {path.parent} to start again."
        ) from err


def save_checkpoint(model: keras.Model, run_dir: Path, state: dict[str, Any], name: str) -> None:
    """Save weights and optimizer state to a new file ``name``, point ``state.json`` at it, drop the old one.

    ``state`` is the run's whole state; its ``"checkpoint"`` (if any) names the previous file. The new file
    is complete before ``state.json`` (written atomically) refers to it, and the previous one is deleted
    only after, so a kill at any moment, during a save included, leaves ``state.json`` naming a complete
    checkpoint that matches its progress.
    """
    previous = state.get("checkpoint")
    model.save_weights(run_dir / name)
    fsync_file(run_dir / name)  # on disk before state.json names it
    state["checkpoint"] = name
    write_text_atomically(run_dir / STATE_FILE, json.dumps(state, indent=1))
    if previous and previous != name:
        (run_dir / previous).unlink(missing_ok=True)


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch of ``fit``: record its logs and time in the run's state, checkpoint, write ``history.csv``."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        state = self.run.state
        for key, value in (logs or {}).items():
            state["history"].setdefault(key, []).append(float(value))
        state["epochs"] = epoch + 1
        state["steps"] = int(self.model.optimizer.iterations)
        state["seconds"] = round(state["seconds"] + time.perf_counter() - self._start, 2)
        self.run.save(self.model)
        self._write_history()

    def _write_history(self) -> None:
        history = self.run.state["history"]
        keys = sorted(history)
        rows = zip(*(history[k] for k in keys))
        with replaced_atomically(self.run.dir / HISTORY_FILE) as partial, partial.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", *keys])
            for epoch, row in enumerate(rows, start=1):
                writer.writerow([epoch, *row])


class StopOnNaN(keras.callbacks.Callback):
    """Raise a clear error as soon as the training loss is NaN or infinite (the last checkpoint is kept)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise ValueError(
                f"training diverged: the loss is {float(loss)} at batch {batch}. Lower the learning rate or "
                "check the data; the last completed epoch is saved in the run directory."
            )


def _fit_epochs_exactly(model: keras.Model, steps: int) -> None:
    """Make ``steps_per_execution`` divide the steps of an epoch (Keras would run past the epoch's end)."""
    per_call = max(int(model.steps_per_execution), 1)
    divisor = max(d for d in range(1, min(per_call, steps) + 1) if steps % d == 0)
    if divisor != per_call:
        model.steps_per_execution = divisor
        model.train_function = None


def train(
    model: keras.Model,
    train_data: Any,
    epochs: int,
    run_dir: str | os.PathLike,
    validation_data: Any = None,
    verbose: int | str = "auto",
    callbacks: list[keras.callbacks.Callback] | None = None,
    *,
    batch_size: int = 100,
    binarize: str | None = "default",
    seed: int = 0,
    config: Mapping[str, Any] | None = None,
) -> dict[str, list[float]]:
    """``fit`` a compiled model for ``epochs`` epochs in all, checkpointing into ``run_dir`` every epoch.

    Rerunning with the same ``run_dir`` resumes after the last completed epoch; a finished run returns
    at once (raise ``epochs`` to train longer). With ``train_data`` an array, the minibatches come from
    :func:`vaelib.make_stream` (``batch_size``, ``binarize``, ``seed``) and the model's noise from
    ``seed`` (it sets ``model.noise_seed``), so a run killed at any moment and resumed ends with the same
    weights and history as an uninterrupted run. A ``tf.data.Dataset`` is accepted too, but its data order
    restarts when the run resumes, so the resumed run differs from an uninterrupted one.

    Args:
        model: any compiled vaelib model (a :class:`vaelib.VAE` with any networks and likelihood, or an
            :class:`vaelib.Autoencoder`), freshly built: a new run saves its weights before the
            first step, a resumed run loads its checkpoint.
        train_data: data of shape ``(N, *data_shape)`` within the likelihood's support, or a ``tf.data.Dataset``.
        epochs: total passes over ``train_data``, resumed ones included.
        run_dir: the run's folder (see the module's description).
        validation_data: passed to ``fit``; its metrics are recorded as ``val_*``.
        verbose, callbacks: passed to ``fit``.
        batch_size, binarize, seed: the stream's :math:`M`, binarisation (``"default"``: what the model's
            likelihood asks for) and seed (arrays only; ``seed`` also seeds the noise).
        config: more settings to record in ``config.json`` and check on resume (the CLI's options).

    Returns:
        The whole history, resumed epochs included. The final model is saved as ``run_dir/model.keras``.

    Raises:
        ValueError: bad options or data, or ``run_dir`` holds a run with other settings or a corrupt file.
    """
    epochs = check_positive_int(epochs, "epochs")
    if getattr(model, "optimizer", None) is None:
        raise ValueError("compile() the model before train(): the run records and restores its optimizer")
    if isinstance(train_data, tf.data.Dataset):
        model._check_fit_input(train_data)
        steps = None
        data_record: dict[str, Any] = {
            "pipeline": "tf.data.Dataset (not fingerprinted; its data order restarts on resume)"
        }
    else:
        x = model.check_data(train_data).numpy()
        _, batch_size, binarize, seed = check_stream_options(model, batch_size, binarize, seed)
        steps = steps_per_epoch(len(x), batch_size)
        data_record = {
            "sha256": data_sha256(x),
            "shape": list(x.shape),
            "batch_size": batch_size,
            "binarize": binarize,
            "seed": seed,
        }
    run = Run(run_dir, {"model": model_config(model), **(config or {}), "data": data_record})
    model.noise_seed = seed
    run.restore(model)
    if run.state["epochs"] < epochs:
        if steps is None:
            data, fit_options = train_data, {}
        else:
            _fit_epochs_exactly(model, steps)
            data = make_stream(x, model, batch_size, binarize, seed, start_step=int(model.optimizer.iterations))
            fit_options = {"steps_per_epoch": steps}
        model.fit(
            data,
            epochs=epochs,
            initial_epoch=run.state["epochs"],
            validation_data=validation_data,
            verbose=verbose,
            callbacks=[StopOnNaN(), EpochCheckpoint(run), *(callbacks or [])],
            **fit_options,
        )
    run.save_model(model)
    return run.state["history"]

r"""The run engine: training that survives being killed and resumes exactly where it stopped.

Every long computation of vaelib (:func:`train` and the CLI built on it, and the experiments of
:mod:`vaelib.reproduce`) keeps its run in a folder of its own:

* ``run.lock`` — held by the process that trains the run, for as long as it lives: a second process
  asking for the same folder gets :class:`RunInUse` instead of overwriting the first one's checkpoints
  (on systems with ``fcntl``, that is not on Windows);
* ``config.json`` — the run's whole configuration (model, optimizer, objective, data fingerprint,
  batch size, binarisation, seed, ...). It is written, atomically, only after every option has been
  checked; a folder whose ``config.json`` differs from what is asked for is refused with an error that
  names the differing settings, never reused silently.
* ``checkpoint-*.weights.h5`` — the weights and the optimizer's state, which includes its step count
  :math:`t`;
* ``state.json`` — the progress (epochs, history, ...) and the name of the checkpoint that goes with it.
  A new checkpoint is written to a new file and flushed to disk; only then is ``state.json`` replaced
  (atomically) to name it, and only then is the previous checkpoint deleted. A kill at any moment, in
  the middle of a save included, leaves a complete checkpoint with the progress that matches it.

Randomness is a function of the configuration and of the position in the run, not of a random state
that lives only in memory: the data order and binarisation of step :math:`t` come from
:func:`vaelib.data.make_stream`, the noise :math:`\epsilon` of step :math:`t` from the model's
``noise_seed`` and :math:`t` (see :meth:`vaelib.model.VAE.compile`), and a new run saves its initial weights
before the first step. So a run that is killed, at any moment, and started again ends with the same
weights and the same history as a run that was never interrupted (on the same machine and software).

:func:`train` also writes ``history.csv`` (one row per epoch, nats per example) and the final
``model.keras``, loadable with ``keras.models.load_model`` after ``import vaelib``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Mapping
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
    "resume",
    "open_run",
    "RunInUse",
    "model_config",
    "data_sha256",
    "load_checkpoint",
    "save_checkpoint",
    "EpochCheckpoint",
    "StopOnNaN",
]

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
STATE_FIELDS = {"epoch": int, "checkpoint": str, "history": dict}  # what train() keeps in state.json
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
        if isinstance(saved, dict) and "model" in config and "model" not in saved:
            raise ValueError(
                f"{run_dir} holds a run recorded by an earlier vaelib ({CONFIG_FILE} has no model or data "
                "fingerprint, so resuming it could not be checked): use a new run folder"
            )
        differ = _differences(saved, config)
        if differ:
            raise ValueError(
                f"{run_dir} holds a run with other settings:\n  " + "\n  ".join(differ) + "\n"
                "Use a new run folder for these settings, or the settings of the run to continue it."
            )
        _claim(run_dir)
        return run_dir
    if run_dir.exists() and (
        not run_dir.is_dir() or any(p.name not in (STATE_FILE, LOCK_FILE) for p in run_dir.iterdir())
    ):
        if not (run_dir / STATE_FILE).exists():  # a run from before config.json was recorded is adopted
            raise ValueError(f"{run_dir} is not empty and holds no {CONFIG_FILE}, so it is not a run: use a new folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    _claim(run_dir)
    write_text_atomically(path, json.dumps(config, indent=1))
    return run_dir


def model_config(model: keras.Model) -> dict[str, Any]:
    """What a run records of its model: class, architecture, objective and optimizer (names left out)."""
    architecture = {k: v for k, v in model.get_config().items() if k != "name"}
    compiled = {k: v for k, v in (model.get_compile_config() or {}).items() if k not in ("optimizer", "seed")}
    optimizer = keras.optimizers.serialize(model.optimizer)
    optimizer["config"] = {k: v for k, v in optimizer["config"].items() if k != "name"}
    return _as_json(
        {"class": type(model).__name__, "architecture": architecture, "objective": compiled, "optimizer": optimizer}
    )


def read_state(run_dir: str | os.PathLike, fields: Mapping[str, type] = STATE_FIELDS) -> dict[str, Any] | None:
    """The saved training state of ``run_dir``, or ``None`` if it has none yet.

    Raises:
        ValueError: ``state.json`` is not JSON, or lacks one of ``fields`` (name -> type) or has it
            of another type.
    """
    path = Path(run_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        for name, kind in fields.items():
            kind(state[name])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is corrupt ({err}); delete the run directory {run_dir} to start again") from err
    return state


def resume(model: keras.Model, run_dir: str | os.PathLike) -> tuple[int, dict[str, list[float]]]:
    """Restore ``model`` (compiled) from the last checkpoint in ``run_dir``.

    Returns the number of completed epochs and the history so far; ``(0, {})`` for a new run.

    Raises:
        ValueError: the checkpoint is missing, corrupt or from a different model.
    """
    state = read_state(run_dir)
    if state is None:
        return 0, {}
    load_checkpoint(model, Path(run_dir) / state["checkpoint"])
    return int(state["epoch"]), {k: list(v) for k, v in state["history"].items()}


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
    """Save model and optimizer state after every epoch, then record it in ``state.json``."""

    def __init__(self, run_dir: str | os.PathLike, history: dict[str, list[float]] | None = None) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.previous: str | None = None  # the checkpoint file state.json names

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if self.previous is None:  # the first epoch of this session: the checkpoint a resumed run started from
            self.previous = (read_state(self.run_dir) or {}).get("checkpoint", "")
        state = {"epoch": epoch + 1, "checkpoint": self.previous, "history": self.history}
        save_checkpoint(self.model, self.run_dir, state, f"checkpoint-{epoch + 1:04d}.weights.h5")
        self.previous = state["checkpoint"]
        self._write_history()

    def _write_history(self) -> None:
        keys = sorted(self.history)
        rows = zip(*(self.history[k] for k in keys))
        with replaced_atomically(self.run_dir / HISTORY_FILE) as partial, partial.open("w", newline="") as f:
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
    binarize: str | None = "dynamic",
    seed: int = 0,
    config: Mapping[str, Any] | None = None,
) -> dict[str, list[float]]:
    """``fit`` a compiled model for ``epochs`` epochs in all, checkpointing into ``run_dir`` every epoch.

    Rerunning with the same ``run_dir`` resumes after the last completed epoch; a finished run returns
    at once (raise ``epochs`` to train longer). With ``train_data`` an array of images, the minibatches
    come from :func:`vaelib.data.make_stream` (``batch_size``, ``binarize``, ``seed``) and the model's
    noise from ``seed`` (it sets ``model.noise_seed``), so a run killed at any moment and resumed ends
    with the same weights and history as an uninterrupted run. A ``tf.data.Dataset`` is accepted too,
    but its data order restarts when the run resumes, so the resumed run differs from an uninterrupted
    one.

    Args:
        model: a compiled :class:`vaelib.model.VAE` (or :class:`vaelib.autoencoder.Autoencoder`), freshly
            built: a new run saves its weights before the first step, a resumed run loads its checkpoint.
        train_data: images of shape ``(N, *data_shape)`` in [0, 1], or a ``tf.data.Dataset``.
        epochs: total passes over ``train_data``, resumed ones included.
        run_dir: the run's folder (see the module's description).
        validation_data: passed to ``fit``; its metrics are recorded as ``val_*``.
        verbose, callbacks: passed to ``fit``.
        batch_size, binarize, seed: the stream's :math:`M`, binarisation and seed (arrays only; ``seed``
            also seeds the noise).
        config: more settings to record in ``config.json`` and check on resume (the CLI's options).

    Returns:
        The whole history, resumed epochs included. The final model is saved as ``run_dir/model.keras``.

    Raises:
        ValueError: bad options, or ``run_dir`` holds a run with other settings or a corrupt file.
    """
    epochs = check_positive_int(epochs, "epochs")
    if getattr(model, "optimizer", None) is None:
        raise ValueError("compile() the model before train(): the run records and restores its optimizer")
    run_config: dict[str, Any] = {"model": model_config(model), **(config or {})}
    if isinstance(train_data, tf.data.Dataset):
        model._check_fit_input(train_data)
        steps = None
        run_config["data"] = {"pipeline": "tf.data.Dataset (not fingerprinted; its data order restarts on resume)"}
    else:
        x = model.check_data(train_data).numpy()
        batch_size, binarize, seed = check_stream_options(batch_size, binarize, seed)
        steps = steps_per_epoch(len(x), batch_size)
        run_config["data"] = {
            "sha256": data_sha256(x),
            "shape": list(x.shape),
            "batch_size": batch_size,
            "binarize": binarize,
            "seed": seed,
        }
    run_dir = open_run(run_dir, run_config)
    model.noise_seed = seed
    initial_epoch, history = resume(model, run_dir)
    checkpoint = EpochCheckpoint(run_dir, history)
    if read_state(run_dir) is None:  # a new run: save the initial weights, so a kill in epoch 1 restarts from them
        model.optimizer.build(model.trainable_variables)
        save_checkpoint(model, run_dir, {"epoch": 0, "checkpoint": "", "history": {}}, "checkpoint-0000.weights.h5")
        checkpoint.previous = "checkpoint-0000.weights.h5"
    if initial_epoch < epochs:
        if steps is None:
            data, fit_options = train_data, {}
        else:
            _fit_epochs_exactly(model, steps)
            data = make_stream(x, batch_size, binarize, seed, start_step=int(model.optimizer.iterations))
            fit_options = {"steps_per_epoch": steps}
        model.fit(
            data,
            epochs=epochs,
            initial_epoch=initial_epoch,
            validation_data=validation_data,
            verbose=verbose,
            callbacks=[StopOnNaN(), checkpoint, *(callbacks or [])],
            **fit_options,
        )
    save_model_atomically(model, run_dir / MODEL_FILE)
    return checkpoint.history

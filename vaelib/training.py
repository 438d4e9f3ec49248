"""Training that survives being killed: checkpoints every epoch, resumes where it stopped.

A run directory holds

* ``checkpoint-EEEE.weights.h5`` — model and optimizer state after epoch ``EEEE``;
* ``state.json`` — the last completed epoch, its checkpoint file and the history so far, written
  atomically *after* the checkpoint, so it never points at a half-written file;
* ``history.csv`` — one row per epoch (metrics in nats per example), derived from ``state.json``;
* ``model.keras`` — the final model, loadable with ``keras.models.load_model`` after ``import vaelib``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from vaelib._checks import check_positive_int
from vaelib._files import replaced_atomically, write_text_atomically

__all__ = ["train", "resume", "load_checkpoint", "save_checkpoint", "EpochCheckpoint", "StopOnNaN"]

STATE_FILE = "state.json"
STATE_FIELDS = {"epoch": int, "checkpoint": str, "history": dict}  # what train() keeps in state.json
HISTORY_FILE = "history.csv"
MODEL_FILE = "model.keras"


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


def train(
    model: keras.Model,
    train_data: Any,
    epochs: int,
    run_dir: str | os.PathLike,
    validation_data: Any = None,
    verbose: int | str = "auto",
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> dict[str, list[float]]:
    """``fit`` a compiled model for ``epochs`` epochs in all, checkpointing into ``run_dir``.

    Rerunning with the same ``run_dir`` resumes after the last completed epoch (with the optimizer's
    state), so a killed run loses at most one epoch. Returns the whole history, resumed epochs included,
    and saves the final model as ``run_dir/model.keras``.
    """
    epochs = check_positive_int(epochs, "epochs")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    initial_epoch, history = resume(model, run_dir)
    checkpoint = EpochCheckpoint(run_dir, history)
    if initial_epoch < epochs:
        model.fit(
            train_data,
            epochs=epochs,
            initial_epoch=initial_epoch,
            validation_data=validation_data,
            verbose=verbose,
            callbacks=[StopOnNaN(), checkpoint, *(callbacks or [])],
        )
    model.save(run_dir / MODEL_FILE)
    return checkpoint.history

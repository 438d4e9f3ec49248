"""Fault injection: runs killed at random moments end where uninterrupted runs end; damaged files are clear errors.

A run is started, killed with SIGKILL at a seeded random moment, started again, killed again, ...
until it finishes; its final weights and history are compared with a run that was never interrupted.
The kill moments are drawn uniformly over the length of an uninterrupted run (start-up included), so
they fall in TensorFlow's start-up, in training steps, in evaluations and in the middle of saves.
Damaged files (a truncated checkpoint or NPZ, a corrupt config or state) are errors that name the
file and what to do, and leave the user's files as they were; a tampered ``mnist.npz`` is tested in
``test_data.py``.
"""

import concurrent.futures
import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import vaelib
from vaelib.training import RunInUse, load_checkpoint, open_run, read_state

KILLS = 20  # kills per kind of run
MAX_KILLS = 3 * KILLS  # the most, when too few of them hit a run after its first checkpoint
TOLERANCE = 1e-5  # weights and history of a resumed run against an uninterrupted one (CPU, fixed seed)

CLI_OPTIONS = [
    "--train-size", "1200", "--test-size", "200", "--latent-dim", "2", "--hidden", "32",
    "--batch-size", "50", "--epochs", "8", "--seed", "4", "--verbose", "0",
]  # fmt: skip

EXPERIMENT = """
import sys
import vaelib
from vaelib import paper

(x_train, _), (x_test, _) = vaelib.load_mnist()
paper.aevb_curve(sys.argv[1], 3, x_train[:2000], x_test[:300], max_samples=12000, step_size=0.1, first=2000)
"""

HOLD = """
import sys
import time
from vaelib.training import open_run

open_run(sys.argv[1], {"run": "held"})
print("claimed", flush=True)
time.sleep(600)
"""


def _cli(run: Path) -> list[str]:
    return [sys.executable, "-m", "vaelib", "train", str(run), *CLI_OPTIONS]


def _experiment(script: Path):
    return lambda run: [sys.executable, str(script), str(run)]


def _start(command: list[str]) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finish(command: list[str]) -> float:
    start = time.perf_counter()
    proc = _start(command)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return time.perf_counter() - start


def _assert_consistent(run: Path) -> None:
    """What a kill may leave: nothing, or a config, and a state that names a complete checkpoint."""
    if (run / "config.json").exists():
        json.loads((run / "config.json").read_text())
    if (run / "state.json").exists():
        state = read_state(run)
        assert (run / state["checkpoint"]).is_file(), f"state.json names a missing checkpoint {state}"


def _weights(run: Path) -> list[np.ndarray]:
    return keras.models.load_model(run / "model.keras").get_weights()


def _history(run: Path) -> np.ndarray:
    if (run / "history.csv").exists():  # CLI: one row per epoch, the epoch number first
        rows = list(csv.reader((run / "history.csv").open()))
        epochs = [int(r[0]) for r in rows[1:]]
        assert epochs == list(range(1, len(epochs) + 1)), f"epochs lost or repeated: {epochs}"
        return np.array([[float(v) for v in r] for r in rows[1:]])
    rows = json.loads((run / "state.json").read_text())["rows"]  # experiment: one row per evaluation point
    return np.array([[r["samples"], r["train_bound"], r["test_bound"]] for r in rows])


def _kill_and_resume(command, folder: Path, seed: int) -> dict[str, float]:
    """Kill runs ``KILLS`` times in all at random moments; check every run that finishes.

    Returns how many runs finished, the length of an uninterrupted run and how many kills hit a run
    that had already saved a checkpoint (the others hit its start-up).
    """
    reference = folder / "uninterrupted"
    length = _finish(command(reference))
    expected_weights, expected_history = _weights(reference), _history(reference)
    rng = np.random.default_rng(seed)
    kills, runs, after_a_checkpoint = 0, 0, 0

    def more_kills() -> bool:
        # KILLS in all; more (up to MAX_KILLS) while fewer than a quarter hit a run that had saved a checkpoint:
        # on a machine whose load changes, the moment of the first checkpoint moves, and kills that only ever
        # hit TensorFlow's start-up would test nothing of resuming
        return kills < KILLS or (after_a_checkpoint < KILLS // 4 and kills < MAX_KILLS)

    while more_kills():
        runs += 1
        run = folder / f"killed{runs}"
        while True:
            proc = _start(command(run))
            try:
                out, err = proc.communicate(timeout=rng.uniform(0, length) if more_kills() else 600)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                kills += 1
                _assert_consistent(run)
                after_a_checkpoint += (run / "state.json").exists()
                continue
            assert proc.returncode == 0, err[-3000:]
            break
        for got, want in zip(_weights(run), expected_weights, strict=True):
            np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)
        history = _history(run)
        assert history.shape == expected_history.shape
        np.testing.assert_allclose(history, expected_history, rtol=0, atol=TOLERANCE)
    return {"runs": runs, "kills": kills, "seconds": length, "kills_after_a_checkpoint": after_a_checkpoint}


@pytest.mark.slow
def test_runs_killed_at_random_moments_end_as_the_uninterrupted_run(tmp_path):
    """A CLI run and an experiment run (aevb_curve), side by side, each killed 20 times."""
    script = tmp_path / "experiment.py"
    script.write_text(EXPERIMENT)
    (tmp_path / "cli").mkdir()
    (tmp_path / "experiment").mkdir()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        cli = pool.submit(_kill_and_resume, _cli, tmp_path / "cli", 20261125)
        experiment = pool.submit(_kill_and_resume, _experiment(script), tmp_path / "experiment", 13126114)
        outcomes = {"cli": cli.result(), "experiment": experiment.result()}
    print(outcomes)
    for outcome in outcomes.values():  # most kills hit training, not only TensorFlow's start-up
        assert outcome["kills_after_a_checkpoint"] >= KILLS // 4, outcomes


# ----------------------------------------------------------------- damaged files


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _small_model() -> vaelib.VAE:
    keras.utils.set_random_seed(0)
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(16,))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


@pytest.fixture
def finished_run(tmp_path, binary_batch):
    run = tmp_path / "run"
    vaelib.train(_small_model(), binary_batch, 2, run, verbose=0, batch_size=8, binarize=None)
    return run


@pytest.mark.parametrize(
    "damage, file, message",
    [
        ("truncate", "checkpoint", "cannot restore the checkpoint"),
        ("garbage", "state.json", "state.json is corrupt"),
        ("drop-field", "state.json", "state.json is corrupt"),
        ("garbage", "config.json", "config.json is corrupt"),
    ],
)
def test_a_damaged_run_file_is_an_error_that_names_it_and_changes_nothing(
    finished_run, binary_batch, damage, file, message
):
    state = read_state(finished_run)
    path = finished_run / (state["checkpoint"] if file == "checkpoint" else file)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "garbage":
        path.write_text("{ this is not json")
    else:
        path.write_text(json.dumps({"epochs": 2, "history": {}}))  # no checkpoint named
    before = _snapshot(finished_run)
    with pytest.raises(ValueError, match=message) as raised:
        vaelib.train(_small_model(), binary_batch, 3, finished_run, verbose=0, batch_size=8, binarize=None)
    assert path.name in str(raised.value) and ("delete" in str(raised.value).lower() or "new" in str(raised.value))
    assert _snapshot(finished_run) == before  # the user's files are as they were


def test_a_run_folder_is_refused_for_other_settings_and_left_as_it_was(finished_run, binary_batch):
    before = _snapshot(finished_run)
    with pytest.raises(ValueError, match=r"other settings:\n  data\.batch_size: the run has 8, asked for 4"):
        vaelib.train(_small_model(), binary_batch, 3, finished_run, verbose=0, batch_size=4, binarize=None)
    with pytest.raises(ValueError, match=r"data\.sha256"):
        vaelib.train(_small_model(), binary_batch[::-1], 3, finished_run, verbose=0, batch_size=8, binarize=None)
    wider = vaelib.VAE.mlp(latent_dim=2, hidden_units=(32,))
    wider.compile(optimizer=keras.optimizers.Adam(1e-3))
    with pytest.raises(ValueError, match=r"model\.architecture\.networks\.hidden_units"):
        vaelib.train(wider, binary_batch, 3, finished_run, verbose=0, batch_size=8, binarize=None)
    assert _snapshot(finished_run) == before


def test_a_run_folder_another_process_holds_is_refused_until_that_process_dies(tmp_path):
    """Two processes must not train one run: the second gets RunInUse, and a killed holder leaves no stale lock."""
    script, run = tmp_path / "hold.py", tmp_path / "run"
    script.write_text(HOLD)
    holder = _start([sys.executable, str(script), str(run)])
    try:
        assert holder.stdout.readline().strip() == "claimed", holder.stderr.read()[-3000:]
        before = _snapshot(run)
        with pytest.raises(RunInUse, match="in use: another process"):
            open_run(run, {"run": "held"})
        assert _snapshot(run) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    assert open_run(run, {"run": "held"}) == run  # the kill released the folder
    open_run(run, {"run": "held"})  # and this process may open what it holds again


def test_bad_options_write_nothing(tmp_path, binary_batch):
    run = tmp_path / "run"
    for options in ({"batch_size": 0}, {"binarize": "otsu"}, {"seed": -1}, {"seed": 2**31}):
        with pytest.raises((ValueError, TypeError)):
            vaelib.train(_small_model(), binary_batch, 2, run, verbose=0, **options)
    with pytest.raises(ValueError, match="epochs"):
        vaelib.train(_small_model(), binary_batch, 0, run, verbose=0)
    with pytest.raises(ValueError, match="compile"):
        vaelib.train(vaelib.VAE.mlp(latent_dim=2, hidden_units=(16,)), binary_batch, 2, run, verbose=0)
    assert not run.exists()


def test_a_kill_in_the_middle_of_a_save_leaves_the_previous_checkpoint(finished_run, binary_batch, monkeypatch):
    """A save that dies half-way (here: an exception after half the file) leaves state and checkpoint intact."""
    state = read_state(finished_run)

    def dies_half_way(self, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(keras.Model, "save_weights", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        vaelib.train(_small_model(), binary_batch, 3, finished_run, verbose=0, batch_size=8, binarize=None)
    monkeypatch.undo()
    assert read_state(finished_run) == state
    model = _small_model()
    load_checkpoint(model, finished_run / state["checkpoint"])  # the complete checkpoint of epoch 2 still loads
    assert state["epochs"] == 2 and int(model.optimizer.iterations) == 4
    history = vaelib.train(model, binary_batch, 3, finished_run, verbose=0, batch_size=8, binarize=None)
    assert len(history["elbo"]) == 3


def test_a_truncated_results_npz_is_an_error_that_names_it(tmp_path, mnist):
    (x_train, _), (x_test, _) = mnist
    from vaelib import paper

    rows = paper.beta_sweep(tmp_path, x_train[:500], x_test[:100], betas=[1.0], epochs=1, latent_dim=2)
    assert np.isfinite(rows[0]["elbo"])
    path = tmp_path / "beta1.npz"
    path.write_bytes(path.read_bytes()[:500])
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError, match=r"beta1\.npz is not a readable result of beta_sweep .* delete it"):
        paper.beta_sweep(tmp_path, x_train[:500], x_test[:100], betas=[1.0], epochs=1, latent_dim=2)
    assert _snapshot(tmp_path) == before

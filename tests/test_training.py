"""Checkpoints, resuming after a kill, and the command line."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import vaelib
from vaelib.cli import build_parser, main
from vaelib.training import load_checkpoint, read_state


def resume(model, run_dir):
    """Load the run's checkpoint into ``model``; its epochs and history."""
    state = read_state(run_dir)
    load_checkpoint(model, run_dir / state["checkpoint"])
    return state["epochs"], state["history"]


def small_model():
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(16,))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def test_train_resumes_with_weights_optimizer_and_history(tmp_path, binary_batch):
    ds = vaelib.make_dataset(binary_batch, "bernoulli", batch_size=4, binarize=None)
    first = small_model()
    vaelib.train(first, ds, epochs=2, run_dir=tmp_path, verbose=0)
    second = small_model()
    epoch, history = resume(second, tmp_path)
    assert epoch == 2 and len(history["elbo"]) == 2
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(second.optimizer.iterations.numpy()) == 8  # 2 epochs of 4 batches
    history = vaelib.train(second, ds, epochs=3, run_dir=tmp_path, verbose=0)
    assert len(history["elbo"]) == 3 and int(second.optimizer.iterations.numpy()) == 12
    assert (tmp_path / "model.keras").exists()
    rows = (tmp_path / "history.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,") and len(rows) == 4


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, binary_batch):
    vaelib.train(
        small_model(), vaelib.make_dataset(binary_batch, "bernoulli", 8), epochs=1, run_dir=tmp_path, verbose=0
    )
    checkpoint = tmp_path / read_state(tmp_path)["checkpoint"]
    checkpoint.write_bytes(checkpoint.read_bytes()[:200])
    with pytest.raises(ValueError, match="corrupt"):
        resume(small_model(), tmp_path)
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        resume(small_model(), tmp_path)
    (tmp_path / "state.json").write_text('{"epochs": 1}')  # a field missing
    with pytest.raises(ValueError, match="corrupt"):
        read_state(tmp_path)


def test_load_checkpoint_needs_a_compiled_model_of_the_same_shape(tmp_path, binary_batch):
    vaelib.train(
        small_model(), vaelib.make_dataset(binary_batch, "bernoulli", 8), epochs=1, run_dir=tmp_path, verbose=0
    )
    checkpoint = tmp_path / read_state(tmp_path)["checkpoint"]
    with pytest.raises(ValueError, match="compile"):
        load_checkpoint(vaelib.VAE.mlp(latent_dim=2, hidden_units=(16,)), checkpoint)
    wider = vaelib.VAE.mlp(latent_dim=2, hidden_units=(32,))
    wider.compile(optimizer="adam")
    with pytest.raises(ValueError, match="different model"):
        load_checkpoint(wider, checkpoint)
    same = small_model()
    load_checkpoint(same, checkpoint)
    assert int(same.optimizer.iterations) == 2  # one epoch of 2 batches


def test_nan_loss_stops_training_with_a_clear_error(tmp_path, binary_batch):
    model = small_model()
    model.layers[0].layers[-1].set_weights([np.full((16, 4), np.nan, np.float32), np.zeros(4, np.float32)])
    with pytest.raises(ValueError, match="diverged"):
        vaelib.train(model, vaelib.make_dataset(binary_batch, "bernoulli", 8), epochs=1, run_dir=tmp_path, verbose=0)


def cli(*args, **kwargs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen(
        [sys.executable, "-m", "vaelib", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        **kwargs,
    )  # fmt: skip


TRAIN = ["--train-size", "4000", "--test-size", "200", "--hidden", "64", "--latent-dim", "2", "--verbose", "0"]


@pytest.mark.slow
def test_cli_run_killed_mid_way_resumes_from_its_checkpoint(tmp_path):
    run = tmp_path / "run"
    proc = cli("train", str(run), "--epochs", "30", *TRAIN)
    deadline = time.time() + 240
    while time.time() < deadline:
        state = read_state(run) if (run / "state.json").exists() else None
        if state and state["epochs"] >= 2:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = read_state(run)["epochs"]
    assert 2 <= killed_at < 30
    before = (run / "history.csv").read_text().splitlines()
    assert not (run / "model.keras").exists()

    out, err = cli("train", str(run), "--epochs", str(killed_at + 2), *TRAIN).communicate(timeout=300)
    assert "trained to epoch" in out, err
    after = (run / "history.csv").read_text().splitlines()
    assert after[: len(before)] == before  # the epochs before the kill are kept as they were
    assert [int(r.split(",")[0]) for r in after[1:]] == list(range(1, killed_at + 3))
    assert "epochs" not in json.loads((run / "config.json").read_text())["options"]  # it may change on resume

    out, err = cli("evaluate", str(run), "--samples", "20", "--test-size", "200").communicate(timeout=300)
    result = json.loads((run / "evaluation.json").read_text())
    assert result["test_images"] == 200 and result["importance_samples"] == 20
    # IWAE_20 >= ELBO on average; their difference is a few nats, far above the estimate's noise.
    assert result["test_log_likelihood"] > result["test_elbo"]

    proc = cli("train", str(run), "--epochs", "5", "--latent-dim", "3", *TRAIN[:-4], "--verbose", "0")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "other settings" in err and "options.latent_dim" in err


def test_cli_errors_are_clear_and_a_folder_that_is_not_a_run_is_left_alone(tmp_path, capsys):
    """``main``, what ``python -m vaelib`` runs, called in this process (a process's exit status: the next test)."""
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "notes.txt").write_text("my thesis")
    assert main(["evaluate", str(tmp_path / "none")]) == 2
    assert "model.keras not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:  # argparse's refusal of a bad option
        main(["train", str(tmp_path / "run"), "--batch-size", "0"])
    assert stopped.value.code == 2 and "expected an integer >= 1" in capsys.readouterr().err
    assert main(["train", str(thesis), "--epochs", "1", *TRAIN]) == 2
    assert "not empty and holds no config.json" in capsys.readouterr().err
    assert sorted(p.name for p in thesis.iterdir()) == ["notes.txt"]


def test_cli_trains_with_the_averaged_adam_of_compile(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(["train", str(run), "--epochs", "1", "--optimizer", "averaged_adam", "--learning-rate", "3e-3", *TRAIN])
        == 0
    )
    assert "trained to epoch 1" in capsys.readouterr().out
    optimizer = json.loads((run / "config.json").read_text())["model"]["optimizer"]
    assert optimizer["class_name"] == "AveragedAdam" and optimizer["config"]["learning_rate"] == pytest.approx(3e-3)
    assert type(keras.models.load_model(run / "model.keras").optimizer) is vaelib.AveragedAdam


@pytest.mark.slow
def test_cli_options_that_fail_leave_the_run_folder_as_it_was(tmp_path):
    run = tmp_path / "run"
    proc = cli("train", str(run), "--epochs", "1", "--activation", "no_such", *TRAIN)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "no_such" in err
    assert not (run / "config.json").exists()  # nothing recorded for a run that never started
    out, err = cli("train", str(run), "--epochs", "1", *TRAIN).communicate(timeout=300)  # the corrected command
    assert "trained to epoch 1" in out, err
    assert json.loads((run / "config.json").read_text())["options"]["activation"] == "tanh"


def test_every_cli_option_is_explained():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict)).choices
    assert set(subparsers) == {"train", "evaluate"}
    for sub in subparsers.values():
        for action in sub._actions:
            assert action.help, f"{sub.prog}: {action.dest} has no help"
    help_text = subparsers["train"].format_help()
    for option in ("--epochs", "--learning-rate", "--num-samples", "--binarize", "--data-dir"):
        assert option in help_text

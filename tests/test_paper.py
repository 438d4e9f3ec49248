"""The paper's experiments: the setup matches the paper, runs resume, and the committed results are complete."""

import csv
import hashlib
import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest

import vaelib
import vaelib.paper
from vaelib._machine import cpu_model
from vaelib._scripts import run_record
from vaelib.paper import experiments

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def test_paper_model_is_the_papers_setup():
    model = experiments.paper_model(latent_dim=3, step_size=0.02, dataset_size=60_000)
    dense = [layer for layer in model.encoder.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [500, 6] and dense[0].activation.__name__ == "tanh"
    kernel = dense[0].kernel.numpy()
    # weights drawn from N(0, 0.01^2): 392,000 draws pin the standard deviation to within 1%
    assert abs(kernel.std() - 0.01) < 1e-4 and abs(kernel.mean()) < 1e-4
    assert isinstance(model.optimizer, keras.optimizers.Adagrad)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.02)
    assert model.weight_decay == pytest.approx(1 / 60_000)


def test_evaluation_points_are_log_spaced_multiples_of_a_call():
    points = experiments.evaluation_points(10_000_000)
    assert points[0] == 10_000 and points[-1] == 10_000_000
    assert all(p % 2000 == 0 for p in points) and points == sorted(set(points))
    ratios = np.diff(np.log10(points))
    np.testing.assert_allclose(ratios, 0.25, atol=0.02)  # four points per decade
    assert experiments.evaluation_points(15_000, first=10_000) == [10_000, 16_000]
    with pytest.raises(ValueError, match="max_samples"):
        experiments.evaluation_points(5_000, first=10_000)


def test_burda_schedule_against_its_definition():
    # the IWAE paper: 3^i passes at 1e-3 * 10^(-i/7), i = 0..7 (3,280 passes)
    expected = [1e-3 * 10 ** (-i / 7) for i in range(8) for _ in range(3**i)]
    assert len(expected) == 3280
    got = [experiments.burda_learning_rate(e) for e in range(3280)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="epoch"):
        experiments.burda_learning_rate(-1)


@pytest.mark.slow  # two XLA compilations of the paper's model: about 20 s on a busy worker
def test_the_step_size_choice_takes_the_best_training_bound_of_each_candidate(mnist):
    # the paper's rule: the Adagrad step size whose model has the best training bound after the first
    # samples; a step size of 1e-6 barely moves the weights from their initialisation in 20 steps, 0.02 (the
    # step size chosen for most committed curves) gains hundreds of nats (-227 against -544 here)
    (x_train, _), _ = mnist
    chosen, scores = experiments.choose_step_size(3, x_train[:2000], samples=2000, step_sizes=(1e-6, 0.02))
    assert set(scores) == {1e-6, 0.02} and chosen == 0.02 and scores[0.02] > scores[1e-6] + 10, scores


@pytest.mark.slow
def test_aevb_curve_resumes_where_it_stopped(tmp_path, mnist):
    (x_train, _), (x_test, _) = mnist
    x_train, x_test = x_train[:3000], x_test[:500]
    first = experiments.aevb_curve(tmp_path, 3, x_train, x_test, max_samples=4000, step_size=0.1, first=2000)
    assert [r["samples"] for r in first] == [2000, 4000]
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["notes"]["step_size"] == 0.1 and len(state["rows"]) == 2 and state["steps"] == 40
    # asking for more continues from the saved state: the first rows are kept, training goes on from 4,000
    more = experiments.aevb_curve(tmp_path, 3, x_train, x_test, max_samples=8000, first=2000)
    assert more[:2] == first and [r["samples"] for r in more][2:] == [6000, 8000]
    assert all(np.isfinite(r["train_bound"]) and r["train_bound"] < 0 for r in more)
    assert more[-1]["train_bound"] > first[0]["train_bound"]  # the bound rises with training
    assert {r["cpu"] for r in more} == {cpu_model()}  # each row names the CPU that trained and measured it
    # one checkpoint is kept, the one state.json names: a kill before state.json moves on leaves it intact
    checkpoints = sorted(p.name for p in tmp_path.glob("*.weights.h5"))
    assert checkpoints == [json.loads((tmp_path / "state.json").read_text())["checkpoint"]]
    killed_mid_save = tmp_path / "checkpoint-00000000100.weights.h5"  # a half-written next checkpoint
    killed_mid_save.write_bytes(b"\x89HDF half a file")
    again = experiments.aevb_curve(tmp_path, 3, x_train, x_test, max_samples=8000, first=2000)
    assert again == more  # nothing to do: state.json still names the complete checkpoint
    with pytest.raises(ValueError, match="other settings"):
        experiments.aevb_curve(tmp_path, 5, x_train, x_test, max_samples=8000, first=2000)
    with pytest.raises(ValueError, match="step size 0.1, asked for 0.2"):
        experiments.aevb_curve(tmp_path, 3, x_train, x_test, max_samples=8000, step_size=0.2, first=2000)
    (tmp_path / "state.json").write_text(json.dumps({"steps": 40, "rows": []}))  # fields missing
    with pytest.raises(ValueError, match="corrupt"):
        experiments.aevb_curve(tmp_path, 3, x_train, x_test, max_samples=8000, first=2000)


def test_a_finished_curve_kept_without_its_checkpoint_still_gives_its_rows(tmp_path, mnist):
    """A finished run folder may be committed without its last checkpoint (the model and the rows are what
    matter): asking for the same curve again returns the rows and leaves the saved model as it was."""
    (x_train, _), (x_test, _) = mnist
    rows = experiments.aevb_curve(tmp_path, 3, x_train[:2000], x_test[:300], 4000, step_size=0.1, first=2000)
    for checkpoint in tmp_path.glob("*.weights.h5"):
        checkpoint.unlink()
    model_bytes = (tmp_path / "model.keras").read_bytes()
    assert experiments.aevb_curve(tmp_path, 3, x_train[:2000], x_test[:300], 4000, first=2000) == rows
    assert (tmp_path / "model.keras").read_bytes() == model_bytes


@pytest.mark.slow
def test_a_curve_saves_between_evaluation_points_and_a_kill_there_changes_nothing(tmp_path, mnist, monkeypatch):
    """Points 12,000 and 20,000 are 8,000 samples apart: with a checkpoint every 4,000, a run killed at the
    20,000 evaluation resumes from 16,000, and its rows equal those of a run never checkpointed between
    points (same seeds, same stream: the same training, to float32 rounding)."""
    (x_train, _), (x_test, _) = mnist
    args = (3, x_train[:3000], x_test[:500])
    options = {"max_samples": 20_000, "step_size": 0.1, "first": 2000}
    monkeypatch.setattr(experiments, "CHECKPOINT_EVERY", 10**9)
    whole = experiments.aevb_curve(tmp_path / "whole", *args, **options)
    assert [r["samples"] for r in whole] == [2000, 4000, 6000, 12_000, 20_000]
    monkeypatch.setattr(experiments, "CHECKPOINT_EVERY", 4000)
    measured = experiments.mean_bound

    def killed_at_the_last_point(model, x, *a, **k):
        if int(model.optimizer.iterations) == 200:  # 20,000 samples in minibatches of 100
            raise KeyboardInterrupt
        return measured(model, x, *a, **k)

    with monkeypatch.context() as patch:
        patch.setattr(experiments, "mean_bound", killed_at_the_last_point)
        with pytest.raises(KeyboardInterrupt):
            experiments.aevb_curve(tmp_path / "killed", *args, **options)
    state = json.loads((tmp_path / "killed" / "state.json").read_text())
    assert state["steps"] == 160 and state["checkpoint"] == "checkpoint-00000000160.weights.h5"
    assert [r["samples"] for r in state["rows"]] == [2000, 4000, 6000, 12_000]
    resumed = experiments.aevb_curve(tmp_path / "killed", *args, **options)
    for a, b in zip(resumed, whole):
        assert a["samples"] == b["samples"]
        np.testing.assert_allclose([a["train_bound"], a["test_bound"]], [b["train_bound"], b["test_bound"]], rtol=1e-5)


@pytest.mark.slow
def test_a_wake_sleep_curve_trains_the_same_model_by_wake_sleep_and_resumes(tmp_path, mnist):
    """Figure 2's baseline: the paper's model and optimizer, trained by wake-sleep, measured by the same bound."""
    (x_train, _), (x_test, _) = mnist
    x_train, x_test = x_train[:3000], x_test[:500]
    model = experiments.paper_model(latent_dim=3, step_size=0.02, dataset_size=60_000, method="wake_sleep")
    assert model.objective == vaelib.paper.WakeSleep() and isinstance(model.optimizer, keras.optimizers.Adagrad)
    assert model.weight_decay == pytest.approx(1 / 60_000)
    args = (tmp_path, 3, x_train, x_test)
    first = experiments.aevb_curve(*args, max_samples=4000, step_size=0.1, first=2000, method="wake_sleep")
    assert [(r["method"], r["samples"]) for r in first] == [("wake_sleep", 2000), ("wake_sleep", 4000)]
    assert all(np.isfinite(r["test_bound"]) and r["test_bound"] < 0 for r in first)
    more = experiments.aevb_curve(*args, max_samples=6000, first=2000, method="wake_sleep")
    assert more[:2] == first and more[2]["samples"] == 6000
    with pytest.raises(ValueError, match="other settings:\n  method: the run has 'wake_sleep', asked for 'aevb'"):
        experiments.aevb_curve(*args, max_samples=6000, first=2000)  # an AEVB curve in a wake-sleep folder
    with pytest.raises(ValueError, match="method"):
        experiments.paper_model(latent_dim=3, step_size=0.02, dataset_size=10, method="mcem")


@pytest.mark.slow
@pytest.mark.parametrize("method", experiments.FIG3_METHODS)
def test_a_figure3_curve_measures_the_marginal_likelihood_and_resumes(method, tmp_path, mnist):
    """Figure 3's three methods on one engine: rows of HMC estimates of log p(x), resumed exactly.

    Run A goes to 4,000 samples in one call; run B stops at 2,000 and is resumed to 4,000 by a second
    call (a new process would do the same: the state is on disk). Their rows must agree: for Monte Carlo
    EM that needs the chains, saved with the weights, to come back too."""
    (x_train, _), (x_test, _) = mnist
    args = (method, x_train[:1000], x_test[:200])
    options = {"eval_images": 5, "estimator_samples": 20, "first": 2000}
    whole = experiments.figure3_curve(tmp_path / "a", *args, max_samples=4000, **options)
    assert [(r["method"], r["n_train"], r["samples"]) for r in whole] == [(method, 1000, 2000), (method, 1000, 4000)]
    assert all(-800 < r["train_marginal_ll"] < 0 and -800 < r["test_marginal_ll"] < 0 for r in whole)
    experiments.figure3_curve(tmp_path / "b", *args, max_samples=2000, **options)
    resumed = experiments.figure3_curve(tmp_path / "b", *args, max_samples=4000, **options)
    for a, b in zip(resumed, whole):
        np.testing.assert_allclose(a["test_marginal_ll"], b["test_marginal_ll"], rtol=1e-5)
    with pytest.raises(ValueError, match="other settings|differ"):
        experiments.figure3_curve(tmp_path / "b", *args, max_samples=4000, **dict(options, eval_images=6))


@pytest.mark.slow
def test_step_size_is_chosen_by_the_training_bound(mnist):
    (x_train, _), _ = mnist
    best, scores = experiments.choose_step_size(3, x_train[:12_000], samples=4000, step_sizes=(0.001, 0.1))
    assert set(scores) == {0.001, 0.1} and best == max(scores, key=scores.get)
    assert all(np.isfinite(v) and v < 0 for v in scores.values()) and scores[0.001] != scores[0.1]


def test_train_for_stops_at_its_budget_and_resumes(tmp_path, mnist):
    (x_train, _), _ = mnist
    model = experiments.reference_model()
    state = experiments.train_for(model, x_train[:1000], minutes=1e-4, run_dir=tmp_path)
    assert state["epochs"] == 1 and len(state["history"]["loss"]) == 1 and state["steps"] == 10
    again = experiments.reference_model()
    state = experiments.train_for(again, x_train[:1000], minutes=1e-4, run_dir=tmp_path)
    assert state["epochs"] == 1  # the budget was already spent: nothing more is trained
    assert [p.name for p in tmp_path.glob("*.weights.h5")] == [state["checkpoint"]]
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="minutes"):
        experiments.train_for(again, x_train[:1000], minutes=0, run_dir=tmp_path)


@pytest.mark.slow
def test_train_for_frees_what_finished_epochs_leave_in_reference_cycles(tmp_path, mnist, monkeypatch):
    import gc

    (x_train, _), _ = mnist
    monkeypatch.setattr(experiments, "RELEASE_EVERY", 3)
    tracked = {}  # objects Python's collector tracks, after each epoch (before train_for's own collection)
    model = experiments.reference_model()  # kept: the model's own cycles are not what is measured
    gc.collect()  # what earlier tests in this process left is not counted (it would be freed mid-way)
    gc.disable()  # only train_for's own collections may free them
    try:
        experiments.train_for(
            model,
            x_train[:200],
            60,
            tmp_path,
            schedule="cosine",
            epochs=7,
            on_epoch=lambda state: tracked.setdefault(state["epochs"], len(gc.get_objects())),
        )
        left_at_the_end = gc.collect()
    finally:
        gc.enable()
    # Each epoch's fit leaves its data stream's traced functions in reference cycles (thousands of objects;
    # on MNIST about 20 MB an epoch). With no collection between epochs 4 and 5 they pile up; after the
    # collection at epoch 6 only epoch 7's remain, as after the one at epoch 3 only epoch 4's did.
    per_epoch = tracked[5] - tracked[4]
    assert per_epoch > 1000, tracked
    assert abs(tracked[7] - tracked[4]) < per_epoch / 2, tracked
    assert left_at_the_end < per_epoch / 2  # and the last epochs' at the end


@pytest.mark.slow
def test_train_for_stopped_and_resumed_ends_with_the_weights_of_the_uninterrupted_run(tmp_path, mnist):
    (x_train, _), _ = mnist
    x = x_train[:300]
    keras.utils.set_random_seed(0)
    whole = experiments.reference_model()
    experiments.train_for(whole, x, 60, tmp_path / "whole", schedule="cosine", epochs=3)
    for minutes in (1e-4, 60):  # the first sitting's budget runs out after one epoch; a fresh model resumes
        keras.utils.set_random_seed(0)  # the same initial weights as the whole run's (then the checkpoint's)
        resumed = experiments.reference_model()
        state = experiments.train_for(resumed, x, minutes, tmp_path / "stopped", schedule="cosine", epochs=3)
    assert state["epochs"] == 3
    for a, b in zip(whole.weights, resumed.weights):  # same data, noise and step sizes: bit for bit
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_cosine_schedule_against_its_definition():
    rates = [experiments.cosine_learning_rate(e, 10) for e in range(10)]
    assert rates[0] == 1e-3 and math.isclose(rates[5], 0.5e-3)  # cos(0) = 1, cos(pi/2) = 0
    assert all(a > b > 0 for a, b in zip(rates, rates[1:]))  # falls every pass, and is never zero in the run
    assert math.isclose(rates[9], 0.5e-3 * (1 + math.cos(0.9 * math.pi)))
    for bad in ((10, 10), (-1, 10), (0, 0)):
        with pytest.raises(ValueError):
            experiments.cosine_learning_rate(*bad)


def test_train_for_with_the_cosine_schedule_stops_after_its_epochs_and_keeps_them(tmp_path, mnist):
    (x_train, _), _ = mnist
    model = experiments.reference_model()
    seen = []  # on_epoch: the opened run's state, then the state after each epoch's checkpoint
    state = experiments.train_for(
        model, x_train[:500], minutes=60, run_dir=tmp_path, schedule="cosine", epochs=2, on_epoch=seen.append
    )
    assert state["epochs"] == 2  # the planned run, well within the budget
    assert len(seen) == 3 and all(s is state for s in seen)  # called with the state it keeps, as it goes
    assert math.isclose(float(model.optimizer.learning_rate.numpy()), 0.5e-3, rel_tol=1e-6)  # epoch 1 of 2
    with pytest.raises(ValueError, match=r"schedule\.epochs: the run has 2, asked for 3"):
        experiments.train_for(model, x_train[:500], minutes=60, run_dir=tmp_path, schedule="cosine", epochs=3)
    with pytest.raises(ValueError, match="epochs goes with the cosine schedule"):
        experiments.train_for(model, x_train[:500], minutes=60, run_dir=tmp_path / "b", epochs=3)
    with pytest.raises(ValueError, match="schedule"):
        experiments.train_for(model, x_train[:500], minutes=60, run_dir=tmp_path / "c", schedule="linear")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


@pytest.mark.slow
def test_train_for_keeps_snapshots_of_the_epochs_asked_for(tmp_path, mnist):
    """Three epochs, one per call (each call's budget is a hair above the time spent so far), snapshots
    after the first and the third: each is the model of its epoch, and resuming keeps them."""
    (x_train, _), _ = mnist
    state = {"seconds": 0.0}
    for _ in range(3):
        model = experiments.reference_model()
        budget = state["seconds"] / 60 + 1e-6
        state = experiments.train_for(model, x_train[:500], minutes=budget, run_dir=tmp_path, keep=(1, 3))
    snapshots = state["notes"]["snapshots"]
    assert state["epochs"] == 3 and list(snapshots) == ["1", "3"]
    assert snapshots["1"] <= snapshots["3"] == state["seconds"]
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["epoch00001.keras", "epoch00003.keras"]
    last = keras.models.load_model(tmp_path / "snapshots" / "epoch00003.keras")
    first = keras.models.load_model(tmp_path / "snapshots" / "epoch00001.keras")
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(last.weights, model.weights))
    assert not all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(first.weights, model.weights))


def test_reference_model_is_the_iwae_papers_architecture():
    model = experiments.reference_model(vaelib.IWAE(5))
    dense = [layer.units for layer in model.encoder.layers if isinstance(layer, keras.layers.Dense)]
    assert dense == [200, 200, 100] and model.latent_dim == 50
    assert model.objective == vaelib.IWAE(5) and experiments.reference_model().objective == vaelib.ELBO()


def test_beta_sweep_trades_rate_for_distortion(tmp_path, mnist):
    (x_train, _), (x_test, _) = mnist
    rows = experiments.beta_sweep(tmp_path, x_train[:3000], x_test[:500], betas=[0.25, 8.0], epochs=2, latent_dim=5)
    low, high = rows
    # a heavier KL weight buys a lower rate at the price of a higher distortion
    assert high["rate"] < low["rate"] and high["distortion"] > low["distortion"]
    assert low["samples"].shape == (16, 28, 28) and low["reconstructions"].shape == (8, 28, 28)
    assert low["elbo"] == pytest.approx(-(low["rate"] + low["distortion"]))
    with pytest.raises(ValueError, match="betas"):
        experiments.beta_sweep(tmp_path, x_train[:100], x_test[:100], betas=[-1.0], epochs=1)
    # the kept models are reused only with the settings that made them, never silently with others
    again = experiments.beta_sweep(tmp_path, x_train[:3000], x_test[:500], betas=[0.25], epochs=2, latent_dim=5)
    assert again[0]["rate"] == low["rate"]
    for other in ({"epochs": 3, "latent_dim": 5}, {"epochs": 2, "latent_dim": 6}):
        with pytest.raises(ValueError, match=r"beta0\.25\.npz was made with other settings"):
            experiments.beta_sweep(tmp_path, x_train[:3000], x_test[:500], betas=[0.25], **other)
    with pytest.raises(ValueError, match="data_sha256"):
        experiments.beta_sweep(tmp_path, x_train[1:3001], x_test[:500], betas=[0.25], epochs=2, latent_dim=5)
    # a file cut short is an error naming it, not a finished result
    (tmp_path / "beta8.npz").write_bytes((tmp_path / "beta8.npz").read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"beta8\.npz is not a readable result of beta_sweep"):
        experiments.beta_sweep(tmp_path, x_train[:3000], x_test[:500], betas=[8.0], epochs=2, latent_dim=5)


def test_results_file_is_found_from_a_chapter_folder(tmp_path, monkeypatch):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.csv").write_text("a\n1\n")
    (tmp_path / "book").mkdir()
    monkeypatch.chdir(tmp_path / "book")
    monkeypatch.delenv(experiments.RESULTS_ENV, raising=False)
    assert experiments.results_file("table.csv") == tmp_path / "results" / "table.csv"
    with pytest.raises(ValueError, match="file name"):
        experiments.results_file("../table.csv")


def test_the_recorded_results_hashes_are_those_of_the_committed_files():
    from vaelib._results_sha256 import RESULTS_SHA256

    committed = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (ROOT / "results").iterdir()}
    assert RESULTS_SHA256 == committed, (
        "results/ changed: run python experiments/record_results_sha256.py and raise vaelib.__version__ "
        "(a released version's results files never change)"
    )


def test_results_are_downloaded_from_the_version_tag_and_checked(tmp_path, monkeypatch):
    from vaelib._results_sha256 import RESULTS_SHA256

    monkeypatch.chdir(tmp_path)  # no results/ folder here or above
    monkeypatch.delenv(experiments.RESULTS_ENV, raising=False)
    calls = []

    def get_file(fname, origin, file_hash=None, **kwargs):
        calls.append((fname, origin, file_hash))
        raise ValueError("Incomplete or corrupted file detected.")

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    with pytest.raises(ValueError, match=r"aevb_fig2\.csv downloaded from .* does not have the SHA-256 .* Delete it"):
        experiments.results_file("aevb_fig2.csv")
    fname, origin, file_hash = calls[0]
    assert origin.endswith(f"/v{vaelib.__version__}/results/aevb_fig2.csv") and "/main/" not in origin
    assert file_hash == RESULTS_SHA256["aevb_fig2.csv"] and vaelib.__version__ in fname
    with pytest.raises(ValueError, match="not a results file"):
        experiments.results_file("no_such.csv")


def test_repository_url_is_the_books():
    config = (ROOT / "_config.yml").read_text()
    assert f"url: {experiments.REPOSITORY_URL} " in config


def test_run_record_has_what_a_reader_needs_to_check_a_result():
    record = run_record(seed=3, seconds=1.25)
    assert {"command", "seed", "versions", "hardware", "wall_seconds"} <= set(record)
    assert record["versions"]["vaelib"] == vaelib.__version__ and record["seed"] == 3
    if record["source"] is not None:  # run from a git checkout: the commit of the code that ran
        assert len(record["source"]["commit"]) == 40 and isinstance(record["source"]["modified"], bool)


# ---------------------------------------------------------------- the committed results


def _csv(name):
    with (RESULTS / name).open() as f:
        return list(csv.DictReader(f))


def test_committed_fig2_results_cover_both_methods_and_every_latent_dim_to_ten_million_samples():
    rows = _csv("aevb_fig2.csv")
    assert list(rows[0]) == ["method", "n_z", "samples", "train_bound", "test_bound"]
    record = json.loads((RESULTS / "aevb_fig2.json").read_text())
    assert list(record) == list(experiments.FIG2_METHODS)
    for method in experiments.FIG2_METHODS:
        for n_z in experiments.FIG2_LATENT_DIMS:
            curve = [r for r in rows if r["method"] == method and int(r["n_z"]) == n_z]
            assert max(int(r["samples"]) for r in curve) >= 10_000_000, (method, n_z)
            # nats per datapoint: an untrained model starts near -550 (784 pixels at p = 1/2), a good one near -90
            assert all(-600 < float(r["test_bound"]) < -60 for r in curve), (method, n_z)
            entry = record[method][str(n_z)]
            assert {"command", "seed", "versions", "hardware", "wall_seconds", "step_size", "rows"} <= set(entry)
            assert entry["step_size"] in experiments.ADAGRAD_STEP_SIZES
            assert len(entry["rows"]) == len(curve)


def test_committed_equal_budget_results_are_complete_and_their_budgets_equal():
    rows = _csv("equal_budget.csv")
    assert list(rows[0]) == ["model", "objective", "k", "test_log_likelihood", "train_minutes"]
    record = json.loads((RESULTS / "equal_budget.json").read_text())
    assert sorted(record) == ["elbo", "iwae5", "iwae50"]
    with np.load(RESULTS / "equal_budget.npz") as per_image:
        for objective, entry in record.items():
            by_k = {int(r["k"]): float(r["test_log_likelihood"]) for r in rows if r["objective"] == objective}
            assert sorted(by_k) == [1, 5, 50, 500, 5000], objective
            # L_k grows with k (Burda et al., Theorem 1); 10,000 images keep the estimates' noise far below the gaps
            assert [by_k[k] for k in sorted(by_k)] == sorted(by_k.values()), objective
            assert per_image[f"{objective}_k5000"].shape == (10_000,)
            assert vaelib.mean_and_stderr(per_image[f"{objective}_k5000"])[0] == pytest.approx(by_k[5000], abs=1e-3)
            training = entry["training"]
            assert {"command", "seed", "versions", "hardware", "wall_seconds", "sessions"} <= set(training)
            # one budget for all, on all cores (no --threads), in one sitting, overshot by at most a pass
            assert "--minutes 25 " in training["command"] + " " and "--threads" not in training["command"]
            assert len(training["sessions"]) == 1 and training["schedule"]["name"] == "burda"
            assert 25 <= entry["train_minutes"] <= 25 * (1 + 1 / entry["epochs"])
            model = keras.models.load_model(RESULTS / f"equal_budget_{objective}.keras")
            assert isinstance(model, vaelib.VAE) and model.latent_dim == 50
    hardware = {json.dumps(e["training"]["hardware"], sort_keys=True) for e in record.values()}
    assert len(hardware) == 1  # one machine
    snapshots = _csv("equal_budget_snapshots.csv")
    assert {(r["objective"], int(r["epoch"])) for r in snapshots} >= {(o, e) for o in record for e in (1, 3, 10)}


def test_committed_reference_model_is_measured_and_was_trained_as_its_record_says():
    rows = _csv("reference.csv")
    assert list(rows[0]) == ["model", "objective", "k", "test_log_likelihood", "train_minutes"]
    by_k = {int(r["k"]): float(r["test_log_likelihood"]) for r in rows if r["objective"] == "elbo"}
    assert sorted(by_k) == [1, 5, 50, 500, 5000] and len(rows) == 5
    values = [by_k[k] for k in sorted(by_k)]
    assert values == sorted(values)  # L_k grows with k
    entry = json.loads((RESULTS / "reference.json").read_text())["elbo"]
    training = entry["training"]
    # a planned cosine run that ended annealed, within its 60 minutes, on all cores (no --threads)
    assert training["schedule"] == {"name": "cosine", "epochs": entry["epochs"], "completed": True}
    assert entry["train_minutes"] <= 60.0 and "--threads" not in training["command"]
    with np.load(RESULTS / "reference.npz") as f:
        assert f["elbo_k5000"].shape == (10_000,)
        assert vaelib.mean_and_stderr(f["elbo_k5000"])[0] == pytest.approx(entry["k"]["5000"]["mean"])
    model = keras.models.load_model(RESULTS / "reference_elbo.keras")
    assert isinstance(model, vaelib.VAE) and model.latent_dim == 50


def test_committed_long_run_finished_its_plan_in_sittings_that_join_up():
    rows = _csv("reference_long.csv")
    by_k = {int(r["k"]): float(r["test_log_likelihood"]) for r in rows if r["objective"] == "elbo"}
    assert sorted(by_k) == [1, 5, 50, 500, 5000] and len(rows) == 5
    assert [by_k[k] for k in sorted(by_k)] == sorted(by_k.values())  # L_k grows with k
    entry = json.loads((RESULTS / "reference_long.json").read_text())["elbo"]
    training = entry["training"]
    # Burda et al.'s number of passes, under a cosine schedule that ended annealed
    assert training["schedule"] == {"name": "cosine", "epochs": 3280, "completed": True}
    assert entry["epochs"] == training["epochs"] == 3280
    # the sittings join up: each starts where the last stopped, from the first pass to the last
    sessions = training["sessions"]
    assert len(sessions) >= 2 and sessions[0]["epochs"][0] == 0 and sessions[-1]["epochs"][1] == 3280
    assert all(a["epochs"][1] == b["epochs"][0] for a, b in zip(sessions, sessions[1:]))
    assert sum(s["training_seconds"] for s in sessions) == pytest.approx(training["training_seconds"], abs=0.1)
    assert entry["train_minutes"] == pytest.approx(training["training_seconds"] / 60, abs=0.1)
    # a sitting says where it ran, or that it was killed before it could record that
    assert all({"command", "hardware", "versions", "source"} <= set(s) or "not known" in s["ended"] for s in sessions)
    assert not any("running" in s for s in sessions)  # no sitting left open
    with np.load(RESULTS / "reference_long.npz") as f:
        assert f["elbo_k5000"].shape == (10_000,)
        assert vaelib.mean_and_stderr(f["elbo_k5000"])[0] == pytest.approx(entry["k"]["5000"]["mean"])
    model = keras.models.load_model(RESULTS / "reference_long_elbo.keras")
    assert isinstance(model, vaelib.VAE) and model.latent_dim == 50


FIG3_CURVES = [("aevb", 1_000), ("aevb", 50_000), ("wake_sleep", 1_000), ("wake_sleep", 50_000), ("mcem", 1_000)]


def test_committed_fig3_results_cover_every_curve_to_ten_million_samples():
    rows = _csv("aevb_fig3.csv")
    assert list(rows[0]) == ["method", "n_train", "samples", "train_marginal_ll", "test_marginal_ll"]
    record = json.loads((RESULTS / "aevb_fig3.json").read_text())
    assert sorted((m, int(n)) for m, by_size in record.items() for n in by_size) == sorted(FIG3_CURVES)
    for method, n_train in FIG3_CURVES:
        curve = [r for r in rows if r["method"] == method and int(r["n_train"]) == n_train]
        entry = record[method][str(n_train)]
        assert {"command", "seed", "versions", "hardware", "wall_seconds", "training_seconds"} <= set(entry)
        assert entry["step_size"] == 0.02 and entry["eval_images"] == 100 and entry["estimator_samples"] == 500
        assert len(entry["rows"]) == len(curve) and max(int(r["samples"]) for r in curve) >= 10_000_000
        # nats per image: 784 pixels at p = 1/2 give -543, and a 3-dimensional code does not get near -60
        assert all(-600 < float(r[f"{s}_marginal_ll"]) < -60 for r in curve for s in ("train", "test"))


def test_committed_fig3_final_models_are_measured_per_image_and_repeat_the_curves_last_points():
    record = json.loads((RESULTS / "aevb_fig3.json").read_text())
    final = json.loads((RESULTS / "aevb_fig3_final.json").read_text())
    table = {(r["method"], int(r["n_train"]), r["split"]): r for r in _csv("aevb_fig3_final.csv")}
    with np.load(RESULTS / "aevb_fig3_final.npz") as f:
        for method, n_train in FIG3_CURVES:
            assert final[method][str(n_train)]["samples"] == record[method][str(n_train)]["rows"][-1]["samples"]
            for split in ("train", "test"):
                values = f[f"{method}_n{n_train}_{split}"].astype(np.float64)
                assert len(values) == 1000 and np.isfinite(values).all(), (method, n_train, split)
                assert float(table[method, n_train, split]["mean"]) == pytest.approx(values.mean(), abs=1e-3)
                # the curve's 100 evaluation images are the first 100, measured with the same seeds: the same
                # estimates, summed in another order (float32: a few 1e-5 nats)
                last = record[method][str(n_train)]["rows"][-1][f"{split}_marginal_ll"]
                assert values[:100].mean() == pytest.approx(last, abs=1e-3), (method, n_train, split)


def test_committed_manifold_and_beta_results_have_their_arrays():
    with np.load(RESULTS / "manifolds.npz") as f:
        assert f["grid"].shape == (20, 20, 28, 28) and f["values"].shape == (20,)
        assert all(f[f"samples_nz{n}"].shape == (100, 28, 28) for n in (2, 5, 10, 20))
    rows = _csv("beta_sweep.csv")
    rates = [float(r["rate"]) for r in sorted(rows, key=lambda r: float(r["beta"]))]
    assert rates == sorted(rates, reverse=True)  # rate falls as beta rises
    assert (RESULTS / "beta_sweep.json").exists() and (RESULTS / "manifolds.json").exists()


def test_the_committed_run_folders_are_runs_of_this_vaelib(mnist):
    """Every committed run folder has the one state schema, and the experiments open it as their own: a finished
    Figure 2 curve returns its rows without training, and a timed run's configuration is the one its script
    records today, so a later sitting could continue it."""
    from vaelib.training import data_sha256, model_config, read_state

    (x_train, _), (x_test, _) = mnist
    for state_file in sorted((ROOT / "runs").glob("*/*/state.json")):
        assert read_state(state_file.parent) is not None  # the schema, checked field by field
    run = experiments.fig2_run_folder(ROOT / "runs" / "aevb_fig2", "aevb", 5)
    rows = experiments.aevb_curve(run, 5, x_train, x_test, 10_000_000)
    assert rows == read_state(run)["rows"] and rows[-1]["samples"] == 10_000_000
    objectives = {"elbo": "elbo", "iwae5": vaelib.IWAE(5), "iwae50": vaelib.IWAE(50)}
    for config_file in sorted((ROOT / "runs").glob("*/*/config.json")):
        config = json.loads(config_file.read_text())
        if config.get("experiment") != "train_for":
            continue
        assert config["model"] == model_config(experiments.reference_model(objectives[config_file.parent.name]))
        assert config["data_sha256"] == data_sha256(x_train)

"""The experiment scripts' bookkeeping: records by method, the sittings of a long run, the CSV they write."""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

import vaelib
import vaelib.paper

ROOT = Path(__file__).resolve().parents[1]


def run_state(epochs: int = 0, seconds: float = 0.0, **fields) -> dict:
    """A run's state.json (vaelib.training.STATE_FIELDS), as the run engine writes it."""
    state = {"steps": 0, "epochs": epochs, "seconds": seconds, "checkpoint": "", "history": {}, "rows": [], "notes": {}}
    return {**state, **fields}


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fig2_records_keep_every_curve_by_method(tmp_path):
    fig2 = load_script("aevb_fig2")
    old_row = {"n_z": 3, "samples": 10_000, "train_bound": -200.0, "test_bound": -201.0, "seconds": 1.0}
    (tmp_path / "aevb_fig2.json").write_text(json.dumps({"aevb": {"3": {"command": "old", "rows": [old_row]}}}))
    state = run_state(notes={"step_size": 0.02, "step_size_scores": {"0.02": -150.0}})
    rows = [dict(old_row, method="wake_sleep", n_z=5, train_bound=-190.0)]
    fig2.write_results(tmp_path, 0, "wake_sleep", 5, rows, state, 12.0)
    records = json.loads((tmp_path / "aevb_fig2.json").read_text())
    assert list(records) == ["aevb", "wake_sleep"] and records["aevb"]["3"]["command"] == "old"
    assert records["wake_sleep"]["5"]["step_size"] == 0.02 and records["wake_sleep"]["5"]["rows"] == rows
    with (tmp_path / "aevb_fig2.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [(r["method"], r["n_z"], r["train_bound"]) for r in table] == [
        ("aevb", "3", "-200.000"),
        ("wake_sleep", "5", "-190.000"),
    ]
    fig2.write_results(tmp_path, 0, "wake_sleep", 5, rows, state, 0.5)  # a finished curve run again
    again = json.loads((tmp_path / "aevb_fig2.json").read_text())
    assert again["wake_sleep"]["5"]["wall_seconds"] == 12.0  # keeps the record of the run that trained it
    assert vaelib.paper.fig2_run_folder(tmp_path, "aevb", 3).name == "aevb_nz3"
    assert vaelib.paper.fig2_run_folder(tmp_path, "wake_sleep", 3).name == "wake_sleep_nz3"


def test_fig2_goes_on_past_a_curve_another_process_is_training(tmp_path, monkeypatch, capsys):
    import vaelib
    from vaelib.training import RunInUse

    fig2 = load_script("aevb_fig2")

    def curve(run_dir, n_z, *args, method, **kwargs):
        if n_z == 3:
            raise RunInUse(f"{run_dir} is in use")
        run_dir.mkdir(parents=True)
        notes = {"step_size": 0.02, "step_size_scores": {"0.02": -150.0}}
        (run_dir / "state.json").write_text(json.dumps(run_state(notes=notes)))
        return [{"n_z": n_z, "samples": 10, "train_bound": -1.0, "test_bound": -2.0, "seconds": 1.0}]

    monkeypatch.setattr(fig2, "aevb_curve", curve)
    monkeypatch.setattr(vaelib, "load_mnist", lambda: ((None, None), (None, None)))
    runs, results = str(tmp_path / "runs"), str(tmp_path / "results")
    monkeypatch.setattr(sys, "argv", ["aevb_fig2.py", "--methods", "aevb", "--latent-dims", "3,5", "--runs", runs])
    sys.argv += ["--results", results]
    fig2.main()
    assert "aevb 3: skipped" in capsys.readouterr().out
    assert list(json.loads((tmp_path / "results" / "aevb_fig2.json").read_text())["aevb"]) == ["5"]


def test_fig3_records_by_method_and_training_set_size(tmp_path):
    fig3 = load_script("aevb_fig3")
    row = {"method": "mcem", "n_train": 1000, "samples": 10_000}
    row.update(train_marginal_ll=-150.0, test_marginal_ll=-155.5)
    fig3.write_results(tmp_path, {"command": "c", "rows": [row]}, "mcem", 1000)
    fig3.write_results(tmp_path, {"command": "d", "rows": [dict(row, method="aevb", n_train=50_000)]}, "aevb", 50_000)
    fig3.write_results(tmp_path, {"command": "e", "rows": [row]}, "mcem", 1000)  # nothing new: kept
    records = json.loads((tmp_path / "aevb_fig3.json").read_text())
    assert list(records) == ["aevb", "mcem"] and records["mcem"]["1000"]["command"] == "c"
    with (tmp_path / "aevb_fig3.csv").open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == fig3.COLUMNS
    assert [(r["method"], r["n_train"], r["test_marginal_ll"]) for r in table] == [
        ("aevb", "50000", "-155.500"),
        ("mcem", "1000", "-155.500"),
    ]


def test_snapshots_are_measured_once_and_collected_with_their_per_image_values(tmp_path, monkeypatch):
    import numpy as np

    import vaelib

    script = load_script("log_likelihood")
    runs, results = tmp_path / "runs", tmp_path / "results"
    (runs / "elbo" / "snapshots").mkdir(parents=True)
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    model.save(runs / "elbo" / "snapshots" / "epoch00003.keras")
    (runs / "elbo" / "state.json").write_text(json.dumps(run_state(3, 4.5, notes={"snapshots": {"3": 4.5}})))
    x = vaelib.fixed_binarize(np.random.default_rng(0).random((5, 28, 28)).astype(np.float32))
    script.measure_snapshots(runs, results, x, [1, 3], seed=0, started=0.0, name="study")
    with (results / "study_snapshots.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [(r["objective"], r["epoch"], r["train_seconds"], r["k"]) for r in table] == [
        ("elbo", "3", "4.5", "1"),
        ("elbo", "3", "4.5", "3"),
    ]
    with np.load(results / "study_snapshots.npz") as f:
        assert sorted(f.files) == ["elbo_e3_k1", "elbo_e3_k3"] and f["elbo_e3_k3"].shape == (5,)
        np.testing.assert_allclose(float(table[1]["test_log_likelihood"]), f["elbo_e3_k3"].mean(), atol=1e-3)
    monkeypatch.setattr(vaelib, "log_likelihood", lambda *a, **k: 1 / 0)  # measured already: not again
    script.measure_snapshots(runs, results, x, [1, 3], seed=0, started=0.0, name="study")


def test_a_record_names_the_commit_the_script_started_from(monkeypatch):
    """The commit is read once, at import: a checkout that moves on during a long run does not relabel it."""
    from vaelib import _scripts

    started = _scripts.SOURCE
    monkeypatch.setattr(_scripts, "source", lambda: {"commit": "0" * 40, "modified": True})
    assert _scripts.run_record(seed=0, seconds=1.0)["source"] == started
    if started is not None:  # a git checkout: the commit is one git knows
        assert len(started["commit"]) == 40 and isinstance(started["modified"], bool)


def test_a_planned_run_whose_budget_runs_out_is_reported_as_not_met(tmp_path, monkeypatch, capsys):
    import vaelib

    script = load_script("log_likelihood")

    def train_for(model, x, minutes, run_dir, **kwargs):  # 7 of the 10 passes fit the budget
        run_dir.mkdir(parents=True)
        return {"epochs": 7, "seconds": 60.0}

    monkeypatch.setattr(script, "train_for", train_for)
    monkeypatch.setattr(vaelib, "load_mnist", lambda: ((None, None), (None, None)))
    argv = ["log_likelihood.py", "train", "elbo", "--schedule", "cosine", "--epochs", "10", "--minutes", "1"]
    monkeypatch.setattr(sys, "argv", [*argv, "--runs", str(tmp_path)])
    script.main()
    assert "budget not met: the 1 minutes ran out after 7 of the 10 planned passes" in capsys.readouterr().out
    record = json.loads((tmp_path / "elbo" / "record.json").read_text())
    assert record["schedule"] == {"name": "cosine", "epochs": 10, "completed": False} and record["epochs"] == 7


def test_a_run_continued_in_a_second_sitting_records_what_each_sitting_trained(tmp_path, monkeypatch):
    import vaelib

    script = load_script("log_likelihood")
    sittings = iter([{"epochs": 7, "seconds": 60.0}, {"epochs": 10, "seconds": 85.5}])

    def train_for(model, x, minutes, run_dir, **kwargs):  # trains on, and saves its state as train_for does
        run_dir.mkdir(parents=True, exist_ok=True)
        state = next(sittings)
        (run_dir / "state.json").write_text(json.dumps(run_state(**state)))
        return state

    monkeypatch.setattr(script, "train_for", train_for)
    monkeypatch.setattr(vaelib, "load_mnist", lambda: ((None, None), (None, None)))
    for minutes in ("1", "1.5"):
        argv = ["log_likelihood.py", "train", "elbo", "--schedule", "cosine", "--epochs", "10", "--minutes", minutes]
        monkeypatch.setattr(sys, "argv", [*argv, "--runs", str(tmp_path)])
        script.main()
    record = json.loads((tmp_path / "elbo" / "record.json").read_text())
    assert [(s["epochs"], s["training_seconds"]) for s in record["sessions"]] == [([0, 7], 60.0), ([7, 10], 25.5)]
    assert record["sessions"][1]["command"].endswith(f"--minutes 1.5 --runs {tmp_path}")
    assert record["schedule"]["completed"] and record["epochs"] == 10
    assert {"cpu", "vector_extensions", "cores"} <= set(record["sessions"][0]["hardware"])
    assert "source" in record["sessions"][0]  # the commit each sitting's code came from


def test_a_killed_sitting_keeps_its_passes_in_the_record_and_the_next_one_closes_it(tmp_path, monkeypatch):
    import vaelib

    script = load_script("log_likelihood")
    run_dir = tmp_path / "elbo"

    def save(state):
        (run_dir / "state.json").write_text(json.dumps(run_state(**state)))

    def killed(model, x, minutes, run_dir_, on_epoch, **kwargs):  # recorded 4 passes, checkpointed a 5th, killed
        run_dir.mkdir(parents=True)
        state = {"epochs": 0, "seconds": 0.0}
        save(state)
        on_epoch(state)
        for epoch in range(1, 6):
            state = {"epochs": epoch, "seconds": 10.0 * epoch}
            save(state)
            if epoch < 5:
                on_epoch(state)
        raise KeyboardInterrupt

    def finishes(model, x, minutes, run_dir_, on_epoch, **kwargs):
        state = {"epochs": 10, "seconds": 95.0}
        save(state)
        on_epoch(state)
        return state

    monkeypatch.setattr(vaelib, "load_mnist", lambda: ((None, None), (None, None)))
    for train_for in (killed, finishes):
        monkeypatch.setattr(script, "train_for", train_for)
        argv = ["log_likelihood.py", "train", "elbo", "--schedule", "cosine", "--epochs", "10", "--minutes", "2"]
        monkeypatch.setattr(sys, "argv", [*argv, "--runs", str(tmp_path)])
        if train_for is killed:
            with pytest.raises(KeyboardInterrupt):
                script.main()
            record = json.loads((run_dir / "record.json").read_text())
            assert record["sessions"][0]["running"] and record["sessions"][0]["epochs"] == [0, 4]
            assert record["epochs"] == 4 and not record["schedule"]["completed"]
        else:
            script.main()
    sessions = json.loads((run_dir / "record.json").read_text())["sessions"]
    # the killed sitting gets the passes and time of its last checkpoint, the next one the rest
    assert [(s["epochs"], s["training_seconds"]) for s in sessions] == [([0, 5], 50.0), ([5, 10], 45.0)]
    assert sessions[0]["ended"].startswith("killed") and not any("running" in s for s in sessions)
    assert {"command", "source", "hardware", "versions"} <= set(sessions[0])


def test_the_evaluation_keeps_its_estimate_per_test_image_for_paired_differences(tmp_path):
    import numpy as np

    script = load_script("log_likelihood")
    runs, results = tmp_path / "runs", tmp_path / "results"
    for name, shift in (("elbo", 0.0), ("iwae5", 0.5)):
        (runs / name).mkdir(parents=True)
        values = np.array([-90.0, -80.0, -100.0]) + shift
        evaluation = {"train_minutes": 60.0, "k": {"5000": {"mean": values.mean(), "stderr": 1.0}}}
        (runs / name / "evaluation.json").write_text(json.dumps(evaluation))
        np.savez(runs / name / "evaluation.npz", k5000=values)
    script.collect(runs, results, "equal_budget")  # a study's own results files
    with np.load(results / "equal_budget.npz") as f:
        assert sorted(f.files) == ["elbo_k5000", "iwae5_k5000"]
        np.testing.assert_allclose(f["iwae5_k5000"] - f["elbo_k5000"], 0.5)
    assert json.loads((results / "equal_budget.json").read_text())["iwae5"]["train_minutes"] == 60.0
    assert not (results / "log_likelihood.npz").exists()


def test_evaluate_writes_a_studys_results_and_the_models_behind_them(tmp_path, monkeypatch):
    import keras
    import numpy as np

    script = load_script("log_likelihood")
    runs, results = tmp_path / "runs", tmp_path / "results"
    (runs / "elbo").mkdir(parents=True)
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    model.save(runs / "elbo" / "model.keras")
    (runs / "elbo" / "state.json").write_text(json.dumps({"epochs": 3, "seconds": 90.0}))
    images = np.random.default_rng(0).random((6, 28, 28)).astype(np.float32)  # as load_mnist: in [0, 1]
    monkeypatch.setattr(vaelib, "load_mnist", lambda: ((images, None), (images, None)))
    argv = ["log_likelihood.py", "evaluate", "--samples", "1,4", "--name", "study"]
    monkeypatch.setattr(sys, "argv", [*argv, "--runs", str(runs), "--results", str(results)])
    script.main()
    with (results / "study.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [(r["objective"], r["k"], r["train_minutes"]) for r in table] == [("elbo", "1", "1.5"), ("elbo", "4", "1.5")]
    record = json.loads((results / "study.json").read_text())
    with np.load(results / "study.npz") as f:
        mean, stderr = vaelib.mean_and_stderr(f["elbo_k4"])
    assert record["elbo"]["k"]["4"]["mean"] == mean and record["elbo"]["k"]["4"]["stderr"] == stderr
    again = keras.models.load_model(results / "study_elbo.keras")  # the model behind the numbers
    np.testing.assert_array_equal(again.get_weights()[0], model.get_weights()[0])
    assert sorted(p.name for p in results.iterdir()) == ["study.csv", "study.json", "study.npz", "study_elbo.keras"]


@pytest.mark.parametrize("name", ["../reference", "reference.csv", ""])
def test_a_results_name_that_is_not_a_plain_stem_is_a_usage_error(name, monkeypatch, capsys):
    script = load_script("log_likelihood")
    monkeypatch.setattr(sys, "argv", ["log_likelihood.py", "evaluate", "--name", name])
    with pytest.raises(SystemExit):
        script.main()
    assert "--name is the stem of the results files" in capsys.readouterr().err


def test_fig2_terms_names_the_curve_it_cannot_find(tmp_path, monkeypatch, capsys):
    terms = load_script("aevb_fig2_terms")
    monkeypatch.setattr(sys, "argv", ["aevb_fig2_terms.py", "--runs", str(tmp_path), "--results", str(tmp_path)])
    with pytest.raises(SystemExit):
        terms.main()
    assert (
        f"{tmp_path / 'aevb_nz3'} has no finished model: run experiments/aevb_fig2.py first" in capsys.readouterr().err
    )


def test_fig3_final_models_are_measured_per_image_and_merged_by_method(tmp_path, monkeypatch, capsys):
    """The final-model script measures finished curves only (not one trained past its last point), on the
    first images of the curve's own training set and of the test set, and keeps other models' results."""
    import numpy as np

    final = load_script("aevb_fig3_final")
    runs, results = tmp_path / "runs", tmp_path / "results"
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    for name, steps in (("aevb_n1000", 2), ("mcem_n1000", 3)):  # minibatches of 100
        (runs / name).mkdir(parents=True)
        model.save(runs / name / "model.keras")
        (runs / name / "config.json").write_text(json.dumps({"seed": 0, "estimator_samples": 4}))
        (runs / name / "state.json").write_text(json.dumps(run_state(steps=steps, rows=[{"samples": 200}])))
    rng = np.random.default_rng(0)
    x_train, x_test = rng.random((150, 28, 28)).astype(np.float32), rng.random((120, 28, 28)).astype(np.float32)
    monkeypatch.setattr(vaelib, "load_mnist", lambda: ((x_train, None), (x_test, None)))
    monkeypatch.setattr(final, "NUM_BURNIN", 2)
    argv = ["aevb_fig3_final.py", "--train-sizes", "1000", "--runs", str(runs), "--results", str(results)]
    monkeypatch.setattr(sys, "argv", [*argv, "--images", "110"])
    final.main()
    assert "mcem_n1000: no finished curve" in capsys.readouterr().out  # 300 samples trained, last point at 200
    with np.load(results / "aevb_fig3_final.npz") as f:
        estimates = dict(f)
    assert sorted(estimates) == ["aevb_n1000_test", "aevb_n1000_train"]
    assert estimates["aevb_n1000_train"].shape == estimates["aevb_n1000_test"].shape == (110,)
    first = vaelib.paper.marginal_likelihoods(model, vaelib.fixed_binarize(x_test[:100], 0), 4, 2, seed=0)
    np.testing.assert_array_equal(estimates["aevb_n1000_test"][:100], first)  # the curve's images, same values
    record = {"command": "other"}
    final.write_results(
        results, {"wake_sleep_n1000_train": first, "wake_sleep_n1000_test": first}, "wake_sleep_n1000", record
    )
    records = json.loads((results / "aevb_fig3_final.json").read_text())
    assert list(records) == ["aevb", "wake_sleep"] and records["aevb"]["1000"]["images"] == {"train": 110, "test": 110}
    with (results / "aevb_fig3_final.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [(r["method"], r["split"], r["images"]) for r in table] == [
        ("aevb", "train", "110"),
        ("aevb", "test", "110"),
        ("wake_sleep", "train", "100"),
        ("wake_sleep", "test", "100"),
    ]
    expected = first.astype(np.float64).std(ddof=1) / np.sqrt(100)
    assert float(table[3]["stderr"]) == pytest.approx(expected, abs=1e-3)
    with pytest.raises(SystemExit):
        monkeypatch.setattr(sys, "argv", [*argv, "--images", "50"])
        final.main()


def test_fig2_terms_measures_every_image_with_the_curves_draws(tmp_path, monkeypatch):
    """The per-image bounds average to the curve's bound (vaelib.paper.mean_bound, the same draws), and the
    training-minus-test difference's standard error combines the two means' (different images)."""
    import numpy as np

    terms = load_script("aevb_fig2_terms")
    runs, results = tmp_path / "runs", tmp_path / "results"
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    for method in ("aevb", "wake_sleep"):
        (runs / f"{method}_nz2").mkdir(parents=True)
        model.save(runs / f"{method}_nz2" / "model.keras")
        (runs / f"{method}_nz2" / "state.json").write_text(json.dumps(run_state(rows=[{"samples": 300}])))
    rng = np.random.default_rng(0)
    x_train, x_test = rng.random((1500, 28, 28)).astype(np.float32), rng.random((1200, 28, 28)).astype(np.float32)
    monkeypatch.setattr(vaelib, "load_mnist", lambda: ((x_train, None), (x_test, None)))
    argv = ["aevb_fig2_terms.py", "--latent-dims", "2", "--runs", str(runs), "--results", str(results)]
    monkeypatch.setattr(sys, "argv", argv)
    terms.main()

    with np.load(results / "aevb_fig2_terms.npz") as f:
        per_image = dict(f)
    assert sorted(per_image) == ["aevb_nz2_test", "aevb_nz2_train", "wake_sleep_nz2_test", "wake_sleep_nz2_train"]
    assert per_image["aevb_nz2_train"].shape == (1500,) and per_image["aevb_nz2_test"].shape == (1200,)
    for split, x in (("train", x_train), ("test", x_test)):  # two batches each: the seeds step as the curve's
        curve = vaelib.paper.mean_bound(model, vaelib.fixed_binarize(x, 0), seed=0)
        assert abs(per_image[f"aevb_nz2_{split}"].astype(np.float64).mean() - curve) < 1e-4, split
    se = [v.std(ddof=1) / np.sqrt(len(v)) for v in (per_image["aevb_nz2_train"], per_image["aevb_nz2_test"])]
    difference = json.loads((results / "aevb_fig2_terms.json").read_text())["train_minus_test"]["aevb"]["2"]
    assert difference["stderr"] == pytest.approx(np.hypot(*se), abs=1e-4)
    with (results / "aevb_fig2_terms.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [(r["method"], r["n_z"]) for r in table] == [("aevb", "2"), ("wake_sleep", "2")]
    assert float(table[0]["test_stderr"]) == pytest.approx(se[1], abs=1e-3)

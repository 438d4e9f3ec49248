"""Importance-sampled log-likelihood of the reference model (784-200-200-50), trained with the ELBO or IWAE.

    python experiments/log_likelihood.py train elbo --minutes 60     # the reference model
    python experiments/log_likelihood.py train iwae5 --minutes 25    # IWAE objective, k = 5
    python experiments/log_likelihood.py train iwae50 --minutes 25   # IWAE objective, k = 50
    python experiments/log_likelihood.py train elbo --schedule cosine --epochs 1000 --minutes 60
                                                                     # a fixed-length run, annealed at its end
    python experiments/log_likelihood.py evaluate                    # k in {1, 5, 50, 500, 5000}
    python experiments/log_likelihood.py evaluate iwae5              # one model (results keep the others)
    python experiments/log_likelihood.py snapshots                   # every kept epoch of every model
    python experiments/log_likelihood.py evaluate --runs runs/reference --name reference
                                                                     # one study's runs, its own results files

Training runs in ``runs/log_likelihood/<objective>`` for a wall-clock budget and resumes there if killed
(rerun with a larger --minutes to train longer). Its step sizes follow Burda et al.'s schedule of passes,
or (``--schedule cosine``) a cosine over ``--epochs`` passes, which ends when they are done or the
budget is spent; the record says which, and how many passes were trained. A run may be continued in
several sittings (each stops cleanly when ``--minutes`` of training in all are done): the record lists
every sitting's passes, training time, command, commit, versions and hardware under ``sessions``. It is
rewritten after every pass, so a sitting that is killed keeps its passes recorded (``ended: killed``).

``evaluate`` measures every trained model on the 10,000 test images, binarised once with seed 0, and
writes ``results/<name>.csv`` (columns ``model, objective, k, test_log_likelihood, train_minutes``),
``results/<name>.json`` (command, seed, versions, hardware, wall time, epochs, standard errors, and how
the model was trained), ``results/<name>.npz`` (``<objective>_k<k>``, the estimate per test image, for
paired differences) and the measured models, ``results/<name>_<objective>.keras``. ``--name`` is
``log_likelihood`` unless given: each study (a folder of runs) has its own results files.

Training keeps the model after the passes of ``--keep`` (``snapshots/epoch<e>.keras``, with the time they
took), so the objectives can be compared at equal passes and at equal time. ``snapshots`` measures each
kept model on the first ``--images`` test images for the k of ``--snapshot-samples``; each measurement
is kept beside its snapshot (a rerun skips it), and ``results/<name>_snapshots.csv`` (columns
``objective, epoch, train_seconds, k, test_log_likelihood, stderr``), ``.npz`` (the per-image estimates,
``<objective>_e<epoch>_k<k>``, for paired differences) and ``.json`` (the records) are written.
"""

import argparse
import json
import re
import time
from pathlib import Path

import keras
import numpy as np

import vaelib
from vaelib._files import save_model_atomically, save_npz_atomically, write_csv_atomically, write_json_atomically
from vaelib._scripts import run_record, script_arguments, use_threads
from vaelib.paper.experiments import LEARNING_RATE_SCHEDULES, reference_model, train_for
from vaelib.training import read_state

ROOT = Path(__file__).resolve().parents[1]
OBJECTIVES = {"elbo": vaelib.ELBO(), "iwae5": vaelib.IWAE(5), "iwae50": vaelib.IWAE(50)}
EVALUATION_SAMPLES = (1, 5, 50, 500, 5000)
KEEP = (1, 3, 10, 30, 100, 300, 1000, 3000)  # passes after which training keeps the model
SNAPSHOT_SAMPLES = (1, 5, 50, 500, 5000)  # the k of L^IW_k measured on every kept model
ARCHITECTURE = "784-200-200-50"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("train", "evaluate", "snapshots"))
    parser.add_argument(
        "objective", nargs="?", choices=tuple(OBJECTIVES), help="what to train (evaluate: all if not given)"
    )
    parser.add_argument("--minutes", type=float, default=60.0, help="with train: training time in all")
    parser.add_argument("--schedule", choices=LEARNING_RATE_SCHEDULES, default="burda", help="with train: step sizes")
    parser.add_argument("--epochs", type=int, help="with train --schedule cosine: the passes the schedule spans")
    parser.add_argument("--samples", default=",".join(map(str, EVALUATION_SAMPLES)), help="with evaluate: the k")
    parser.add_argument("--keep", default=",".join(map(str, KEEP)), help="with train: passes whose model is kept")
    parser.add_argument("--snapshot-samples", default=",".join(map(str, SNAPSHOT_SAMPLES)), help="with snapshots: k")
    parser.add_argument("--images", type=int, default=1000, help="with snapshots: test images measured")
    parser.add_argument("--name", default="log_likelihood", help="with evaluate, snapshots: results file names")
    script_arguments(parser, runs=ROOT / "runs" / "log_likelihood", results=ROOT / "results")
    args = parser.parse_args()
    if (args.schedule == "cosine") != (args.epochs is not None):  # a usage error, before any data is loaded
        parser.error("--epochs goes with --schedule cosine, and only with it")
    if not re.fullmatch(r"[A-Za-z0-9_]+", args.name):
        parser.error(f"--name is the stem of the results files, letters, digits and _ only: got {args.name!r}")
    use_threads(args.threads)
    (x_train, _), (x_test, _) = vaelib.load_mnist()
    start = time.perf_counter()
    if args.command == "train":
        if args.objective is None:
            parser.error("train needs an objective: " + ", ".join(OBJECTIVES))
        keras.utils.set_random_seed(args.seed)
        model = reference_model(OBJECTIVES[args.objective])
        keep = [int(v) for v in args.keep.split(",")]
        run_dir = args.runs / args.objective
        before = read_state(run_dir)  # None: a new run
        sessions = earlier_sessions(run_dir, before)

        def record_sitting(state: dict, finished: bool = False) -> None:
            """record.json as of ``state``: after every pass, so a killed sitting leaves its passes recorded."""
            schedule = {"name": args.schedule, "epochs": args.epochs}
            if args.epochs is not None:  # a planned run: say whether the budget allowed all of it
                schedule["completed"] = state["epochs"] >= args.epochs
            record = run_record(
                args.seed,
                time.perf_counter() - start,
                epochs=state["epochs"],
                training_seconds=state["seconds"],
                schedule=schedule,
            )
            # a run that spans sittings (and machines) keeps what each one trained, and where
            session = {key: record[key] for key in ("command", "source", "hardware", "versions")}
            session["epochs"] = [before["epochs"] if before else 0, state["epochs"]]
            session["training_seconds"] = round(state["seconds"] - (before["seconds"] if before else 0.0), 2)
            if not finished:
                session["running"] = True  # until the sitting ends; a later one finding it knows it was killed
            record["sessions"] = [*sessions, session]
            write_json_atomically(run_dir / "record.json", record)

        state = train_for(
            model,
            x_train,
            args.minutes,
            run_dir,
            seed=args.seed,
            log=True,
            keep=keep,
            schedule=args.schedule,
            epochs=args.epochs,
            on_epoch=record_sitting,
        )
        save_model_atomically(model, run_dir / "model.keras")
        record_sitting(state, finished=True)
        if args.epochs is not None and state["epochs"] < args.epochs:
            print(
                f"budget not met: the {args.minutes:g} minutes ran out after {state['epochs']} of the "
                f"{args.epochs} planned passes, before the schedule annealed; rerun with a larger --minutes "
                "to finish the run",
                flush=True,
            )
        return

    x = vaelib.fixed_binarize(x_test, args.seed)
    if args.command == "snapshots":
        ks = [int(v) for v in args.snapshot_samples.split(",")]
        started = time.perf_counter() - start
        measure_snapshots(args.runs, args.results, x[: args.images], ks, args.seed, started, args.name)
        return
    ks = [int(v) for v in args.samples.split(",")]
    for name in [args.objective] if args.objective else list(OBJECTIVES):
        run_dir = args.runs / name
        if not (run_dir / "model.keras").exists():
            print(f"{name}: not trained, skipped")
            continue
        model = keras.models.load_model(run_dir / "model.keras")
        trained = json.loads((run_dir / "state.json").read_text())
        result = {"epochs": trained["epochs"], "train_minutes": trained["seconds"] / 60, "k": {}}
        per_image = {}
        for k in ks:
            t0 = time.perf_counter()
            log_px = vaelib.log_likelihood(model, x, num_samples=k, seed=args.seed)
            mean, stderr = vaelib.mean_and_stderr(log_px)
            per_image[f"k{k}"] = log_px
            seconds = time.perf_counter() - t0
            result["k"][str(k)] = {"mean": mean, "stderr": stderr, "seconds": round(seconds, 1)}
            print(f"{name:7s} k={k:5d}  log p(x) ~ {mean:8.3f} +- {stderr:.3f}  ({seconds:.0f} s)", flush=True)
        record = run_record(
            args.seed,
            time.perf_counter() - start,
            test_images=len(x),
            binarization=f"fixed, seed {args.seed}",
            **result,
        )
        save_npz_atomically(run_dir / "evaluation.npz", **per_image)  # per image, for paired differences
        write_json_atomically(run_dir / "evaluation.json", record)
        args.results.mkdir(parents=True, exist_ok=True)
        save_model_atomically(model, args.results / f"{args.name}_{name}.keras")  # the model behind the numbers
    collect(args.runs, args.results, args.name)


def measure_snapshots(
    runs: Path, results: Path, x: np.ndarray, ks: list[int], seed: int, started: float, name: str = "log_likelihood"
) -> None:
    """Measure every kept model (cached beside it), then write the snapshot results from all measurements."""
    start = time.perf_counter() - started
    for objective in OBJECTIVES:
        state_path = runs / objective / "state.json"
        if not state_path.exists():
            continue
        kept = json.loads(state_path.read_text())["notes"].get("snapshots", {})
        for epoch, seconds in kept.items():
            folder = runs / objective / "snapshots"
            measured = folder / f"epoch{int(epoch):05d}.measured.npz"
            done = dict(np.load(measured)) if measured.exists() else {}
            if all(f"k{k}" in done and len(done[f"k{k}"]) == len(x) for k in ks):
                continue
            model = keras.models.load_model(folder / f"epoch{int(epoch):05d}.keras")
            for k in ks:
                if f"k{k}" not in done or len(done[f"k{k}"]) != len(x):
                    done[f"k{k}"] = vaelib.log_likelihood(model, x, num_samples=k, seed=seed)
                    print(f"{objective:7s} epoch {int(epoch):5d} k={k:5d}  {done[f'k{k}'].mean():8.3f}", flush=True)
            save_npz_atomically(measured, seconds=np.float64(seconds), **done)
    collect_snapshots(runs, results, ks, len(x), seed, time.perf_counter() - start, name)


def collect_snapshots(
    runs: Path, results: Path, ks: list[int], images: int, seed: int, seconds: float, name: str = "log_likelihood"
) -> None:
    """``results/<name>_snapshots.{csv,npz,json}`` from every measured snapshot."""
    rows, arrays = [], {}
    for objective in OBJECTIVES:
        for measured in sorted((runs / objective / "snapshots").glob("epoch*.measured.npz")):
            epoch = int(measured.name[len("epoch") : len("epoch") + 5])
            with np.load(measured) as f:
                for k in ks:
                    if f"k{k}" not in f or len(f[f"k{k}"]) != images:
                        continue
                    arrays[f"{objective}_e{epoch}_k{k}"] = f[f"k{k}"]
                    mean, stderr = vaelib.mean_and_stderr(f[f"k{k}"])
                    rows.append([objective, epoch, f"{float(f['seconds']):.1f}", k, f"{mean:.3f}", f"{stderr:.3f}"])
    results.mkdir(parents=True, exist_ok=True)
    header = ["objective", "epoch", "train_seconds", "k", "test_log_likelihood", "stderr"]
    write_csv_atomically(results / f"{name}_snapshots.csv", header, rows)
    save_npz_atomically(results / f"{name}_snapshots.npz", **arrays)
    training = {
        objective: json.loads((runs / objective / "record.json").read_text())
        for objective in OBJECTIVES
        if (runs / objective / "record.json").exists()
    }
    record = run_record(seed, seconds, test_images=images, binarization=f"fixed, seed {seed}", training=training)
    write_json_atomically(results / f"{name}_snapshots.json", record)


def earlier_sessions(run_dir: Path, before: dict | None) -> list[dict]:
    """The sittings record.json lists before this one, closed up to the run's state ``before``.

    A sitting killed after it recorded a pass is still marked ``running``: its passes and training time
    are set to those of the last checkpoint, and it is marked ``ended: killed``.
    """
    path = run_dir / "record.json"
    sessions = json.loads(path.read_text()).get("sessions", []) if path.exists() else []
    if before is not None and sessions and sessions[-1].pop("running", False):
        others = sum(s.get("training_seconds", 0.0) for s in sessions[:-1])
        sessions[-1]["epochs"][1] = before["epochs"]
        sessions[-1]["training_seconds"] = round(before["seconds"] - others, 2)
        sessions[-1]["ended"] = "killed: passes and training time are those of its last checkpoint"
    return sessions


def collect(runs: Path, results: Path, name: str = "log_likelihood") -> None:
    """Write results/<name>.csv and .json (evaluation and training records) from every evaluated run, and
    <name>.npz (``<objective>_k<k>``: the estimate per test image) where the runs kept them."""
    rows, records, arrays = [], {}, {}
    for objective in OBJECTIVES:
        path = runs / objective / "evaluation.json"
        if path.exists():
            entry = records[objective] = json.loads(path.read_text())
            training = runs / objective / "record.json"  # how the model was trained: command, versions, hardware
            if training.exists():
                entry["training"] = json.loads(training.read_text())
            if (runs / objective / "evaluation.npz").exists():
                with np.load(runs / objective / "evaluation.npz") as f:
                    arrays.update({f"{objective}_{key}": f[key] for key in f.files})
            for k, value in entry["k"].items():
                rows.append([ARCHITECTURE, objective, k, f"{value['mean']:.3f}", f"{entry['train_minutes']:.1f}"])
    results.mkdir(parents=True, exist_ok=True)
    write_csv_atomically(
        results / f"{name}.csv", ["model", "objective", "k", "test_log_likelihood", "train_minutes"], rows
    )
    write_json_atomically(results / f"{name}.json", records)
    if arrays:
        save_npz_atomically(results / f"{name}.npz", **arrays)


if __name__ == "__main__":
    main()

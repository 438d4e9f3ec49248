"""Importance-sampled log-likelihood of the reference model (784-200-200-50), trained with the ELBO or IWAE.

    python experiments/log_likelihood.py train elbo --minutes 60     # the reference model
    python experiments/log_likelihood.py train iwae5 --minutes 25    # IWAE objective, k = 5
    python experiments/log_likelihood.py train iwae50 --minutes 25   # IWAE objective, k = 50
    python experiments/log_likelihood.py train elbo --schedule cosine --epochs 1000 --minutes 60
                                                                     # a fixed-length run, annealed at its end
    python experiments/log_likelihood.py evaluate                    # k in {1, 5, 50, 500, 5000}
    python experiments/log_likelihood.py evaluate iwae5              # one model (results keep the others)
    python experiments/log_likelihood.py snapshots                   # every kept epoch of every model

Training runs in ``runs/log_likelihood/<objective>`` for a wall-clock budget and resumes there if killed
(rerun with a larger --minutes to train longer). Its step sizes follow Burda et al.'s schedule of passes,
or (``--schedule cosine``) a cosine over ``--epochs`` passes, which ends when they are done or the
budget is spent; the record says which, and how many passes were trained.

``evaluate`` measures every trained model on the 10,000 test images, binarised once with seed 0, and
writes ``results/log_likelihood.csv`` (columns ``model, objective, k, test_log_likelihood,
train_minutes``), ``results/log_likelihood.json`` (command, seed, versions, hardware, wall time, epochs,
standard errors), ``results/log_likelihood.npz`` (``<objective>_k<k>``, the estimate per test image, for
paired differences) and ``results/reference.keras``.

Training keeps the model after the passes of ``--keep`` (``snapshots/epoch<e>.keras``, with the time they
took), so the objectives can be compared at equal passes and at equal time. ``snapshots`` measures each
kept model on the first ``--images`` test images for the k of ``--snapshot-samples``; each measurement
is kept beside its snapshot (a rerun skips it), and ``results/log_likelihood_snapshots.csv`` (columns
``objective, epoch, train_seconds, k, test_log_likelihood, stderr``), ``.npz`` (the per-image estimates,
``<objective>_e<epoch>_k<k>``, for paired differences) and ``.json`` (the records) are written.
"""

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

import vaelib
from vaelib._files import save_model_atomically, save_npz_atomically, write_csv_atomically, write_json_atomically
from vaelib._scripts import run_record, script_arguments, use_threads
from vaelib.reproduce import LEARNING_RATE_SCHEDULES, reference_model, train_for

ROOT = Path(__file__).resolve().parents[1]
OBJECTIVES = {"elbo": ("elbo", 1), "iwae5": ("iwae", 5), "iwae50": ("iwae", 50)}
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
    script_arguments(parser, runs=ROOT / "runs" / "log_likelihood", results=ROOT / "results")
    args = parser.parse_args()
    if (args.schedule == "cosine") != (args.epochs is not None):  # a usage error, before any data is loaded
        parser.error("--epochs goes with --schedule cosine, and only with it")
    use_threads(args.threads)
    (x_train, _), (x_test, _) = vaelib.load_mnist()
    start = time.perf_counter()
    if args.command == "train":
        if args.objective is None:
            parser.error("train needs an objective: " + ", ".join(OBJECTIVES))
        objective, k = OBJECTIVES[args.objective]
        keras.utils.set_random_seed(args.seed)
        model = reference_model(objective, k)
        keep = [int(v) for v in args.keep.split(",")]
        state = train_for(
            model,
            x_train,
            args.minutes,
            args.runs / args.objective,
            seed=args.seed,
            log=True,
            keep=keep,
            schedule=args.schedule,
            epochs=args.epochs,
        )
        save_model_atomically(model, args.runs / args.objective / "model.keras")
        schedule = {"name": args.schedule, "epochs": args.epochs}
        if args.epochs is not None:  # a planned run: say whether the budget allowed all of it
            schedule["completed"] = state["epochs"] >= args.epochs
            if not schedule["completed"]:
                print(
                    f"budget not met: the {args.minutes:g} minutes ran out after {state['epochs']} of the "
                    f"{args.epochs} planned passes, before the schedule annealed; rerun with a larger --minutes "
                    "to finish the run",
                    flush=True,
                )
        record = run_record(
            args.seed,
            time.perf_counter() - start,
            epochs=state["epochs"],
            training_seconds=state["seconds"],
            schedule=schedule,
        )
        write_json_atomically(args.runs / args.objective / "record.json", record)
        return

    x = vaelib.fixed_binarize(x_test, args.seed)
    if args.command == "snapshots":
        ks = [int(v) for v in args.snapshot_samples.split(",")]
        measure_snapshots(args.runs, args.results, x[: args.images], ks, args.seed, time.perf_counter() - start)
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
            stderr = float(log_px.std(ddof=1) / np.sqrt(len(x)))
            per_image[f"k{k}"] = log_px
            seconds = time.perf_counter() - t0
            result["k"][str(k)] = {"mean": float(log_px.mean()), "stderr": stderr, "seconds": round(seconds, 1)}
            print(f"{name:7s} k={k:5d}  log p(x) ~ {log_px.mean():8.3f} +- {stderr:.3f}  ({seconds:.0f} s)", flush=True)
        record = run_record(
            args.seed,
            time.perf_counter() - start,
            test_images=len(x),
            binarization=f"fixed, seed {args.seed}",
            **result,
        )
        save_npz_atomically(run_dir / "evaluation.npz", **per_image)  # per image, for paired differences
        write_json_atomically(run_dir / "evaluation.json", record)
        if name == "elbo":
            args.results.mkdir(parents=True, exist_ok=True)
            save_model_atomically(model, args.results / "reference.keras")
    collect(args.runs, args.results)


def measure_snapshots(runs: Path, results: Path, x: np.ndarray, ks: list[int], seed: int, started: float) -> None:
    """Measure every kept model (cached beside it), then write the snapshot results from all measurements."""
    start = time.perf_counter() - started
    for name in OBJECTIVES:
        state_path = runs / name / "state.json"
        if not state_path.exists():
            continue
        kept = json.loads(state_path.read_text()).get("snapshots", {})
        for epoch, seconds in kept.items():
            folder = runs / name / "snapshots"
            measured = folder / f"epoch{int(epoch):05d}.measured.npz"
            done = dict(np.load(measured)) if measured.exists() else {}
            if all(f"k{k}" in done and len(done[f"k{k}"]) == len(x) for k in ks):
                continue
            model = keras.models.load_model(folder / f"epoch{int(epoch):05d}.keras")
            for k in ks:
                if f"k{k}" not in done or len(done[f"k{k}"]) != len(x):
                    done[f"k{k}"] = vaelib.log_likelihood(model, x, num_samples=k, seed=seed)
                    print(f"{name:7s} epoch {int(epoch):5d} k={k:5d}  {done[f'k{k}'].mean():8.3f}", flush=True)
            save_npz_atomically(measured, seconds=np.float64(seconds), **done)
    collect_snapshots(runs, results, ks, len(x), seed, time.perf_counter() - start)


def collect_snapshots(runs: Path, results: Path, ks: list[int], images: int, seed: int, seconds: float) -> None:
    """``results/log_likelihood_snapshots.{csv,npz,json}`` from every measured snapshot."""
    rows, arrays = [], {}
    for name in OBJECTIVES:
        for measured in sorted((runs / name / "snapshots").glob("epoch*.measured.npz")):
            epoch = int(measured.name[len("epoch") : len("epoch") + 5])
            with np.load(measured) as f:
                for k in ks:
                    if f"k{k}" not in f or len(f[f"k{k}"]) != images:
                        continue
                    values = f[f"k{k}"]
                    arrays[f"{name}_e{epoch}_k{k}"] = values
                    stderr = values.std(ddof=1) / np.sqrt(len(values))
                    rows.append([name, epoch, f"{float(f['seconds']):.1f}", k, f"{values.mean():.3f}", f"{stderr:.3f}"])
    results.mkdir(parents=True, exist_ok=True)
    header = ["objective", "epoch", "train_seconds", "k", "test_log_likelihood", "stderr"]
    write_csv_atomically(results / "log_likelihood_snapshots.csv", header, rows)
    save_npz_atomically(results / "log_likelihood_snapshots.npz", **arrays)
    training = {
        name: json.loads((runs / name / "record.json").read_text())
        for name in OBJECTIVES
        if (runs / name / "record.json").exists()
    }
    record = run_record(seed, seconds, test_images=images, binarization=f"fixed, seed {seed}", training=training)
    write_json_atomically(results / "log_likelihood_snapshots.json", record)


def collect(runs: Path, results: Path) -> None:
    """Write results/log_likelihood.csv and .json (evaluation and training records) from every evaluated run,
    and log_likelihood.npz (``<objective>_k<k>``: the estimate per test image) where the runs kept them."""
    rows, records, arrays = [], {}, {}
    for name in OBJECTIVES:
        path = runs / name / "evaluation.json"
        if path.exists():
            records[name] = json.loads(path.read_text())
            training = runs / name / "record.json"  # how the model was trained: command, versions, hardware
            if training.exists():
                records[name]["training"] = json.loads(training.read_text())
            if (runs / name / "evaluation.npz").exists():
                with np.load(runs / name / "evaluation.npz") as f:
                    arrays.update({f"{name}_{key}": f[key] for key in f.files})
            for k, value in records[name]["k"].items():
                rows.append([ARCHITECTURE, name, k, f"{value['mean']:.3f}", f"{records[name]['train_minutes']:.1f}"])
    results.mkdir(parents=True, exist_ok=True)
    write_csv_atomically(
        results / "log_likelihood.csv", ["model", "objective", "k", "test_log_likelihood", "train_minutes"], rows
    )
    write_json_atomically(results / "log_likelihood.json", records)
    if arrays:
        save_npz_atomically(results / "log_likelihood.npz", **arrays)


if __name__ == "__main__":
    main()

"""Figure 3's final models on more images: the estimated marginal likelihood of every image, for paired comparisons.

    python experiments/aevb_fig3_final.py                          # after experiments/aevb_fig3.py
    python experiments/aevb_fig3_final.py --methods mcem --threads 1 &  python experiments/aevb_fig3_final.py \\
        --methods aevb,wake_sleep --threads 1                      # both cores

Figure 3's curves estimate log p(x) on 100 training and 100 test images at every point. Images differ
by tens of nats, so a mean over 100 of them is uncertain by several nats, and a training-set mean and a
test-set mean (other images) cannot be compared to better than that. For every finished curve of
``runs/aevb_fig3``, this measures the model after its last training sample with the same estimator
(``vaelib.paper.marginal_likelihoods``, the curve's L and seed) on the first ``--images`` test images
and the first ``--images`` images of its training set (all of them if it has fewer), binarised once with
the seed. The curve's 100 evaluation images are the first 100 of these, with the same estimates. The
methods are measured on the same images, so they can be compared image by image.

Writes ``results/aevb_fig3_final.npz`` (the estimate per image, ``<method>_n<N_train>_<train|test>``),
``results/aevb_fig3_final.csv`` (columns ``method, n_train, split, images, mean, stderr``, nats per
image) and ``results/aevb_fig3_final.json`` (how each model was measured, by method and N_train). Results
of other models already there are kept, so processes side by side can share the models out.
"""

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

import vaelib
from vaelib._files import locked, save_npz_atomically, write_csv_atomically, write_json_atomically
from vaelib._scripts import choices, run_record, script_arguments, use_threads
from vaelib.paper.experiments import ESTIMATOR_BURNIN, FIG3_METHODS, FIG3_TRAIN_SIZES, marginal_likelihoods

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["method", "n_train", "split", "images", "mean", "stderr"]
NUM_BURNIN = ESTIMATOR_BURNIN  # HMC transitions before the estimator's draws, as along the curves


def finished_curve(run_dir: Path) -> dict | None:
    """A finished curve in ``run_dir`` (its model saved after its last point): its settings and ``samples``."""
    state_file, model_file = run_dir / "state.json", run_dir / "model.keras"
    if not (state_file.exists() and model_file.exists()):
        return None
    state = json.loads(state_file.read_text())
    samples = state["steps"] * 100  # minibatches of 100
    if not state["rows"] or state["rows"][-1]["samples"] != samples:
        return None  # trained on past its last point: the saved model is not the curve's last
    return {**json.loads((run_dir / "config.json").read_text()), "samples": samples}


def write_results(results: Path, estimates: dict[str, np.ndarray], key: str, record: dict) -> None:
    """Add one model's estimates and record to the results files, keeping the other models'."""
    npz, json_file = results / "aevb_fig3_final.npz", results / "aevb_fig3_final.json"
    with locked(json_file):
        arrays = dict(np.load(npz)) if npz.exists() else {}
        records = json.loads(json_file.read_text()) if json_file.exists() else {}
        arrays.update(estimates)
        method, n_train = key.rsplit("_n", 1)
        records.setdefault(method, {})[n_train] = record
        records = {m: dict(sorted(records[m].items(), key=lambda kv: int(kv[0]))) for m in FIG3_METHODS if m in records}
        save_npz_atomically(npz, **arrays)
        write_json_atomically(json_file, records)
        rows = []
        for m, by_size in records.items():
            for n in by_size:
                for split in ("train", "test"):
                    values = arrays[f"{m}_n{n}_{split}"]
                    mean, stderr = vaelib.mean_and_stderr(values)
                    rows.append([m, n, split, len(values), f"{mean:.3f}", f"{stderr:.3f}"])
        write_csv_atomically(results / "aevb_fig3_final.csv", COLUMNS, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default=",".join(FIG3_METHODS), help="comma-separated: aevb, wake_sleep, mcem")
    parser.add_argument("--train-sizes", default=",".join(map(str, FIG3_TRAIN_SIZES)), help="comma-separated N_train")
    parser.add_argument("--images", type=int, default=1000, help="test (and training) images measured per model")
    script_arguments(parser, runs=ROOT / "runs" / "aevb_fig3", results=ROOT / "results")
    args = parser.parse_args()
    methods = choices(parser, args.methods, FIG3_METHODS, "method")
    train_sizes = [int(v) for v in args.train_sizes.split(",")]
    if args.images < 100:
        parser.error(f"--images must be at least 100 (the curves' evaluation images), got {args.images}")
    use_threads(args.threads)
    (x_train, _), (x_test, _) = vaelib.load_mnist()
    args.results.mkdir(parents=True, exist_ok=True)
    for method in methods:
        for n_train in train_sizes:
            run_dir = args.runs / f"{method}_n{n_train}"
            state = finished_curve(run_dir)
            if state is None:
                print(f"{run_dir}: no finished curve, skipped", flush=True)
                continue
            start = time.perf_counter()
            model = keras.models.load_model(run_dir / "model.keras")
            sets = {
                "train": vaelib.fixed_binarize(x_train[: min(args.images, n_train)], state["seed"]),
                "test": vaelib.fixed_binarize(x_test[: args.images], state["seed"]),
            }
            key = f"{method}_n{n_train}"
            estimates = {
                f"{key}_{split}": marginal_likelihoods(
                    model, x, state["estimator_samples"], NUM_BURNIN, seed=state["seed"]
                ).astype(np.float32)
                for split, x in sets.items()
            }
            record = run_record(
                state["seed"],
                time.perf_counter() - start,
                samples=state["samples"],
                images={split: len(x) for split, x in sets.items()},
                estimator_samples=state["estimator_samples"],
                num_burnin=NUM_BURNIN,
                data="the first images of the curve's training set and of the test set, binarised once with the seed",
            )
            write_results(args.results, estimates, key, record)
            means = ", ".join(f"{k.rsplit('_', 1)[1]} {v.mean():.2f}" for k, v in estimates.items())
            print(f"{method:>10} N_train = {n_train:>6,}: {means} nats ({record['wall_seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()

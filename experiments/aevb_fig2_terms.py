"""Figure 2's final models: their test bound split into rate and distortion, their active latent dimensions,
and the bound of every training and test image, for a training-minus-test difference with a standard error.

    python experiments/aevb_fig2_terms.py     # after experiments/aevb_fig2.py, from its run folders
    python experiments/aevb_fig2_terms.py --latent-dims 20,200   # some of them

For every finished curve of ``runs/aevb_fig2`` (both methods, every N_z), the model after its last
training sample is measured on the 10,000 test images, binarised once with the seed (as the figure's
test bound): the rate KL(q(z|x) || p(z)) and the distortion -E_q[log p(x|z)] of its bound, with one
draw of z per image (``vaelib.rate_and_distortion``), and the number of latent dimensions whose rate
exceeds 0.01 nat. It also measures the bound of every image of the 60,000 training and the 10,000 test
images, binarised once with the seed, with the draws of the figure's curve (``vaelib.elbo`` on batches
of 1,000, the batch that starts at image i with seed ``seed + i``, as ``vaelib.paper.mean_bound``): their
means are the curve's last training and test bounds, and their spreads give those means' standard
errors, s / sqrt(n). The training and the test images are different images, so the standard error of
the training-minus-test difference is sqrt(se_train^2 + se_test^2).

Writes ``results/aevb_fig2_terms.csv`` (columns ``method, n_z, samples, rate, distortion, test_bound,
test_stderr, train_bound, train_stderr, active_dims``, nats per datapoint),
``results/aevb_fig2_terms.npz`` (the bound per image, float32, ``<method>_nz<N_z>_<train|test>``) and
``results/aevb_fig2_terms.json`` (command, seed, versions, hardware, wall time, each dimension's rate,
and each model's training-minus-test difference with its standard error).
"""

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

import vaelib
from vaelib._files import save_npz_atomically, write_csv_atomically, write_json_atomically
from vaelib._scripts import run_record, script_arguments, use_threads
from vaelib.paper.experiments import FIG2_LATENT_DIMS, FIG2_METHODS, fig2_run_folder

ROOT = Path(__file__).resolve().parents[1]
ACTIVE = 0.01  # nats: a dimension whose rate is above this carries information about x
BATCH = 1000  # images per batch, and the step of the seeds, as in vaelib.paper.mean_bound
COLUMNS = [
    "method",
    "n_z",
    "samples",
    "rate",
    "distortion",
    "test_bound",
    "test_stderr",
    "train_bound",
    "train_stderr",
    "active_dims",
]


def per_image_bounds(model: keras.Model, x: np.ndarray, seed: int) -> np.ndarray:
    """The one-sample bound of every image of ``x``, with the draws of ``vaelib.paper.mean_bound`` (its mean)."""
    batches = [vaelib.elbo(model, x[i : i + BATCH], seed=seed + i).numpy() for i in range(0, len(x), BATCH)]
    return np.concatenate(batches).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latent-dims", default=",".join(map(str, FIG2_LATENT_DIMS)), help="comma-separated N_z")
    script_arguments(parser, runs=ROOT / "runs" / "aevb_fig2", results=ROOT / "results")
    args = parser.parse_args()
    latent_dims = [int(v) for v in args.latent_dims.split(",")]
    use_threads(args.threads)
    start = time.perf_counter()
    (x_train, _), (x_test, _) = vaelib.load_mnist()
    x_train_eval = vaelib.fixed_binarize(x_train, args.seed)
    x_eval = vaelib.fixed_binarize(x_test, args.seed)
    rows, per_dim, per_image, differences = [], {}, {}, {}
    for method in FIG2_METHODS:
        for n_z in latent_dims:
            run_dir = fig2_run_folder(args.runs, method, n_z)
            if not (run_dir / "model.keras").exists():
                parser.error(f"{run_dir} has no finished model: run experiments/aevb_fig2.py first")
            model = keras.models.load_model(run_dir / "model.keras")
            samples = json.loads((run_dir / "state.json").read_text())["rows"][-1]["samples"]
            measured = vaelib.rate_and_distortion(model, x_eval, seed=args.seed)
            active = int((measured["rate_per_dim"] > ACTIVE).sum())
            key = f"{method}_nz{n_z}"
            per_image[f"{key}_train"] = per_image_bounds(model, x_train_eval, args.seed)
            per_image[f"{key}_test"] = per_image_bounds(model, x_eval, args.seed)
            (train, train_se), (test, test_se) = (
                vaelib.mean_and_stderr(per_image[f"{key}_{split}"]) for split in ("train", "test")
            )
            difference, difference_se = train - test, float(np.hypot(train_se, test_se))
            differences.setdefault(method, {})[str(n_z)] = {
                "train_minus_test": round(difference, 4),
                "stderr": round(difference_se, 4),
            }
            rows.append(
                [method, n_z, samples, measured["rate"], measured["distortion"], test, test_se, train, train_se, active]
            )
            per_dim.setdefault(method, {})[str(n_z)] = [round(float(r), 5) for r in measured["rate_per_dim"]]
            print(
                f"{method:>10} N_z = {n_z:>3}: rate {measured['rate']:7.2f}, distortion {measured['distortion']:7.2f},"
                f" test bound {test:8.2f} ± {test_se:.2f}, training bound {train:8.2f} ± {train_se:.2f},"
                f" training - test {difference:+.2f} ± {difference_se:.2f} nats; {active} active dimensions",
                flush=True,
            )
    args.results.mkdir(parents=True, exist_ok=True)
    write_csv_atomically(
        args.results / "aevb_fig2_terms.csv",
        COLUMNS,
        (
            [m, n, s, f"{r:.3f}", f"{d:.3f}", f"{te:.3f}", f"{te_se:.3f}", f"{tr:.3f}", f"{tr_se:.3f}", a]
            for m, n, s, r, d, te, te_se, tr, tr_se, a in rows
        ),
    )
    save_npz_atomically(args.results / "aevb_fig2_terms.npz", **per_image)
    record = run_record(
        args.seed,
        time.perf_counter() - start,
        data="the 60,000 MNIST training and 10,000 test images, each set binarised once with the seed",
        active_threshold_nats=ACTIVE,
        rate_per_dim=per_dim,
        train_minus_test=differences,
    )
    write_json_atomically(args.results / "aevb_fig2_terms.json", record)


if __name__ == "__main__":
    main()

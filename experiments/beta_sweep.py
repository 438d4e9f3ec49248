"""beta-VAE on MNIST: the KL weight's trade-off between rate and distortion, one model per beta.

    python experiments/beta_sweep.py        # beta in {0.25, 0.5, 1, 2, 4, 8}, 784-500-20, 10 epochs each

Models train in ``runs/beta_sweep`` (a finished beta is not trained again). Writes
``results/beta_sweep.csv`` (columns ``beta, rate, distortion, elbo``, nats per test datapoint),
``results/beta_sweep.npz`` (prior samples and reconstructions per beta) and ``results/beta_sweep.json``
(command, seed, versions, hardware, wall time).
"""

import argparse
import time
from pathlib import Path

import numpy as np

import vaelib
from vaelib._files import save_npz_atomically, write_csv_atomically, write_json_atomically
from vaelib._scripts import run_record, script_arguments, use_threads
from vaelib.paper.experiments import beta_sweep

ROOT = Path(__file__).resolve().parents[1]
BETAS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--betas", default=",".join(map(str, BETAS)), help="comma-separated KL weights")
    parser.add_argument("--epochs", type=int, default=10)
    script_arguments(parser, runs=ROOT / "runs" / "beta_sweep", results=ROOT / "results")
    args = parser.parse_args()
    use_threads(args.threads)
    start = time.perf_counter()
    (x_train, _), (x_test, _) = vaelib.load_mnist()
    betas = [float(b) for b in args.betas.split(",")]
    rows = beta_sweep(args.runs, x_train, x_test, betas, args.epochs, seed=args.seed, log=True)
    args.results.mkdir(parents=True, exist_ok=True)
    write_csv_atomically(
        args.results / "beta_sweep.csv",
        ["beta", "rate", "distortion", "elbo"],
        ([f"{r['beta']:g}", f"{r['rate']:.3f}", f"{r['distortion']:.3f}", f"{r['elbo']:.3f}"] for r in rows),
    )
    save_npz_atomically(
        args.results / "beta_sweep.npz",
        beta=np.array(betas),
        samples=np.round(255 * np.stack([r["samples"] for r in rows])).astype(np.uint8),
        reconstructions=np.round(255 * np.stack([r["reconstructions"] for r in rows])).astype(np.uint8),
    )
    record = run_record(
        args.seed,
        time.perf_counter() - start,
        model="784-500-20 tanh, Bernoulli decoder",
        optimizer="Adam, step size 1e-3, minibatch 100, L = 1",
        epochs=args.epochs,
        data="training: dynamic binarisation; test: binarised once with the seed",
        training_seconds={f"{r['beta']:g}": round(r["seconds"], 1) for r in rows},
    )
    write_json_atomically(args.results / "beta_sweep.json", record)


if __name__ == "__main__":
    main()

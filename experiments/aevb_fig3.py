"""AEVB Figure 3 on MNIST: the estimated marginal likelihood against training samples, AEVB, wake-sleep and MCEM.

    python experiments/aevb_fig3.py                                    # every curve (hours on 2 cores)
    python experiments/aevb_fig3.py --methods mcem --train-sizes 1000  # some of them
    python experiments/aevb_fig3.py --threads 1 &  python experiments/aevb_fig3.py --threads 1   # both cores

The paper's small model, 784-100-3, on N_train = 1,000 and 50,000 MNIST images (the first N_train of the
training set), trained by AEVB, wake-sleep and Monte Carlo EM with Adagrad at one step size. Monte Carlo
EM keeps a chain per data point, so by default it runs on the small training set only, as in the paper
(``--mcem-train-sizes``). At log-spaced points the marginal likelihood is estimated with the paper's HMC
estimator (``vaelib.hmc_log_likelihood``) on the first ``--eval-images`` images of the training set and
of the test set.

Each curve trains in ``runs/aevb_fig3/<method>_n<N_train>`` and resumes there if killed. A curve whose
folder another process holds is skipped, so processes started side by side share the curves out. When a
curve is done, ``results/aevb_fig3.csv`` (columns ``method, n_train, samples, train_marginal_ll,
test_marginal_ll``) and ``results/aevb_fig3.json`` (how each curve was made, by method and N_train) are
rewritten from every finished curve's record.
"""

import argparse
import json
import time
from pathlib import Path

import vaelib
from vaelib._files import locked, write_csv_atomically, write_json_atomically
from vaelib._scripts import choices, merge_curve_record, run_record, script_arguments, use_threads
from vaelib.paper.experiments import FIG3_METHODS, FIG3_TRAIN_SIZES, figure3_curve
from vaelib.training import RunInUse

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["method", "n_train", "samples", "train_marginal_ll", "test_marginal_ll"]


def write_results(results: Path, record: dict, method: str, n_train: int) -> None:
    """Add a finished curve's record to ``aevb_fig3.json``; rewrite ``aevb_fig3.csv`` from all the records.

    A curve whose rows are recorded already keeps its record (see :func:`vaelib._scripts.merge_curve_record`).
    """
    path = results / "aevb_fig3.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    records = merge_curve_record(previous, method, n_train, record, FIG3_METHODS)
    if records is None:
        return
    write_json_atomically(path, records)
    write_csv_atomically(
        results / "aevb_fig3.csv",
        COLUMNS,
        (
            [m, row["n_train"], row["samples"], f"{row['train_marginal_ll']:.3f}", f"{row['test_marginal_ll']:.3f}"]
            for m, by_size in records.items()
            for entry in by_size.values()
            for row in entry["rows"]
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default=",".join(FIG3_METHODS), help="comma-separated: aevb, wake_sleep, mcem")
    parser.add_argument("--train-sizes", default=",".join(map(str, FIG3_TRAIN_SIZES)), help="comma-separated N_train")
    parser.add_argument("--mcem-train-sizes", default="1000", help="the N_train Monte Carlo EM runs on")
    parser.add_argument("--max-samples", type=float, default=1e7, help="training samples per curve")
    parser.add_argument("--step-size", type=float, default=0.02, help="Adagrad's step size, for every method")
    parser.add_argument("--eval-images", type=int, default=100, help="train and test images estimated on")
    parser.add_argument("--estimator-samples", type=int, default=500, help="L of the HMC estimator")
    script_arguments(parser, runs=ROOT / "runs" / "aevb_fig3", results=ROOT / "results")
    args = parser.parse_args()
    methods = choices(parser, args.methods, FIG3_METHODS, "method")
    sizes = [int(v) for v in args.train_sizes.split(",")]
    mcem_sizes = {int(v) for v in args.mcem_train_sizes.split(",")}
    use_threads(args.threads)
    (x_train, _), (x_test, _) = vaelib.load_mnist()
    if max(sizes) > len(x_train):
        parser.error(f"--train-sizes: at most {len(x_train)} training images")
    args.results.mkdir(parents=True, exist_ok=True)
    for method in methods:
        for n_train in sizes:
            if method == "mcem" and n_train not in mcem_sizes:
                print(f"mcem, N_train = {n_train}: skipped (--mcem-train-sizes {args.mcem_train_sizes})")
                continue
            start = time.perf_counter()
            try:
                rows = figure3_curve(
                    args.runs / f"{method}_n{n_train}",
                    method,
                    x_train[:n_train],
                    x_test,
                    int(args.max_samples),
                    step_size=args.step_size,
                    eval_images=args.eval_images,
                    estimator_samples=args.estimator_samples,
                    seed=args.seed,
                    log=True,
                )
            except RunInUse:  # another process is training this curve: go on to the next
                print(f"{method}, N_train = {n_train}: skipped, it is in use by another process", flush=True)
                continue
            record = run_record(
                args.seed,
                time.perf_counter() - start,
                training_seconds=rows[-1]["seconds"],
                step_size=args.step_size,
                eval_images=args.eval_images,
                estimator_samples=args.estimator_samples,
                rows=rows,
            )
            with locked(args.results / "aevb_fig3.json"):
                write_results(args.results, record, method, n_train)


if __name__ == "__main__":
    main()

"""AEVB Figure 2 on MNIST: train and test lower bound against training samples, AEVB and wake-sleep, one panel per N_z.

    python experiments/aevb_fig2.py                                   # both methods, all five N_z, 10^7 samples each
    python experiments/aevb_fig2.py --methods wake_sleep --latent-dims 3,200   # some of them
    python experiments/aevb_fig2.py --threads 1 &  python experiments/aevb_fig2.py --threads 1   # both cores

Each curve trains in ``runs/aevb_fig2/<method>_nz<N_z>`` and resumes there if killed. A curve whose folder
another process holds is skipped, so processes started side by side share the curves out. When a curve is
done, the results of every finished curve are written to ``results/aevb_fig2.csv`` (columns ``method, n_z,
samples, train_bound, test_bound``, nats per datapoint) and ``results/aevb_fig2.json`` (how each curve was
made, by method and N_z: command, seed, step size, versions, hardware, wall time).
``experiments/manifolds.py`` draws prior samples from the trained AEVB models in ``runs/aevb_fig2``.
"""

import argparse
import json
import time
from pathlib import Path

import vaelib
from vaelib._files import locked, write_csv_atomically, write_json_atomically
from vaelib._scripts import choices, merge_curve_record, run_record, script_arguments, use_threads
from vaelib.paper.experiments import FIG2_LATENT_DIMS, FIG2_METHODS, aevb_curve, fig2_run_folder
from vaelib.training import RunInUse

ROOT = Path(__file__).resolve().parents[1]


def read_records(path: Path) -> dict:
    """The records by method, then N_z."""
    return json.loads(path.read_text()) if path.exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default=",".join(FIG2_METHODS), help="comma-separated: aevb, wake_sleep")
    parser.add_argument("--latent-dims", default=",".join(map(str, FIG2_LATENT_DIMS)), help="comma-separated N_z")
    parser.add_argument("--max-samples", type=float, default=1e7, help="training samples per curve")
    script_arguments(parser, runs=ROOT / "runs" / "aevb_fig2", results=ROOT / "results")
    args = parser.parse_args()
    methods = choices(parser, args.methods, FIG2_METHODS, "method")
    use_threads(args.threads)
    (x_train, _), (x_test, _) = vaelib.load_mnist()
    args.results.mkdir(parents=True, exist_ok=True)
    record_path = args.results / "aevb_fig2.json"
    for method in methods:
        for n_z in (int(v) for v in args.latent_dims.split(",")):
            run_dir = fig2_run_folder(args.runs, method, n_z)
            start = time.perf_counter()
            try:
                rows = aevb_curve(
                    run_dir, n_z, x_train, x_test, int(args.max_samples), seed=args.seed, log=True, method=method
                )
            except RunInUse:  # another process is training this curve: go on to the next
                print(f"{method} {n_z}: skipped, {run_dir} is in use by another process", flush=True)
                continue
            state = json.loads((run_dir / "state.json").read_text())
            with locked(record_path):
                write_results(args.results, args.seed, method, n_z, rows, state, time.perf_counter() - start)


def write_results(
    results: Path, seed: int, method: str, n_z: int, rows: list[dict], state: dict, seconds: float
) -> None:
    """Add a finished curve's record to ``aevb_fig2.json``; rewrite ``aevb_fig2.csv`` from all the records.

    A curve whose rows are recorded already keeps its record (see :func:`vaelib._scripts.merge_curve_record`).
    """
    record_path = results / "aevb_fig2.json"
    record = run_record(
        seed,
        seconds,
        training_seconds=rows[-1]["seconds"],
        step_size=state["notes"]["step_size"],
        step_size_scores=state["notes"]["step_size_scores"],
        rows=rows,
    )
    records = merge_curve_record(read_records(record_path), method, n_z, record, FIG2_METHODS)
    if records is None:
        return
    write_json_atomically(record_path, records)
    write_csv_atomically(
        results / "aevb_fig2.csv",
        ["method", "n_z", "samples", "train_bound", "test_bound"],
        (
            [m, row["n_z"], row["samples"], f"{row['train_bound']:.3f}", f"{row['test_bound']:.3f}"]
            for m, by_n_z in records.items()
            for record in by_n_z.values()
            for row in record["rows"]
        ),
    )


if __name__ == "__main__":
    main()

"""AEVB Figure 2 on MNIST: train and test lower bound against training samples, one curve per N_z.

    python experiments/aevb_fig2.py                      # all five N_z, 10^7 samples each (hours on 2 cores)
    python experiments/aevb_fig2.py --latent-dims 3,200  # some of them (e.g. two processes side by side)

Each curve trains in ``runs/aevb_fig2/nz<N_z>`` and resumes there if killed. When a curve is done, the
results of every finished curve are written to ``results/aevb_fig2.csv`` (columns ``n_z, samples,
train_bound, test_bound``, nats per datapoint) and ``results/aevb_fig2.json`` (how each curve was made:
command, seed, step size, versions, hardware, wall time). ``experiments/manifolds.py`` draws prior samples
from the trained models in ``runs/aevb_fig2``.
"""

import argparse
import json
import time
from pathlib import Path

import vaelib
from vaelib._files import write_csv_atomically, write_json_atomically
from vaelib._scripts import run_record, script_arguments, use_threads
from vaelib.reproduce import FIG2_LATENT_DIMS, aevb_curve

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latent-dims", default=",".join(map(str, FIG2_LATENT_DIMS)), help="comma-separated N_z")
    parser.add_argument("--max-samples", type=float, default=1e7, help="training samples per curve")
    script_arguments(parser, runs=ROOT / "runs" / "aevb_fig2", results=ROOT / "results")
    args = parser.parse_args()
    use_threads(args.threads)
    (x_train, _), (x_test, _) = vaelib.load_mnist()
    args.results.mkdir(parents=True, exist_ok=True)
    record_path = args.results / "aevb_fig2.json"
    for n_z in (int(v) for v in args.latent_dims.split(",")):
        run_dir = args.runs / f"nz{n_z}"
        start = time.perf_counter()
        rows = aevb_curve(run_dir, n_z, x_train, x_test, int(args.max_samples), seed=args.seed, log=True)
        state = json.loads((run_dir / "state.json").read_text())
        records = json.loads(record_path.read_text()) if record_path.exists() else {}
        records[str(n_z)] = run_record(
            args.seed,
            time.perf_counter() - start,
            training_seconds=rows[-1]["seconds"],
            step_size=state["step_size"],
            step_size_scores=state["step_size_scores"],
            rows=rows,
        )
        write_json_atomically(record_path, dict(sorted(records.items(), key=lambda kv: int(kv[0]))))
        write_csv_atomically(
            args.results / "aevb_fig2.csv",
            ["n_z", "samples", "train_bound", "test_bound"],
            (
                [row["n_z"], row["samples"], f"{row['train_bound']:.3f}", f"{row['test_bound']:.3f}"]
                for key in sorted(records, key=int)
                for row in records[key]["rows"]
            ),
        )


if __name__ == "__main__":
    main()

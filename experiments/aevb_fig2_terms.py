"""Figure 2's final models, their test bound split into rate and distortion, and their active latent dimensions.

    python experiments/aevb_fig2_terms.py     # after experiments/aevb_fig2.py, from its run folders
    python experiments/aevb_fig2_terms.py --latent-dims 20,200   # some of them

For every finished curve of ``runs/aevb_fig2`` (both methods, every N_z), the model after its last
training sample is measured on the 10,000 test images, binarised once with the seed (as the figure's
test bound): the rate KL(q(z|x) || p(z)) and the distortion -E_q[log p(x|z)] of its bound, with one
draw of z per image (``vaelib.rate_and_distortion``), and the number of latent dimensions whose rate
exceeds 0.01 nat. Writes ``results/aevb_fig2_terms.csv`` (columns ``method, n_z, samples, rate,
distortion, bound, active_dims``, nats per datapoint) and ``results/aevb_fig2_terms.json`` (command,
seed, versions, hardware, wall time, and each dimension's rate).
"""

import argparse
import json
import time
from pathlib import Path

import keras

import vaelib
from vaelib._files import write_csv_atomically, write_json_atomically
from vaelib._scripts import run_record, script_arguments, use_threads
from vaelib.paper.experiments import FIG2_LATENT_DIMS, FIG2_METHODS, fig2_run_folder

ROOT = Path(__file__).resolve().parents[1]
ACTIVE = 0.01  # nats: a dimension whose rate is above this carries information about x
COLUMNS = ["method", "n_z", "samples", "rate", "distortion", "bound", "active_dims"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latent-dims", default=",".join(map(str, FIG2_LATENT_DIMS)), help="comma-separated N_z")
    script_arguments(parser, runs=ROOT / "runs" / "aevb_fig2", results=ROOT / "results")
    args = parser.parse_args()
    latent_dims = [int(v) for v in args.latent_dims.split(",")]
    use_threads(args.threads)
    start = time.perf_counter()
    (_, _), (x_test, _) = vaelib.load_mnist()
    x_eval = vaelib.fixed_binarize(x_test, args.seed)
    rows, per_dim = [], {}
    for method in FIG2_METHODS:
        for n_z in latent_dims:
            run_dir = fig2_run_folder(args.runs, method, n_z)
            if not (run_dir / "model.keras").exists():
                parser.error(f"{run_dir} has no finished model: run experiments/aevb_fig2.py first")
            model = keras.models.load_model(run_dir / "model.keras")
            samples = json.loads((run_dir / "state.json").read_text())["rows"][-1]["samples"]
            measured = vaelib.rate_and_distortion(model, x_eval, seed=args.seed)
            active = int((measured["rate_per_dim"] > ACTIVE).sum())
            rows.append([method, n_z, samples, measured["rate"], measured["distortion"], measured["bound"], active])
            per_dim.setdefault(method, {})[str(n_z)] = [round(float(r), 5) for r in measured["rate_per_dim"]]
            print(
                f"{method:>10} N_z = {n_z:>3}: rate {measured['rate']:7.2f}, distortion {measured['distortion']:7.2f},"
                f" bound {measured['bound']:8.2f} nats; {active} active dimensions",
                flush=True,
            )
    args.results.mkdir(parents=True, exist_ok=True)
    write_csv_atomically(
        args.results / "aevb_fig2_terms.csv",
        COLUMNS,
        ([m, n, s, f"{r:.3f}", f"{d:.3f}", f"{b:.3f}", a] for m, n, s, r, d, b, a in rows),
    )
    record = run_record(
        args.seed,
        time.perf_counter() - start,
        data="the 10,000 MNIST test images, binarised once with the seed",
        active_threshold_nats=ACTIVE,
        rate_per_dim=per_dim,
    )
    write_json_atomically(args.results / "aevb_fig2_terms.json", record)


if __name__ == "__main__":
    main()

"""The learned 2-D manifold and prior samples (AEVB Figs. 4 and 5) for N_z in {2, 5, 10, 20}.

    python experiments/manifolds.py     # after experiments/aevb_fig2.py, whose N_z = 5, 10, 20 models it uses

Trains the paper's model with N_z = 2 (same setup as Fig. 2, 3 x 10^6 training samples) in
``runs/manifolds/nz2`` (resumable). Writes ``results/manifolds.npz``: the 20 x 20 manifold of the N_z = 2
model through the inverse Gaussian CDF (``grid``, ``values``) and 100 prior samples (decoder means) per
N_z (``samples_nz<N_z>``), grey levels as uint8; and ``results/manifolds.json`` (command, seed, versions,
hardware, wall time).
"""

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

import vaelib
from vaelib._files import save_npz_atomically, write_json_atomically
from vaelib._scripts import run_record, script_arguments, use_threads
from vaelib.paper.experiments import aevb_curve, fig2_run_folder

ROOT = Path(__file__).resolve().parents[1]
LATENT_DIMS = (2, 5, 10, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-samples", type=float, default=3e6, help="training samples of the N_z = 2 model")
    script_arguments(parser, runs=ROOT / "runs", results=ROOT / "results")
    args = parser.parse_args()
    use_threads(args.threads)
    start = time.perf_counter()
    (x_train, _), (x_test, _) = vaelib.load_mnist()
    rows = aevb_curve(args.runs / "manifolds" / "nz2", 2, x_train, x_test, int(args.max_samples), seed=args.seed)
    arrays, sources = {}, {}
    for n_z in LATENT_DIMS:
        run_dir = args.runs / "manifolds" / "nz2" if n_z == 2 else fig2_run_folder(args.runs / "aevb_fig2", "aevb", n_z)
        model = keras.models.load_model(run_dir / "model.keras")
        state = json.loads((run_dir / "state.json").read_text())
        sources[n_z] = {"training_samples": state["rows"][-1]["samples"], "test_bound": state["rows"][-1]["test_bound"]}
        arrays[f"samples_nz{n_z}"] = np.round(255 * model.sample(100, seed=args.seed)).astype(np.uint8)
        if n_z == 2:
            grid, values = vaelib.plotting.manifold_grid(model, 20)
            arrays["grid"], arrays["values"] = np.round(255 * grid).astype(np.uint8), values
    args.results.mkdir(parents=True, exist_ok=True)
    save_npz_atomically(args.results / "manifolds.npz", **arrays)
    record = run_record(args.seed, time.perf_counter() - start, models=sources, nz2_rows=rows)
    write_json_atomically(args.results / "manifolds.json", record)


if __name__ == "__main__":
    main()

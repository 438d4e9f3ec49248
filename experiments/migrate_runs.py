"""One-off: the committed run folders and models in the form of vaelib 0.9 (one run-state schema, composed models).

    python experiments/migrate_runs.py

Models (``results/*.keras``, ``runs/**/model.keras``) are rebuilt by ``VAE.mlp`` from their recorded
options, given their weights (and optimizer state) unchanged, and saved again. Run folders get the one
state schema (steps, epochs, seconds, checkpoint, history, rows, notes) and the configuration the current
code records for the same run; AEVB's Figure 2 folders are renamed ``aevb_nz<N_z>``; checkpoints are named
by their step. Record files get the commit of the record for sittings recorded without one.
"""

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import keras

import vaelib
import vaelib.paper
from vaelib._files import write_json_atomically
from vaelib.paper.experiments import burda_learning_rate
from vaelib.paper.wake_sleep import WakeSleep
from vaelib.training import model_config

ROOT = Path(__file__).resolve().parents[1]


def objective_of(compiled: dict):
    name = compiled.get("objective", "elbo")
    if name == "iwae":
        return vaelib.IWAE(compiled["num_samples"])
    if name == "wake_sleep":
        return WakeSleep()
    return vaelib.ELBO(compiled.get("num_samples", 1), compiled.get("kl", "analytic"), compiled.get("beta", 1.0))


def migrate_model(path: Path) -> None:
    with zipfile.ZipFile(path) as z:
        saved = json.loads(z.read("config.json"))
        weights = z.read("model.weights.h5")
    options = saved["config"]
    if "networks" in options:
        print(f"{path}: already migrated")
        return
    assert saved["class_name"] == "VAE" and options["architecture"] == "mlp", path
    model = vaelib.VAE.mlp(
        data_shape=options["data_shape"],
        latent_dim=options["latent_dim"],
        hidden_units=options["hidden_units"],
        activation=options["activation"],
        likelihood=options["likelihood"],
        initializer=options["initializer"],
        name=options["name"],
    )
    compiled = saved.get("compile_config")
    if compiled:
        optimizer = keras.optimizers.deserialize(compiled["optimizer"])
        model.compile(
            optimizer=optimizer,
            objective=objective_of(compiled),
            weight_decay=compiled.get("weight_decay", 0.0),
            seed=compiled.get("seed"),
            jit_compile=compiled.get("jit_compile", True),
            compiled_loop=compiled.get("compiled_loop", True),
            steps_per_execution=compiled.get("steps_per_execution", 20),
        )
        model.optimizer.build(model.trainable_variables)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "w.weights.h5").write_bytes(weights)
        model.load_weights(Path(tmp) / "w.weights.h5")
        partial = Path(tmp) / path.name
        model.save(partial)
        shutil.move(partial, path)
    print(f"{path}: migrated ({'compiled' if compiled else 'not compiled'})")


def new_state(steps: int, seconds: float, checkpoint: bool, epochs: int = 0, history=None, rows=None, notes=None):
    return {
        "steps": steps,
        "epochs": epochs,
        "seconds": seconds,
        "checkpoint": f"checkpoint-{steps:011d}.weights.h5" if checkpoint else "",
        "history": history or {},
        "rows": rows or [],
        "notes": notes or {},
    }


def rename_checkpoint(run_dir: Path, old: str, state: dict) -> None:
    if (run_dir / old).exists():
        (run_dir / old).rename(run_dir / state["checkpoint"])


def migrate_curve(run_dir: Path, experiment: str) -> None:
    state = json.loads((run_dir / "state.json").read_text())
    if "steps" in state:
        print(f"{run_dir}: already migrated")
        return
    config = json.loads((run_dir / "config.json").read_text())
    if experiment == "aevb_curve":
        notes = {"step_size": state["step_size"], "step_size_scores": state["step_size_scores"]}
        config = {
            "experiment": "aevb_curve",
            "method": state["method"],
            **{k: v for k, v in config.items() if k != "experiment"},
        }
        config = {k: config[k] for k in ("experiment", "method", "n_z", "seed", "first", "data_sha256")}
    else:
        notes = {}
    new = new_state(state["samples"] // 100, state["seconds"], True, rows=state["rows"], notes=notes)
    rename_checkpoint(run_dir, state["checkpoint"], new)
    write_json_atomically(run_dir / "config.json", config)
    write_json_atomically(run_dir / "state.json", new)
    print(f"{run_dir}: {experiment} state migrated")


def train_for_config(run_dir: Path, objective) -> dict:
    """The configuration the current code records for the train_for run in ``run_dir``."""
    config = json.loads((run_dir / "config.json").read_text())
    model = vaelib.paper.reference_model(objective)
    model.optimizer.learning_rate.assign(burda_learning_rate(0))
    assert abs(config["model"]["optimizer"]["config"]["learning_rate"] - 1e-3) < 1e-9, config["model"]
    return {
        "experiment": "train_for",
        "model": model_config(model),
        "data_sha256": config["data_sha256"],
        "batch_size": config["batch_size"],
        "seed": config["seed"],
        "schedule": config.get("schedule", {"name": "burda", "epochs": None}),
    }


def migrate_train_for(run_dir: Path, objective) -> None:
    state = json.loads((run_dir / "state.json").read_text())
    if "steps" in state:
        write_json_atomically(run_dir / "config.json", train_for_config(run_dir, objective))
        print(f"{run_dir}: state migrated already; configuration recorded again")
        return
    config = train_for_config(run_dir, objective)
    steps = state["epochs"] * 600
    notes = {"snapshots": state["snapshots"]} if "snapshots" in state else {}
    new = new_state(steps, state["seconds"], True, epochs=state["epochs"], history={"loss": state["loss"]}, notes=notes)
    rename_checkpoint(run_dir, state["checkpoint"], new)
    write_json_atomically(run_dir / "config.json", config)
    write_json_atomically(run_dir / "state.json", new)
    record = run_dir / "record.json"
    if record.exists():
        data = json.loads(record.read_text())
        for session in data.get("sessions", []):
            if "source" not in session and "command" in session:
                session["source"] = data.get("source")
        write_json_atomically(record, data)
    print(f"{run_dir}: train_for state migrated")


def main() -> None:
    for path in sorted([*ROOT.glob("results/*.keras"), *ROOT.glob("runs/**/model.keras")]):
        migrate_model(path)
    fig2 = ROOT / "runs" / "aevb_fig2"
    for folder in sorted(fig2.glob("nz*")):
        folder.rename(fig2 / f"aevb_{folder.name}")
    for folder in sorted(fig2.glob("*_nz*")):
        migrate_curve(folder, "aevb_curve")
    for folder in sorted((ROOT / "runs" / "aevb_fig3").glob("*_n*")):
        migrate_curve(folder, "figure3_curve")
    objectives = {"elbo": "elbo", "iwae5": vaelib.IWAE(5), "iwae50": vaelib.IWAE(50)}
    for study in ("equal_budget", "reference_long", "reference_cosine"):
        for folder in sorted((ROOT / "runs" / study).iterdir()):
            migrate_train_for(folder, objectives[folder.name])


if __name__ == "__main__":
    main()

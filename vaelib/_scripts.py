"""What the scripts in ``experiments/`` and ``benchmarks/`` share: their options, threads, and the record
each results file keeps of the run that made it (command, seed, versions, hardware, wall time).

Not part of vaelib's API: the science of the experiments is in :mod:`vaelib.paper`.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from vaelib._machine import VECTOR_EXTENSIONS, cpu_kind, cpu_model, vector_extensions

__all__ = [
    "VECTOR_EXTENSIONS",
    "cpu_kind",
    "cpu_model",
    "vector_extensions",
    "versions",
    "source",
    "hardware",
    "run_record",
    "merge_curve_record",
    "script_arguments",
    "choices",
    "use_threads",
]


def versions() -> dict[str, str]:
    """The versions of vaelib, TensorFlow, Keras, TFP and Python that a result was made with."""
    import tensorflow_probability as tfp

    import vaelib

    return {
        "vaelib": vaelib.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tensorflow_probability": tfp.__version__,
        "python": platform.python_version(),
    }


def source() -> dict[str, Any] | None:
    """The git commit vaelib was imported from, and whether its files differed from it; ``None`` outside git.

    A version number names a release; between releases the commit says which code made a result. Read
    when this module is imported (:data:`SOURCE`), that is when the script starts: a run's record names
    the code it ran, even if the checkout moves on while it trains.
    """
    package = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(package), *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() / "vaelib" != package:
            return None  # installed inside some other repository: its commit says nothing about vaelib
        commit = git("rev-parse", "HEAD")
        modified = bool(git("status", "--porcelain", "--untracked-files=no", "--", str(package)))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "modified": modified}


SOURCE = source()


def hardware() -> dict[str, Any]:
    """The machine a result was made on: CPU model, its vector extensions, cores, and whether a GPU was seen."""
    return {
        "cpu": cpu_model(),
        "vector_extensions": vector_extensions(),
        "cores": os.cpu_count(),
        "gpu": bool(tf.config.list_physical_devices("GPU")),
    }


def run_record(seed: int, seconds: float, **extra: Any) -> dict[str, Any]:
    """What every results file records: command, seed, versions (and the source's commit), hardware, wall time."""
    return {
        "command": " ".join(["python", *sys.argv]),
        "seed": seed,
        "versions": versions(),
        "source": SOURCE,
        "hardware": hardware(),
        "wall_seconds": round(seconds, 1),
        **extra,
    }


def merge_curve_record(
    records: dict[str, dict[str, Any]], method: str, key: int, record: dict[str, Any], methods: Sequence[str]
) -> dict[str, dict[str, Any]] | None:
    """The records of an experiment's curves, by method and then by key, with a finished curve's ``record`` in.

    Methods come in the order of ``methods``, keys (N_z, N_train) in increasing
    order. ``None`` if the curve's rows are recorded already: rerunning a finished curve trains nothing, and
    its record keeps naming the command, machine and time that made it.
    """
    if records.get(method, {}).get(str(key), {}).get("rows") == record["rows"]:
        return None
    merged = {m: dict(by_key) for m, by_key in records.items()}
    merged.setdefault(method, {})[str(key)] = record
    return {m: dict(sorted(merged[m].items(), key=lambda kv: int(kv[0]))) for m in methods if m in merged}


def script_arguments(parser: argparse.ArgumentParser, runs: Path, results: Path) -> None:
    """The options every experiment script shares: ``--seed``, ``--threads``, ``--runs``, ``--results``."""
    parser.add_argument("--seed", type=int, default=0, help="seeds initialisation, data order and binarisation")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: all cores)")
    parser.add_argument("--runs", type=Path, default=runs, help="folder of the resumable runs")
    parser.add_argument("--results", type=Path, default=results, help="folder of the results files")


def choices(parser: argparse.ArgumentParser, value: str, allowed: Sequence[str], what: str) -> list[str]:
    """The comma-separated ``value`` as a list; an unknown entry is a usage error naming the allowed ones."""
    picked = value.split(",")
    unknown = sorted(set(picked) - set(allowed))
    if unknown:
        parser.error(f"unknown {what}(s) {', '.join(unknown)}; the {what}s are {', '.join(allowed)}")
    return picked


def use_threads(threads: int) -> None:
    """Limit TensorFlow to ``threads`` threads (0 leaves its default, all cores); call before any op runs."""
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)

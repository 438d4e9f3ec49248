"""Execute the book's notebooks into jupyter-book's cache, several at once, before ``jupyter-book build``.

``jupyter-book build`` executes the notebooks it cannot find in its cache (``_build/.jupyter_cache``) one
after another, each on all cores. A training step does not keep two cores busy (on a 2-core machine
about two thirds of the time: ``benchmarks/train_speed.py``'s profile), and a chapter's Python, plotting
and start-up keep only one busy. So this script runs ``--jobs`` notebooks at a time, each kernel with
``--threads`` TensorFlow threads, longest first, and stores every executed notebook in that cache
exactly as ``jupyter-book build`` would. The build that follows finds them all and only renders.

Longest first keeps both jobs busy to the end: the longest chapter starts at once, and the short ones
fill the other job meanwhile. A chapter's length is its last execution time in the cache; a cold cache
(a fresh clone) has none, so the times of the last build of the same mode saved in
``book/execution_seconds.json`` stand in (``--save-times`` writes them after a build that executed every
chapter). A chapter in neither is started first. The same times, full and quick, give the sentence near
each chapter's top that tells a reader how long it runs; ``--save-times`` rewrites it.

A notebook whose code cells are unchanged since it was last executed in the same mode (quick or full,
:func:`vaelib.quick_mode`) is matched in the cache and not run again, so a warm build executes nothing.
``jupyter-book build`` matches the cache by code alone and would render a quick build's results in a
full build; this script executes such a notebook again in the mode asked for, replacing the cached
one. A notebook that fails is reported with its error, and the script exits with status 1 (the build
would then execute it again, and fail the same way). For every notebook it executes, the script prints
its slowest cells (number, seconds and first line): where the chapter spends its time on the machine
that builds it.

Run from the repository's root: ``python book/execute_notebooks.py`` (then ``jupyter-book build .``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import multiprocessing
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "_build" / ".jupyter_cache"  # where jupyter-book 1.x keeps executed notebooks
TIMES = ROOT / "book" / "execution_seconds.json"  # each chapter's seconds in the last full and quick builds saved
SLOWEST_CELLS = 3  # cells printed per executed notebook
# a chapter's running-time sentence (written by ``running_time_line``)
RUNNING_TIME = re.compile(
    r"\*\*Running time\*\* on a 2-core CPU: (under a minute|about \d+ min); in quick mode"
    r" \(`VAELIB_QUICK=1`\), (under a minute|about \d+ min)\."
)


def book_notebooks() -> list[Path]:
    """The notebooks of the table of contents, in its order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", [toc]):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return [ROOT / f"{name}.ipynb" for name in files if (ROOT / f"{name}.ipynb").exists()]


def execution_config() -> dict:
    """The cell timeout and error policy of ``_config.yml``'s ``execute`` section."""
    execute = yaml.safe_load((ROOT / "_config.yml").read_text()).get("execute", {})
    return {"timeout": execute.get("timeout", 30), "allow_errors": execute.get("allow_errors", False)}


def cached_seconds(cache) -> dict[Path, float]:
    """How long each notebook in the cache took when last executed (of its versions there, the longest)."""
    seconds: dict[Path, float] = {}
    for record in cache.list_cache_records():
        path = Path(record.uri)
        seconds[path] = max(seconds.get(path, 0.0), record.data.get("execution_seconds") or 0.0)
    return seconds


def saved_seconds(quick: bool = False) -> dict[str, float]:
    """Each chapter's seconds in the last build of that mode saved in ``TIMES`` (by path from the root), or ``{}``."""
    saved = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    return saved.get(mode_name(quick), {}).get("seconds", {})


def mode_name(quick: bool) -> str:
    return "quick" if quick else "full"


def duration_text(seconds: float) -> str:
    """``seconds`` as a reader plans with it: "under a minute", "about 1 min", "about 8 min"."""
    return "under a minute" if seconds < 60 else f"about {round(seconds / 60)} min"


def running_time_line(full_seconds: float, quick_seconds: float) -> str:
    """The sentence near a chapter's top that says how long it runs (``RUNNING_TIME`` matches it)."""
    return (
        f"**Running time** on a 2-core CPU: {duration_text(full_seconds)}; in quick mode"
        f" (`VAELIB_QUICK=1`), {duration_text(quick_seconds)}."
    )


def write_running_times(notebooks: list[Path]) -> list[Path]:
    """Rewrite the running-time sentence of every chapter in ``notebooks`` from the times saved in ``TIMES``.

    A chapter is a notebook whose name starts with its number; each has one such sentence in its markdown
    (a ``ValueError`` otherwise), so that a reader in Colab sees the cost before running it. Only that line
    changes (jupyter-cache matches notebooks by their code, so the cache stays valid). Returns the
    notebooks changed.
    """
    full, quick = saved_seconds(quick=False), saved_seconds(quick=True)
    changed = []
    for path in notebooks:
        if not path.name[0].isdigit():
            continue
        key = path.relative_to(ROOT).as_posix()
        if key not in full or key not in quick:
            raise ValueError(f"{TIMES.name} lacks the full or the quick time of {key}: save both builds' times")
        before = path.read_text()
        notebook = json.loads(before)
        found = 0
        for cell in notebook["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            lines = "".join(cell["source"]).split("\n")
            for i, line in enumerate(lines):
                if RUNNING_TIME.fullmatch(line):
                    lines[i], found = running_time_line(full[key], quick[key]), found + 1
            cell["source"] = "\n".join(lines).splitlines(True)
        if found != 1:
            raise ValueError(
                f"{key} has {found} running-time sentences (a line matching {RUNNING_TIME.pattern}); 1 needed"
            )
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        if text != before:
            path.write_text(text)
            changed.append(path)
    return changed


def start_order(paths: list[Path], cached: dict[Path, float], saved: dict[str, float]) -> list[Path]:
    """``paths`` longest first: by ``cached`` time, else by ``saved`` time, and a chapter timed in neither first."""

    def seconds(path: Path) -> float:
        if path in cached:
            return cached[path]
        return saved.get(path.relative_to(ROOT).as_posix(), float("inf"))

    return sorted(paths, key=lambda path: -seconds(path))


def quick_mode_is_on() -> bool:
    """Whether the chapters, whose kernels inherit this environment, run in quick mode (:func:`vaelib.quick_mode`)."""
    from vaelib.quick import quick_mode  # imports TensorFlow: the workers are spawned, not forked, after it

    return quick_mode()


def pending_notebooks(cache, paths: list[Path], quick: bool) -> list[Path]:
    """The notebooks of ``paths`` to execute: not in the cache, or cached from the other mode (or unknown)."""
    pending = []
    for path in paths:
        try:
            record = cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            pending.append(path)
            continue
        if record.data.get("quick") is not quick:
            pending.append(path)
    return pending


def save_times(seconds: dict[Path, float], quick: bool) -> None:
    """Write this build's seconds per chapter into ``TIMES`` under its mode, with the date, versions and
    machine it ran on (the other mode's record is kept)."""
    from vaelib._scripts import hardware, versions  # only here: the script itself runs no TensorFlow

    record = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    record["about"] = (
        "seconds each chapter took in the last full and quick builds saved (book/execute_notebooks.py"
        " --save-times, chapters run two at a time with one TensorFlow thread each): the order in which a"
        " build from a cold cache starts them, longest first, and each chapter's running-time sentence"
    )
    record[mode_name(quick)] = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "versions": versions(),
        "hardware": hardware(),
        "seconds": {path.relative_to(ROOT).as_posix(): round(t, 1) for path, t in sorted(seconds.items())},
    }
    TIMES.write_text(
        json.dumps({key: record[key] for key in ("about", "full", "quick") if key in record}, indent=2) + "\n"
    )


def utc_time(stamp: str) -> datetime.datetime:
    """A time stamp as nbclient writes it (ISO 8601, UTC as ``Z``, which Python 3.10 cannot parse)."""
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def cell_seconds(notebook: nbformat.NotebookNode) -> list[tuple[int, float, str]]:
    """Each timed code cell's number (from 0, markdown cells counted), seconds and first line, slowest first.

    The seconds run from the kernel's receiving the cell to its reply, as nbclient records them in the
    cell's ``execution`` metadata; cells without that record (not executed) are left out.
    """
    cells = []
    for number, cell in enumerate(notebook.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if cell.cell_type == "code" and start and end:
            seconds = (utc_time(end) - utc_time(start)).total_seconds()
            cells.append((number, seconds, cell.source.strip().split("\n")[0]))
    return sorted(cells, key=lambda cell: -cell[1])


def forget_timing(notebook: nbformat.NotebookNode) -> None:
    """Remove nbclient's timing records from the cells, so the cache holds what ``jupyter-book build`` stores."""
    for cell in notebook.cells:
        cell.get("metadata", {}).pop("execution", None)


def execute(path: Path, timeout: int, allow_errors: bool, quick: bool) -> tuple[Path, float, str | None, list]:
    """Execute one notebook in its folder and store it in the cache, marked as run in quick mode or not.

    Returns its path, seconds, error (``None`` if it ran through) and :func:`cell_seconds`.
    """
    cache = get_cache(str(CACHE))
    notebook = nbformat.read(path, as_version=4)
    result = single_nb_execution(
        notebook,
        cwd=str(path.parent),
        allow_errors=allow_errors,
        timeout=timeout,
        meta_override=True,
        record_timing=True,
    )
    cells = cell_seconds(notebook)
    forget_timing(notebook)
    if result.err is not None:
        return path, result.time, result.exc_string, cells
    cache.cache_notebook_bundle(
        CacheBundleIn(notebook, str(path), data={"execution_seconds": result.time, "quick": quick}),
        check_validity=False,
        overwrite=True,
    )
    return path, result.time, None, cells


def exit_on_sigterm() -> None:
    """Turn SIGTERM (a CI timeout, ``kill``) into ``SystemExit(143)``, so that the workers are stopped."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def run_in_workers(job: Callable, paths: list[Path], jobs: int, report: Callable, **kwargs) -> None:
    """Call ``job(path, **kwargs)`` for every path in ``jobs`` spawned worker processes, in the order given,
    and ``report`` each result as it comes.

    If this is interrupted (Ctrl-C, or SIGTERM after :func:`exit_on_sigterm`), the workers are
    terminated before the exception goes on: a pool left to shut down by itself would wait for the
    notebooks it is running, and a killed parent would leave its workers behind. A worker's kernel
    exits when its parent does (ipykernel watches its parent process).
    """
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=spawn) as pool:
        try:
            futures = [pool.submit(job, path, **kwargs) for path in paths]
            for future in concurrent.futures.as_completed(futures):
                report(future.result())
        except BaseException:
            workers = multiprocessing.active_children()
            pool.shutdown(wait=False, cancel_futures=True)
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.join()
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads of each kernel (default 1)")
    parser.add_argument(
        "--save-times",
        action="store_true",
        help=f"after a build that executes every chapter, save their times in {TIMES.relative_to(ROOT)} (under"
        " the build's mode) and, once both modes are saved, rewrite each chapter's running-time sentence",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.threads < 1:
        parser.error("--jobs and --threads must be at least 1")
    quick = quick_mode_is_on()
    cache = get_cache(str(CACHE))
    notebooks = book_notebooks()
    pending = pending_notebooks(cache, notebooks, quick)
    if args.save_times and len(pending) < len(notebooks):
        parser.error("--save-times needs a build that executes every chapter: remove _build first")
    if not pending:
        print(f"every notebook is in the cache, executed in {'quick' if quick else 'full'} mode: nothing to execute")
        return 0
    pending = start_order(pending, cached_seconds(cache), saved_seconds(quick))
    # the kernels inherit these: TensorFlow reads them when it starts
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(args.threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up lines, from every kernel
    config = execution_config()
    print(
        f"executing {len(pending)} notebooks in {'quick' if quick else 'full'} mode, {args.jobs} at a time,"
        f" {args.threads} TensorFlow thread(s) each"
    )
    started, failed, executed = time.perf_counter(), [], {}

    def report(result: tuple[Path, float, str | None, list]) -> None:
        path, seconds, error, cells = result
        executed[path] = seconds
        print(f"{path.relative_to(ROOT)}: {seconds:.0f} s" + (" FAILED" if error else ""), flush=True)
        for number, cell_time, first_line in cells[:SLOWEST_CELLS]:
            print(f"    cell {number:>2}: {cell_time:6.1f} s  {first_line[:70]}", flush=True)
        if error:
            failed.append(path)
            print(error, file=sys.stderr)

    exit_on_sigterm()
    run_in_workers(execute, pending, args.jobs, report, quick=quick, **config)
    print(f"executed in {time.perf_counter() - started:.0f} s" + (f"; {len(failed)} failed" if failed else ""))
    if failed:
        return 1
    if args.save_times:
        save_times(executed, quick)
        print(f"{mode_name(quick)} times saved in {TIMES.relative_to(ROOT)}")
        if saved_seconds(not quick):
            for path in write_running_times(notebooks):
                print(f"running time updated in {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

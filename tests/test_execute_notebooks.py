"""``book/execute_notebooks.py``: the chapters' cell times it prints, and the cache it fills."""

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "book" / "execute_notebooks.py")
execute_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute_notebooks)


def timed_cell(source: str, start: str, end: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["execution"] = {"iopub.execute_input": start, "shell.execute_reply": end}
    return cell


def test_cell_seconds_are_the_kernels_times_slowest_first_with_markdown_cells_counted():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# A chapter"),
        timed_cell("x = 1\nprint(x)", "2026-11-27T10:00:00.000000Z", "2026-11-27T10:00:01.500000Z"),
        nbformat.v4.new_code_cell("not executed"),
        timed_cell("\ntrain()", "2026-11-27T10:00:02.000000Z", "2026-11-27T10:02:02.250000Z"),
    ]
    assert execute_notebooks.cell_seconds(notebook) == [(3, 120.25, "train()"), (1, 1.5, "x = 1")]


def test_a_chapter_is_cached_with_its_mode_without_its_timing_records_and_its_cells_timed(tmp_path, monkeypatch):
    monkeypatch.setattr(execute_notebooks, "CACHE", tmp_path / "cache")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(0.5)"), nbformat.v4.new_code_cell("1 + 1")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "chapter.ipynb"
    nbformat.write(notebook, path)

    cache = get_cache(str(tmp_path / "cache"))
    assert execute_notebooks.pending_notebooks(cache, [path], quick=True) == [path]  # not in the cache

    _, seconds, error, cells = execute_notebooks.execute(path, timeout=60, allow_errors=False, quick=True)

    assert error is None
    assert [number for number, _, _ in cells] == [0, 1]
    assert 0.5 <= cells[0][1] <= seconds and cells[1][1] < 0.5
    cached = cache.get_cache_bundle(1).nb
    assert cached.cells[1].outputs[0]["data"]["text/plain"] == "2"
    assert all("execution" not in cell.metadata for cell in cached.cells)
    # matched in the mode it ran in; a full build executes it again (jupyter-book would match it by code)
    assert execute_notebooks.pending_notebooks(cache, [path], quick=True) == []
    assert execute_notebooks.pending_notebooks(cache, [path], quick=False) == [path]


def test_start_order_is_longest_first_by_the_caches_times_then_the_saved_ones_and_an_untimed_chapter_first():
    a, b, c, d = (ROOT / "book" / f"{name}.ipynb" for name in "abcd")
    cached = {a: 10.0}  # b, c and d not in the cache
    saved = {"book/a.ipynb": 500.0, "book/b.ipynb": 300.0, "book/c.ipynb": 5.0}  # a's cached time wins
    assert execute_notebooks.start_order([a, b, c, d], cached, saved) == [d, b, a, c]


def test_the_saved_times_of_both_modes_name_every_chapter_of_the_book():
    chapters = [path.relative_to(ROOT).as_posix() for path in execute_notebooks.book_notebooks()]
    for quick in (False, True):
        saved = execute_notebooks.saved_seconds(quick)
        assert sorted(saved) == sorted(chapters), quick
        assert all(seconds > 0 for seconds in saved.values())


def test_every_chapter_says_how_long_it_runs_as_the_saved_times_give_it():
    chapters = [path for path in execute_notebooks.book_notebooks() if path.name[0].isdigit()]
    full, quick = execute_notebooks.saved_seconds(False), execute_notebooks.saved_seconds(True)
    for path in chapters:
        key = path.relative_to(ROOT).as_posix()
        expected = execute_notebooks.running_time_line(full[key], quick[key])
        cells = nbformat.read(path, as_version=4).cells
        lines = [line for cell in cells if cell.cell_type == "markdown" for line in cell.source.splitlines()]
        assert expected in lines, (key, expected)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(12.0, "under a minute"), (59.9, "under a minute"), (60.0, "about 1 min"), (488.6, "about 8 min")],
)
def test_a_duration_is_said_as_a_reader_plans_with_it(seconds, text):
    assert execute_notebooks.duration_text(seconds) == text


def test_saved_times_rewrite_the_running_time_sentence_and_keep_the_other_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(execute_notebooks, "ROOT", tmp_path)
    monkeypatch.setattr(execute_notebooks, "TIMES", tmp_path / "times.json")
    chapter, appendix = tmp_path / "01_chapter.ipynb", tmp_path / "appendix.ipynb"
    notebook = nbformat.v4.new_notebook()
    old_line = execute_notebooks.running_time_line(30, 10)
    notebook.cells = [nbformat.v4.new_markdown_cell(f"# A chapter\n\n{old_line}\n\nText.")]
    notebook.cells.append(nbformat.v4.new_code_cell("1"))
    nbformat.write(notebook, chapter)
    nbformat.write(nbformat.v4.new_notebook(), appendix)  # not a numbered chapter: no sentence needed

    execute_notebooks.save_times({chapter: 500.0, appendix: 3.0}, quick=False)
    with pytest.raises(ValueError, match="quick time"):
        execute_notebooks.write_running_times([chapter, appendix])
    execute_notebooks.save_times({chapter: 75.0, appendix: 2.0}, quick=True)
    assert execute_notebooks.saved_seconds(False) == {"01_chapter.ipynb": 500.0, "appendix.ipynb": 3.0}

    assert execute_notebooks.write_running_times([chapter, appendix]) == [chapter]
    cells = nbformat.read(chapter, as_version=4).cells
    line = "**Running time** on a 2-core CPU: about 8 min; in quick mode (`VAELIB_QUICK=1`), about 1 min."
    assert cells[0].source == f"# A chapter\n\n{line}\n\nText." and cells[1].source == "1"
    assert execute_notebooks.write_running_times([chapter, appendix]) == []  # nothing to change

    nbformat.write(nbformat.v4.new_notebook(), chapter)
    with pytest.raises(ValueError, match="0 running-time sentences"):
        execute_notebooks.write_running_times([chapter])


STOPPED_BUILD = """
import importlib.util, os, sys, time
from pathlib import Path


def job(path, out):
    (Path(out) / str(os.getpid())).touch()
    time.sleep(600)


if __name__ == "__main__":
    spec = importlib.util.spec_from_file_location("execute_notebooks", sys.argv[1])
    execute_notebooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(execute_notebooks)
    execute_notebooks.exit_on_sigterm()
    execute_notebooks.run_in_workers(job, [Path("a"), Path("b")], 2, print, out=sys.argv[2])
"""


def test_a_build_stopped_by_sigterm_stops_its_workers(tmp_path):
    script, started = tmp_path / "build.py", tmp_path / "started"
    script.write_text(STOPPED_BUILD)
    started.mkdir()
    build = subprocess.Popen([sys.executable, str(script), str(ROOT / "book" / "execute_notebooks.py"), str(started)])
    deadline = time.monotonic() + 60
    while len(list(started.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int(path.name) for path in started.iterdir()]
    assert len(workers) == 2, "the two workers did not start"
    build.send_signal(signal.SIGTERM)
    assert build.wait(timeout=30) == 128 + signal.SIGTERM
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

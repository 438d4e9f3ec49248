"""``book/execute_notebooks.py``: the chapters' cell times it prints, and the cache it fills."""

import importlib.util
from pathlib import Path

import nbformat
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


def test_a_chapter_is_cached_without_its_timing_records_and_its_cells_timed(tmp_path, monkeypatch):
    monkeypatch.setattr(execute_notebooks, "CACHE", tmp_path / "cache")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(0.5)"), nbformat.v4.new_code_cell("1 + 1")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "chapter.ipynb"
    nbformat.write(notebook, path)

    _, seconds, error, cells = execute_notebooks.execute(path, timeout=60, allow_errors=False)

    assert error is None
    assert [number for number, _, _ in cells] == [0, 1]
    assert 0.5 <= cells[0][1] <= seconds and cells[1][1] < 0.5
    cached = get_cache(str(tmp_path / "cache")).get_cache_bundle(1).nb
    assert cached.cells[1].outputs[0]["data"]["text/plain"] == "2"
    assert all("execution" not in cell.metadata for cell in cached.cells)

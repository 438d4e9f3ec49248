"""A chapter run the way Colab runs it: TensorFlow and TFP already there, vaelib not.

Run with::

    VAELIB_COLAB_TEST=1 python -m pytest tests/integration/test_colab_setup.py

A fresh virtual environment gets Colab's preinstalled stack (TensorFlow 2.20, TFP 0.25 with tf_keras,
matplotlib, a Jupyter kernel). vaelib is built into a wheel, and chapters are executed in quick mode from
a folder outside the source tree, with ``VAELIB_INSTALL_SOURCE`` pointing the setup cell at the wheel: the
same ``pip install`` the cell runs in Colab, from a local file instead of the repository. The test checks
that the chapters run, that the setup cell added vaelib and nothing else (in particular, that it did not
reinstall or upgrade TensorFlow), and that every value the prose quotes through ``{glue:text}`` is printed
beside its computation, since without myst_nb the prose shows only the raw role.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if os.environ.get("VAELIB_COLAB_TEST") != "1":
    pytest.skip("set VAELIB_COLAB_TEST=1 to run (creates a virtual environment)", allow_module_level=True)

COLAB_STACK = [  # what Colab ships and the chapters rely on
    "tensorflow==2.20.*",
    "tensorflow-probability[tf]==0.25.*",
    "matplotlib",
    "ipykernel",
    "nbclient",
]
# chapter 2 computes everything it quotes; chapter 10 quotes committed results. The first installs vaelib.
CHAPTERS = os.environ.get("VAELIB_COLAB_CHAPTERS", "book/02_lower_bound.ipynb,book/10_beyond_the_vae.ipynb").split(",")

EXECUTE = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[1])  # executed, for the checks below
print(nb.cells[1].outputs[-1].get("text", ""))  # the setup cell's version line
"""
GLUE_ROLE = re.compile(r"\{glue:text\}`([A-Za-z0-9_]+)")


def _freeze(python: Path) -> set[str]:
    result = subprocess.run([python, "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
    return {line.strip().lower() for line in result.stdout.splitlines() if line.strip()}


def test_chapter_installs_vaelib_from_a_wheel_and_nothing_else(tmp_path):
    venv = tmp_path / "colab"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", *COLAB_STACK], check=True)
    source = tmp_path / "source"  # a copy, so that building the wheel leaves no build/ in the work tree
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "_build", "build", "*.egg-info", ".*_cache")
    )
    wheels = tmp_path / "dist"
    subprocess.run([python, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, source], check=True)
    (wheel,) = wheels.glob("vaelib-*.whl")

    workdir = tmp_path / "notebooks"  # outside the source tree, so only an installed vaelib can be imported
    workdir.mkdir()
    (workdir / "execute.py").write_text(EXECUTE)

    before = _freeze(python)
    assert not any(p.startswith("vaelib") for p in before)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(CI="true", VAELIB_INSTALL_SOURCE=str(wheel), JUPYTER_PATH=str(venv / "share" / "jupyter"))
    # Colab downloads the committed results (chapters 7 to 10); offline, point vaelib at the clone's copy
    env["VAELIB_RESULTS"] = str(ROOT / "results")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    for chapter in CHAPTERS:
        notebook = workdir / Path(chapter).name
        shutil.copy(ROOT / chapter, notebook)
        result = subprocess.run(
            [python, workdir / "execute.py", notebook, workdir], cwd=workdir, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "quick mode: True" in result.stdout, result.stdout

        # Without myst_nb the prose shows raw {glue:text} roles: every value it quotes must be printed
        cells = json.loads(notebook.read_text())["cells"]
        markdown = ("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        quoted = {key for text in markdown for key in GLUE_ROLE.findall(text)}
        outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
        shown = "".join("".join(o.get("text", "")) for o in outputs)  # on disk, a stream's text is a list of lines
        assert quoted, f"{chapter} quotes no computed value"
        assert not [key for key in quoted if f"{key} = " not in shown], f"{chapter}: values not visible"

    added = _freeze(python) - before
    assert [p.split("==")[0].split(" @ ")[0] for p in added] == ["vaelib"], f"the setup cell changed: {added}"

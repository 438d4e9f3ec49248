"""Project hygiene: dependency lists agree, quick mode, lint, notebooks without outputs."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import vaelib

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pip_section(environment: str) -> list[str]:
    lines = environment.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    items = []
    for line in lines[start + 1 :]:
        if not line.strip().startswith("- "):
            break
        items.append(line.strip()[2:].strip().strip('"'))
    return items


def test_the_installed_package_has_the_version_vaelib_reports():
    import importlib.metadata

    assert importlib.metadata.version("vaelib") == vaelib.__version__


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted |= set(extra)
    listed = [item for item in _pip_section((ROOT / "environment.yml").read_text()) if not item.startswith("-e")]
    assert sorted(listed) == sorted(wanted)  # same names and the same version bounds
    assert any(item.startswith("-e") for item in _pip_section((ROOT / "environment.yml").read_text()))


@pytest.mark.parametrize(
    "env, expected",
    [({}, False), ({"CI": "true"}, True), ({"VAELIB_QUICK": "1"}, True), ({"CI": "true", "VAELIB_QUICK": "0"}, False)],
)
def test_quick_mode(monkeypatch, env, expected):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("VAELIB_QUICK", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert vaelib.quick_mode() is expected


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", str(ROOT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_notebooks_are_committed_without_outputs():
    for path in (ROOT / "book").glob("*.ipynb"):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, path.name


def test_every_book_page_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    for path in (ROOT / "book").iterdir():
        if path.suffix in (".md", ".ipynb"):
            assert f"book/{path.stem}" in toc, f"{path.name} is not in _toc.yml"


def test_public_api_has_docstrings_and_type_hints():
    import inspect

    for name in vaelib.__all__:
        obj = getattr(vaelib, name)
        assert inspect.getdoc(obj), f"vaelib.{name} has no docstring"
        if inspect.isfunction(obj):
            hints = inspect.signature(obj)
            assert hints.return_annotation is not inspect.Signature.empty, f"vaelib.{name} has no return type"


def _repository_url() -> str:
    for line in (ROOT / "_config.yml").read_text().splitlines():
        if line.strip().startswith("url:"):
            return line.split("url:", 1)[1].split("#")[0].strip()
    raise AssertionError("_config.yml has no repository url")


def test_every_chapter_starts_with_the_setup_cell():
    url = _repository_url()
    notebooks = sorted((ROOT / "book").glob("*.ipynb"))
    assert notebooks, "the book has no chapters"
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        setup_cell = next(c for c in cells if c["cell_type"] == "code")
        setup = "".join(setup_cell["source"])
        assert "hide-input" in setup_cell["metadata"].get("tags", []), f"{path.name}: setup cell is not collapsed"
        # installs vaelib from the repository only when it is missing, never TensorFlow itself
        assert 'find_spec("vaelib") is None' in setup, path.name
        # the release that matches this vaelib (its results files are pinned to the same tag), never main
        tag = f'"git+{url}@v{vaelib.__version__}"'
        assert tag in setup, f"{path.name}: install source is not {tag} (the repository in _config.yml)"
        assert "tensorflow" not in setup.split("subprocess.run", 1)[1].split("\n")[0].lower(), path.name
        assert "keras.utils.set_random_seed" in setup and "vaelib.quick_mode()" in setup, path.name


def test_chapters_follow_the_book_structure():
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        text = "".join(
            "".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"
        )
        for heading in ("**What you'll learn**", "## Summary", "## Exercises", ":class: dropdown", "## References"):
            assert heading in text, f"{path.name} lacks {heading!r}"


def _benchmark(name):
    """The script ``benchmarks/<name>.py`` as a module (kept under its name: time_to_elbo imports train_speed)."""
    import importlib.util

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_benchmark_tables_are_the_committed_benchmark_results():
    """benchmarks/README.md has one table per CPU kind, each made from benchmarks/results/<kind>.json."""
    train_speed = _benchmark("train_speed")
    records = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    assert {path.stem for path in records} >= {"avx2", "avx512"}, "the tables show both kinds of CPU"
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    for path in records:
        record = json.loads(path.read_text())
        assert {"command", "date", "versions", "hardware", "results"} <= set(record)
        assert record["hardware"]["kind"] == path.stem
        table = train_speed.markdown_table(record)
        assert table in readme, f"benchmarks/README.md lacks the table of {path.name}"
        rows = {"same_results": 0, "mlp_profile": 2}
        # and, where recorded, log_likelihood's comparison of slicings and the profile's compiled and Keras loops
        expected = sum(
            rows.get(r["case"], 1)
            + (r["case"] == "log_likelihood" and "ratio" in r)
            + (r["case"] == "mlp_profile" and "fit_keras_loop_ms_per_step" in r)
            for r in record["results"]
        )
        assert len(table.splitlines()) == 4 + expected


def test_time_to_a_good_model_tables_are_the_committed_records():
    """benchmarks/README.md shows every kept record of time_to_elbo.py (one per CPU kind) as its table."""
    _benchmark("train_speed")
    time_to_elbo = _benchmark("time_to_elbo")
    records = sorted((ROOT / "benchmarks" / "results" / "time_to_elbo").glob("*.json"))
    assert records, "no record of benchmarks/time_to_elbo.py is kept"
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    for path in records:
        record = json.loads(path.read_text())
        assert record["hardware"]["kind"] == path.stem and record["target"] == -105.0
        assert time_to_elbo.markdown_table(record) in readme, f"benchmarks/README.md lacks the table of {path}"


def test_cpu_kind_is_read_from_the_vector_extensions():
    from vaelib._scripts import cpu_kind

    assert cpu_kind(["sse4_2", "avx", "avx2", "fma", "avx512f"]) == "avx512"
    assert cpu_kind(["sse4_2", "avx", "avx2", "fma"]) == "avx2"
    assert cpu_kind(["neon", "asimd"]) == "other"


def test_benchmark_rejects_an_unknown_case(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _benchmark("train_speed").main(["--cases", "mlp,cnov"])
    assert exit_info.value.code == 2
    assert "unknown case(s) cnov" in capsys.readouterr().err


GLUE_ROLE = re.compile(r"\{glue:text\}`([A-Za-z0-9_]+)")
GLUE_CALL = re.compile(r"""vaelib\.glue\(\s*f?["']([A-Za-z0-9_]*)(\{)?""")


def _assertions(source: str) -> int:
    """Number of assert statements and ``np.testing.assert_*`` calls in a cell's code."""
    import ast

    count = 0
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assert):
            count += 1
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("assert_")
        ):
            count += 1
    return count


CHAPTERS = sorted((ROOT / "book").glob("0[1-9]_*.ipynb"))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_asserts_its_claims_in_hidden_cells(path):
    """Each chapter checks its claims in cells hidden from the book, right after the computation."""
    cells = json.loads(path.read_text())["cells"]
    hidden = [i for i, c in enumerate(cells) if "remove-cell" in c.get("metadata", {}).get("tags", [])]
    counted = 0
    for i in hidden:
        assert cells[i]["cell_type"] == "code" and cells[i - 1]["cell_type"] == "code", f"{path.name}: cell {i}"
        n = _assertions("".join(cells[i]["source"]))
        assert n > 0, f"{path.name}: hidden cell {i} asserts nothing"
        counted += n
    assert counted >= 3, f"{path.name} asserts {counted} claims"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_quoted_value_is_glued_by_the_chapter(path):
    """A {glue:text} role the chapter's own code does not glue would render as an error or a stale value."""
    cells = json.loads(path.read_text())["cells"]
    quoted = {k for c in cells if c["cell_type"] == "markdown" for k in GLUE_ROLE.findall("".join(c["source"]))}
    code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    exact = {name for name, brace in GLUE_CALL.findall(code) if not brace}
    prefixes = {name for name, brace in GLUE_CALL.findall(code) if brace}  # f"name_{...}"
    missing = [k for k in quoted if k not in exact and not any(k.startswith(p) for p in prefixes)]
    assert not missing, f"{path.name} quotes values it does not glue: {missing}"
    for c in cells:  # figure captions are plain text: no role can fill them in
        assert "{glue" not in c.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("caption", "")


def test_the_api_page_lists_exactly_what_vaelib_exports():
    """book/api.md documents every name of vaelib.__all__ before its "Modules" part, and nothing else there."""
    page = (ROOT / "book" / "api.md").read_text()
    top = page.split("## Modules")[0]
    documented = set(re.findall(r"\.\. auto(?:function|class|module):: vaelib\.(\w+)\s*$", top, flags=re.M))
    assert documented == set(vaelib.__all__), documented ^ set(vaelib.__all__)
    for part in ("vaelib.plotting", "vaelib.paper"):  # loaded when imported: documented after the top-level API
        assert f"automodule:: {part}" in page.split("## Modules")[1]


def _readme_quickstart() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_is_a_newcomers_page():
    """At most 150 lines; the quickstart, at most 20 lines, comes in the first screen and uses the reader's own
    networks, fit and elbo; the histories live in their own files."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    quickstart = _readme_quickstart()
    assert len(quickstart.strip().splitlines()) <= 20
    assert readme.index("```python") < 20 * 80  # within the first screen
    for used in ("vaelib.VAE(encoder, decoder", "model.fit(", "vaelib.elbo("):
        assert used in quickstart, used
    for history in ("benchmarks/README.md", "experiments/README.md", "CONTRIBUTING.md"):
        assert (ROOT / history).exists() and history in readme


def test_the_readme_quickstart_runs(tmp_path, monkeypatch):
    """The quickstart as printed, with a tenth of an epoch's data, one epoch and fewer importance samples."""
    code = _readme_quickstart()
    small = code.replace("make_dataset(x_train, model)", "make_dataset(x_train[:2000], model)")
    small = small.replace("epochs=10", "epochs=1").replace("num_samples=1000", "num_samples=10")
    assert small.count("[:2000]") == 1 and "epochs=1)" in small and "num_samples=10)" in small
    monkeypatch.chdir(tmp_path)
    exec(compile(small, "README.md", "exec"), {})
    assert (tmp_path / "my_vae.keras").exists()


def test_the_docstrings_use_the_books_notation():
    """N_z is the dimension of z everywhere: no docstring or message of vaelib writes the paper's appendix's J."""
    old = re.compile(r"(?<![A-Za-z_])J(?![A-Za-z_])")
    for path in sorted((ROOT / "vaelib").rglob("*.py")):
        found = [n for n, line in enumerate(path.read_text().splitlines(), 1) if old.search(line)]
        assert not found, f"{path.relative_to(ROOT)} writes J for N_z on lines {found}"


def test_docstrings_say_what_their_maths_says():
    """A docstring with LaTeX is a raw string: in a plain one, \\theta is a tab and "heta", \\frac a form feed."""
    for path in sorted((ROOT / "vaelib").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                docstring = ast.get_docstring(node, clean=False) or ""
                bad = sorted({repr(c) for c in docstring if c in "\a\b\t\v\f\r"})
                where = f"{path.relative_to(ROOT)}: {getattr(node, 'name', 'module')}"
                assert not bad, f"{where} has {bad} in its docstring: make it a raw string"


def test_every_package_of_vaelib_is_in_the_distribution():
    """A wheel holds the packages pyproject.toml lists: every folder of vaelib with an __init__.py must be one."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "vaelib").rglob("__init__.py")}
    assert found == listed, (found, listed)

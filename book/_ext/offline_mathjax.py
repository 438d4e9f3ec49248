"""Serve MathJax from the built site, so the book's mathematics renders without a network.

MathJax 3 comes from the ``django-static-mathjax`` package on PyPI (the ``mathjax`` module: the MathJax
distribution as static files, with no dependencies). After an HTML build its ``es5`` bundle is copied to
``_static/mathjax/`` and Sphinx's ``mathjax_path`` points there instead of at a CDN.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError
from sphinx.util.fileutil import copy_asset

BUNDLE = "tex-mml-chtml.js"  # the combined component Sphinx's CDN default also loads


def mathjax_source() -> Path:
    """The folder holding MathJax's ``es5`` distribution inside the installed ``mathjax`` package."""
    try:
        source = Path(str(resources.files("mathjax"))) / "static" / "mathjax" / "es5"
    except ModuleNotFoundError as err:
        raise ExtensionError(
            "offline MathJax needs the 'django-static-mathjax' package: pip install -e '.[book]'"
        ) from err
    if not (source / BUNDLE).is_file():
        raise ExtensionError(f"no {BUNDLE} in {source}: reinstall 'django-static-mathjax'")
    return source


def _point_at_local_copy(app: Sphinx, config: Config) -> None:
    mathjax_source()  # fail at the start of the build, not after executing every chapter
    config.mathjax_path = f"mathjax/{BUNDLE}"  # relative paths are resolved against _static/


def _copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        copy_asset(str(mathjax_source()), str(Path(app.outdir) / "_static" / "mathjax"))


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("config-inited", _point_at_local_copy)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Helpers for the book's notebooks: quoting computed numbers in the text, showing the library's code."""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

__all__ = ["glue", "full_build_text", "show_source"]

NOT_MEASURED = "–"  # what a quick-mode build quotes for a number only the full build measures


def glue(name: str, value: Any, display: bool = True) -> None:
    """Record ``value`` under ``name`` so the book's prose can quote it (``{glue:text}`` role).

    When the book is built, ``myst_nb.glue`` stores the value and the text quotes it; ``display=False``
    keeps it out of the cell's output there, because the sentence shows it. Elsewhere (Colab, plain
    Jupyter, nbval without the book's dependencies) the prose shows only the raw role, so the value is
    always printed as a ``name = value`` line beside the computation, whatever ``display`` says.
    NumPy scalars are stored as Python numbers, so the text can format them
    (``{glue:text}`name:.2f```). Returns nothing, so a ``glue`` call that ends a cell adds no output of
    its own.
    """
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        print(f"{name} = {value}")
        return
    myst_glue(name, value, display=display)


def full_build_text(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec`` for the text to quote, or a dash in quick mode.

    Some measurements mean something only at full size (a rerun compared with the committed results, a
    comparison of estimators on 100 images). In quick mode the chapter still runs the code on tiny data,
    but its text quotes a dash, and says so, instead of a number that the text's sentence does not
    describe. The sentence stays the same in both modes, so it can be translated once.
    """
    from vaelib.quick import quick_mode

    return NOT_MEASURED if quick_mode() else format(value, spec)  # format() takes NumPy scalars as they are


def show_source(*objects: Any) -> Any:
    """The source code of functions, methods or classes, as a highlighted Markdown block for a notebook.

    The book shows vaelib's code this way, read from the installed module when the chapter runs, so the
    page always shows the code that the chapter executes. Each object's source is dedented; objects are
    separated by a blank line. Returns an ``IPython.display.Markdown`` object (the cell's output).
    """
    from IPython.display import Markdown

    if not objects:
        raise TypeError("show_source() needs at least one function, method or class")
    try:
        parts = [textwrap.dedent(inspect.getsource(obj)).rstrip() for obj in objects]
    except TypeError as err:
        raise TypeError(f"show_source() takes functions, methods or classes: {err}") from err
    return Markdown("```python\n" + "\n\n".join(parts) + "\n```")

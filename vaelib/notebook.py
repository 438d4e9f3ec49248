"""Helpers for the book's notebooks: quoting computed numbers in the text, showing the library's code."""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

__all__ = ["glue", "show_source"]


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

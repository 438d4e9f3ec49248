"""Helpers for the book's notebooks: quoting computed numbers in the text."""

from __future__ import annotations

from typing import Any

__all__ = ["glue"]


def glue(name: str, value: Any, display: bool = True) -> None:
    """Record ``value`` under ``name`` so the book's prose can quote it (``{glue:text}`` role).

    Uses ``myst_nb.glue`` when the book is being built; elsewhere (Colab, nbval) it prints
    ``name = value`` so the number is still visible. NumPy scalars are stored as Python numbers, so
    the text can format them (``{glue:text}`name:.2f```). Returns nothing, so a ``glue`` call that ends
    a cell adds no output of its own.
    """
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            print(f"{name} = {value}")
        return
    myst_glue(name, value, display=display)

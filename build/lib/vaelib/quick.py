"""The quick-mode switch that shrinks data and epochs in every chapter."""

from __future__ import annotations

import os

__all__ = ["quick_mode"]


def quick_mode() -> bool:
    """Return True when chapters should run in quick mode.

    Quick mode is on when ``VAELIB_QUICK=1`` or when the ``CI`` environment variable is set
    (continuous-integration services set it). An explicit ``VAELIB_QUICK=0`` turns it off even under
    CI, so a CI job can still build the book with full results.

    Chapters read it once, Pyro-style::

        n_epochs = 2 if vaelib.quick_mode() else 50
    """
    explicit = os.environ.get("VAELIB_QUICK", "").strip()
    if explicit:
        return explicit not in ("0", "false", "False", "no")
    return bool(os.environ.get("CI", "").strip())

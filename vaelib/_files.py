"""Writing files so that a kill or a crash never leaves half of one behind."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["replaced_atomically", "write_text_atomically"]


@contextlib.contextmanager
def replaced_atomically(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, it becomes ``path``.

    The new content is flushed to disk (``fsync``) before one ``os.replace``, so after a kill, a crash or
    an error, ``path`` holds either its previous content or all of the new one, never a part of it. On
    error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
        with open(partial, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` with :func:`replaced_atomically`."""
    with replaced_atomically(path) as partial:
        partial.write_text(text)

"""Writing files so that a kill or a crash never leaves half of one behind."""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not on Windows, where processes side by side must not share a results folder
    fcntl = None

__all__ = [
    "locked",
    "replaced_atomically",
    "write_text_atomically",
    "write_json_atomically",
    "save_model_atomically",
    "fsync_file",
    "write_csv_atomically",
    "save_npz_atomically",
]


def fsync_file(path: str | os.PathLike) -> None:
    """Flush ``path``'s content to disk."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def replaced_atomically(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, it becomes ``path``.

    The new content is flushed to disk (``fsync``) before one ``os.replace``, so after a kill, a crash or
    an error, ``path`` holds either its previous content or all of the new one, never a part of it. On
    error the temporary file is removed and ``path`` is left as it was. The temporary name keeps the
    file's name at its end (``.partial-NAME``), so writers that insist on an extension accept it.
    """
    path = Path(path)
    partial = path.with_name(".partial-" + path.name)
    try:
        yield partial
        fsync_file(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` with :func:`replaced_atomically`."""
    with replaced_atomically(path) as partial:
        partial.write_text(text)


def write_json_atomically(path: str | os.PathLike, value: Any) -> None:
    """Write ``value`` as indented JSON to ``path`` with :func:`replaced_atomically`."""
    write_text_atomically(path, json.dumps(value, indent=1) + "\n")


def save_model_atomically(model: Any, path: str | os.PathLike) -> None:
    """``model.save(path)`` (a ``.keras`` file) with :func:`replaced_atomically`."""
    with replaced_atomically(path) as partial:
        model.save(partial)


def write_csv_atomically(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV file (``header``, then ``rows``) to ``path`` with :func:`replaced_atomically`."""
    with replaced_atomically(path) as partial, partial.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def save_npz_atomically(path: str | os.PathLike, **arrays: Any) -> None:
    """``numpy.savez_compressed(path, **arrays)`` with :func:`replaced_atomically`."""
    import numpy as np

    with replaced_atomically(path) as partial, partial.open("wb") as f:
        np.savez_compressed(f, **arrays)


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` + ``.lock``: processes side by side update a file in turn."""
    path = Path(path)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield

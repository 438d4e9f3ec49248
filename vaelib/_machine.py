"""The machine a result is made on: its CPU model and vector extensions, which set how fast it trains.

Results record them (:mod:`vaelib._scripts`), and so does every row of an experiment's curve
(:mod:`vaelib.paper`), since a run may be resumed on another machine.
"""

from __future__ import annotations

import platform
from pathlib import Path

__all__ = ["VECTOR_EXTENSIONS", "cpu_model", "vector_extensions", "cpu_kind"]

# the vector extensions that decide how fast dense algebra runs, in the order of /proc/cpuinfo's names
VECTOR_EXTENSIONS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "neon",
    "asimd",
    "sve",
)


def cpu_model() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def vector_extensions() -> list[str]:
    """The CPU's vector extensions among ``VECTOR_EXTENSIONS`` (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                return [name for name in VECTOR_EXTENSIONS if name in flags]
    except OSError:
        pass
    return []


def cpu_kind(extensions: list[str] | None = None) -> str:
    """``"avx512"``, ``"avx2"`` or ``"other"``: the widest x86 vector unit, which sets the speed of dense algebra."""
    extensions = vector_extensions() if extensions is None else extensions
    if "avx512f" in extensions:
        return "avx512"
    return "avx2" if "avx2" in extensions else "other"

"""Record the SHA-256 of every file in ``results/`` in ``vaelib/_results_sha256.py``.

    python experiments/record_results_sha256.py

Run it after an experiment script has changed ``results/``, and raise ``vaelib.__version__``: a
released version downloads its results files from the repository's tag ``v<version>`` and checks each
against the hash recorded here, so the files of a tag must never change (``tests/test_paper.py``
checks that the table matches ``results/``).
"""

import hashlib
from pathlib import Path

from vaelib._files import write_text_atomically

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "vaelib" / "_results_sha256.py"


def main() -> None:
    hashes = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((ROOT / "results").iterdir())}
    lines = [f'    "{name}": "{digest}",' for name, digest in hashes.items()]
    write_text_atomically(
        TABLE,
        '"""SHA-256 of each committed results file (written by ``experiments/record_results_sha256.py``)."""\n\n'
        "RESULTS_SHA256 = {\n" + "\n".join(lines) + "\n}\n",
    )
    print(f"{len(hashes)} files -> {TABLE}")


if __name__ == "__main__":
    main()

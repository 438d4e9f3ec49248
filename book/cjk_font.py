"""The Chinese edition's served font: Noto Sans CJK SC Regular, cut down to the characters the edition shows.

    python book/cjk_font.py            # rewrite book/_ext/static/noto-sans-sc-book.woff2 (needs fontTools, brotli)
    python book/cjk_font.py --check    # list the characters the committed font lacks; exit 1 if any

A reader whose machine has no Chinese font would see every Chinese character as an empty box, so the
Chinese edition serves its own font (``book/_ext/chinese_edition.py`` declares it). The whole of Noto
Sans CJK SC is 16 MB; the edition uses a few thousand characters, so the font holds exactly those:
every character of the translation catalogs (``locales/zh_CN/LC_MESSAGES/**/*.po``, the pages' and
the themes'), of the edition's other texts (``locales/zh_CN/*.yml``), of the book's Sphinx extensions
(the Chinese citation style's words), of Sphinx's own zh_CN messages (search and index pages), plus
printable ASCII and the common full-width punctuation. After a translation adds characters, run the
first command and commit the font; ``tests/test_cjk_font.py`` fails until then.

The source font is found with fontconfig (Debian: ``apt-get install fonts-noto-cjk``), or given with
``--source path/to/NotoSansCJK-Regular.ttc``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locales" / "zh_CN"
EXTENSIONS = ROOT / "book" / "_ext"
FONT = EXTENSIONS / "static" / "noto-sans-sc-book.woff2"
FAMILY = "Noto Sans CJK SC"  # the face of the source collection (.ttc) that is cut down
COMMAND = "python book/cjk_font.py"
ASCII = {chr(c) for c in range(0x20, 0x7F)}
PUNCTUATION = set("，。、；：？！…—–·（）《》〈〉「」『』【】〔〕“”‘’～　％＋－＝／＜＞")


def _shown(text: str) -> set[str]:
    """The characters of ``text`` a page can show (not control characters)."""
    return {c for c in text if unicodedata.category(c)[0] != "C" or c == "\u3000"}


def sphinx_messages() -> str:
    """Sphinx's own zh_CN translations (the search and index pages show some of them)."""
    import sphinx

    path = Path(sphinx.__file__).parent / "locale" / "zh_CN" / "LC_MESSAGES" / "sphinx.po"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def source_files() -> list[Path]:
    """The repository's files whose characters the Chinese edition can show."""
    files = sorted((LOCALE / "LC_MESSAGES").rglob("*.po")) + sorted(LOCALE.glob("*.yml"))
    # editions.py writes the glossary's introduction and the running-time sentences
    return files + sorted(EXTENSIONS.glob("*.py")) + [EXTENSIONS.parent / "editions.py"]


def edition_characters(files: Iterable[Path] | None = None) -> set[str]:
    """Every character the Chinese edition can show: its sources', ASCII and full-width punctuation."""
    chars = ASCII | PUNCTUATION | _shown(sphinx_messages())
    for path in source_files() if files is None else files:
        chars |= _shown(path.read_text(encoding="utf-8"))
    return chars


def font_characters(path: Path = FONT) -> set[str]:
    """The characters ``path`` (a WOFF2 font) has glyphs for."""
    from fontTools.ttLib import TTFont

    with TTFont(path) as font:
        return {chr(c) for c in font.getBestCmap()}


def missing_characters(path: Path = FONT) -> set[str]:
    """The characters the edition can show that the committed font lacks (all of them if there is no font)."""
    wanted = edition_characters()
    return wanted - font_characters(path) if path.exists() else wanted


def find_source_font() -> Path:
    """The Noto Sans CJK Regular collection, through fontconfig."""
    try:
        found = subprocess.run(
            ["fc-match", "--format=%{file}", f"{FAMILY}:style=Regular"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise RuntimeError(f"fc-match could not look up {FAMILY}: give the font with --source") from err
    if "NotoSansCJK" not in Path(found).name:
        raise RuntimeError(
            f"fontconfig has no {FAMILY} (it offered {found!r}): install it (Debian: apt-get install "
            "fonts-noto-cjk) or give the .ttc/.otf with --source"
        )
    return Path(found)


def write_subset(source: Path, characters: set[str], out: Path = FONT) -> None:
    """Write the face ``FAMILY`` of ``source`` cut down to ``characters``, as WOFF2, to ``out``."""
    from fontTools import subset
    from fontTools.ttLib import TTCollection, TTFont

    if source.suffix.lower() in {".ttc", ".otc"}:
        faces = TTCollection(source).fonts
        font = next((f for f in faces if f["name"].getBestFamilyName() == FAMILY), None)
        if font is None:
            raise ValueError(f"{source} has no face named {FAMILY!r}")
    else:
        font = TTFont(source)
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = []  # the Chinese characters need none; Latin text comes from the system's font
    options.drop_tables += ["vhea", "vmtx", "VORG"]  # horizontal text only
    options.hinting = False  # browsers scale the outlines themselves
    options.desubroutinize = True  # compresses better in WOFF2
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]  # keep the copyright and the licence
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(ord(c) for c in characters))
    subsetter.subset(font)
    out.parent.mkdir(parents=True, exist_ok=True)
    font.flavor = "woff2"
    font.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only list what the committed font lacks")
    parser.add_argument("--source", type=Path, help="the Noto Sans CJK font to cut down (default: fontconfig's)")
    args = parser.parse_args()
    if args.check:
        missing = missing_characters()
        if missing:
            print(f"{FONT.relative_to(ROOT)} lacks {len(missing)} characters: {''.join(sorted(missing))}")
            print(f"run: {COMMAND}")
            sys.exit(1)
        print(f"{FONT.relative_to(ROOT)} has every character the Chinese edition shows")
        return
    characters = edition_characters()
    write_subset(args.source or find_source_font(), characters)
    have = font_characters()
    print(f"{FONT.relative_to(ROOT)}: {len(have)} characters, {FONT.stat().st_size / 1024:.0f} KiB")
    if characters - have:
        print(f"the source font has no glyph for: {''.join(sorted(characters - have))}")


if __name__ == "__main__":
    main()

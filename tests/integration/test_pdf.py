"""The PDF editions, as ``book/pdf_editions.py`` builds them: read back with poppler's tools.

Run after building them::

    VAELIB_BOOK_PDF=_build/pdf python -m pytest tests/integration/test_pdf.py

Each edition (``vae-book.pdf``, ``vae-book-zh_CN.pdf``) must have a book's length, a table of contents,
every chapter and appendix page of ``_toc.yml`` under its title (the notebooks' first headings; in the
Chinese edition their translations from the catalogs, the API page in English), the figures of the
executed notebooks, the fonts it was set in embedded (a CJK font in the Chinese edition), and a LaTeX log
without a "Missing character": a glyph no font had, which shows as a blank in the PDF.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PDF = os.environ.get("VAELIB_BOOK_PDF")
if not PDF:
    pytest.skip("set VAELIB_BOOK_PDF to the built PDFs (e.g. _build/pdf) to run", allow_module_level=True)
PDF_DIR = Path(PDF).resolve()
EDITIONS = {"en": "vae-book", "zh_CN": "vae-book-zh_CN"}
PAGES = (100, 400)  # a sane length: the book has about 190 pages
MIN_IMAGES = 30  # the executed notebooks draw about 40 figures
CONTENTS = {"en": "Contents", "zh_CN": "目录"}
TOC_PAGES = 12  # the table of contents ends within the first pages

_spec = importlib.util.spec_from_file_location("editions", ROOT / "book" / "editions.py")
editions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(editions)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install poppler-utils (book/pdf_editions.py does)")
    return path


def _run(*command: str) -> str:
    return subprocess.run([_tool(command[0]), *command[1:]], capture_output=True, text=True, check=True).stdout


def _pdf(edition: str) -> Path:
    path = PDF_DIR / f"{EDITIONS[edition]}.pdf"
    assert path.exists(), f"{path} is missing: build it with book/pdf_editions.py"
    return path


def _squeeze(text: str) -> str:
    """Text to compare titles in: Unicode-normalised, typographic quotes and hyphens plain, no whitespace (a
    title may break over lines, and pdftotext puts spaces between Chinese characters or not)."""
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "‐": "-", "‑": "-", "−": "-"}))
    return re.sub(r"\s+", "", text)


def _plain(heading: str) -> str:
    """A MyST heading's text as typeset: no emphasis or code marks."""
    return re.sub(r"[*_`]", "", heading).strip()


def _pages() -> list[str]:
    """Every page of ``_toc.yml`` but the root (its title is the book's), in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [chapter["file"] for part in toc["parts"] for chapter in part["chapters"]]


def _first_heading(page: str) -> str:
    notebook = ROOT / f"{page}.ipynb"
    if notebook.exists():
        cells = json.loads(notebook.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = (ROOT / f"{page}.md").read_text()
    match = re.search(r"^# (.+)$", text, re.MULTILINE)
    assert match, f"{page} has no first heading"
    return match.group(1).strip()


def chapter_titles(edition: str) -> dict[str, str]:
    """Each page's title as the edition prints it: the Chinese from the catalogs (English where a page is not
    translated)."""
    titles = {}
    for page in _pages():
        english = _first_heading(page)
        title = english
        if edition != "en":
            catalog = editions.read_catalog(page)
            message = catalog.get(english) if catalog is not None else None
            if message is not None and message.string and not message.fuzzy:
                title = message.string
        titles[page] = _plain(title)
    return titles


@pytest.fixture(scope="module", params=list(EDITIONS))
def edition(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def text(edition) -> str:
    return _run("pdftotext", "-enc", "UTF-8", str(_pdf(edition)), "-")


def test_the_pdf_has_a_book_s_length(edition):
    info = _run("pdfinfo", str(_pdf(edition)))
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1))
    assert PAGES[0] <= pages <= PAGES[1], f"{pages} pages, expected {PAGES[0]} to {PAGES[1]}"


def test_every_chapter_is_in_the_pdf_under_its_title(edition, text):
    body = _squeeze(text)
    missing = [f"{page}: {title!r}" for page, title in chapter_titles(edition).items() if _squeeze(title) not in body]
    assert not missing, "chapter titles not found in the PDF's text:\n" + "\n".join(missing)


def test_the_table_of_contents_lists_every_chapter(edition):
    toc = _run("pdftotext", "-enc", "UTF-8", "-f", "1", "-l", str(TOC_PAGES), str(_pdf(edition)), "-")
    assert CONTENTS[edition].casefold() in toc.casefold(), f"no {CONTENTS[edition]!r} in the first {TOC_PAGES} pages"
    missing = [title for title in chapter_titles(edition).values() if _squeeze(title) not in _squeeze(toc)]
    assert not missing, f"the table of contents lacks {missing}"


def test_the_chinese_pdf_has_the_glossary_and_a_chinese_author_line():
    text = _run("pdftotext", "-enc", "UTF-8", str(_pdf("zh_CN")), "-")
    assert "术语表" in text and _squeeze("学习笔记的记号与本书的记号") in _squeeze(text)
    title_page = _run("pdftotext", "-enc", "UTF-8", "-f", "1", "-l", "1", str(_pdf("zh_CN")), "-")
    assert "vae-book 作者团队" in title_page, title_page
    assert "authors" not in title_page


def test_the_figures_are_embedded(edition):
    rows = _run("pdfimages", "-list", str(_pdf(edition))).splitlines()[2:]
    images = [row for row in rows if row.split()[2] == "image"]  # not their soft masks
    assert len(images) >= MIN_IMAGES, f"{len(images)} images in the PDF, expected at least {MIN_IMAGES}"


def test_both_editions_show_the_same_figures():
    counts = {}
    for edition in EDITIONS:
        rows = _run("pdfimages", "-list", str(_pdf(edition))).splitlines()[2:]
        counts[edition] = sum(row.split()[2] == "image" for row in rows)
    assert len(set(counts.values())) == 1, f"image counts differ between the editions: {counts}"


def test_the_fonts_are_embedded(edition):
    rows = _run("pdffonts", str(_pdf(edition))).splitlines()[2:]
    not_embedded = [row for row in rows if row.split()[-5] != "yes"]
    assert not not_embedded, f"fonts not embedded: {not_embedded}"
    if edition != "en":
        assert any("CJK" in row.split()[0] for row in rows), f"no CJK font embedded: {rows}"


def test_the_latex_log_has_no_missing_characters(edition):
    log = PDF_DIR / f"{EDITIONS[edition]}.log"
    assert log.exists(), f"{log} is missing: book/pdf_editions.py keeps each edition's LaTeX log beside its PDF"
    missing = sorted(
        {line.strip() for line in log.read_text(errors="replace").splitlines() if "Missing character" in line}
    )
    assert not missing, f"glyphs missing from the fonts ({log}):\n" + "\n".join(missing[:20])


def test_the_chinese_edition_is_in_chinese():
    text = _run("pdftotext", "-enc", "UTF-8", str(_pdf("zh_CN")), "-")
    cjk = len(re.findall(f"[{editions.CJK}]", text))
    assert cjk > len(text) / 10, f"only {cjk} CJK characters in {len(text)}"

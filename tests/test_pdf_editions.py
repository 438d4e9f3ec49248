"""The PDF editions' build script (``book/pdf_editions.py``): what it reads in a LaTeX log and source, and
how it marks the appendix. The build itself is checked by ``tests/integration/test_pdf.py``."""

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("pdf_editions", ROOT / "book" / "pdf_editions.py")
pdf_editions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pdf_editions)

# lines of an XeLaTeX log, written with max_print_line large enough that none is wrapped
LOG = """\
(./vae-book.aux)
Missing character: There is no σ (U+03C3) in font [FreeMono.otf]/OT:script=latn;language=dflt;mapping=tex-text;!
Overfull \\hbox (2.9pt too wide) in paragraph at lines 4835--4835
Missing character: There is no 中 (U+4E2D) in font [FreeSerif.otf]/OT:script=latn;language=dflt;mapping=tex-text;!
Missing character: There is no σ (U+03C3) in font [FreeMonoBold.otf]/OT:script=latn;language=dflt;!
Missing character: There is no ∇ in font cmr10!
"""


def test_missing_characters_are_read_from_the_log_with_the_fonts_that_lack_them():
    missing = pdf_editions.missing_characters(LOG)
    assert set(missing) == {"σ (U+03C3)", "中 (U+4E2D)", "∇ (U+2207)"}
    assert len(missing["σ (U+03C3)"]) == 2
    assert missing["∇ (U+2207)"] == {"cmr10"}


def test_a_log_without_missing_characters_gives_none():
    assert pdf_editions.missing_characters("(./vae-book.aux)\nOutput written on vae-book.pdf (188 pages).\n") == {}


def test_included_images_are_the_files_sphinx_s_latex_names():
    tex = (
        "\\noindent\\sphinxincludegraphics{{d871d71f}.png}\n"
        "\\sphinxincludegraphics[width=0.5\\linewidth]{{01_autoencoders_12_0}.png}\n"
        "\\includegraphics{other.png}\n"
    )
    assert pdf_editions.included_images(tex) == ["d871d71f.png", "01_autoencoders_12_0.png"]


TEX = "\\part{One}\n\\chapter{A}\n\\part{Two}\n\\chapter{B}\n\\part{附录}\n\\chapter{C}\n"


def test_the_appendix_mark_goes_before_the_appendix_part():
    marked = pdf_editions.mark_appendix(TEX, parts=3, appendix=2)
    assert marked == TEX.replace("\\part{附录}", "\\appendix\n\\part{附录}")


@pytest.mark.parametrize(("parts", "appendix"), [(4, 3), (3, 3), (3, -1)])
def test_a_source_whose_parts_do_not_match_the_table_of_contents_is_refused(parts, appendix):
    with pytest.raises(ValueError, match="part"):
        pdf_editions.mark_appendix(TEX, parts=parts, appendix=appendix)


def test_the_appendix_is_the_last_part_when_it_is_not_numbered():
    toc = {"parts": [{"caption": "A", "numbered": True}, {"caption": "Appendix", "numbered": False}]}
    assert pdf_editions.appendix_part(toc) == 1
    assert pdf_editions.appendix_part({"parts": [{"caption": "A", "numbered": True}]}) is None
    assert pdf_editions.appendix_part({"chapters": []}) is None


def test_the_book_s_table_of_contents_ends_with_its_appendix():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert pdf_editions.appendix_part(toc) == len(toc["parts"]) - 1


def test_pdf_names():
    assert pdf_editions.pdf_name("en") == "vae-book"
    assert pdf_editions.pdf_name("zh_CN") == "vae-book-zh_CN"
    with pytest.raises(ValueError, match="edition"):
        pdf_editions.pdf_name("fr")


def test_the_apt_command_installs_without_recommends():
    command = pdf_editions.apt_command(("texlive-xetex", "latexmk"), sudo=True)
    assert command == ["sudo", "apt-get", "install", "-y", "--no-install-recommends", "texlive-xetex", "latexmk"]
    assert pdf_editions.apt_command(("latexmk",))[0] == "apt-get"

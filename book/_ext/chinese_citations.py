"""Author-year citations written the Chinese way, for the Chinese edition: ``author_year_zh``.

sphinxcontrib-bibtex's ``author_year`` style writes ``{cite:t}`` as "Kingma and Welling (2013)" and
``{cite:p}`` as "(Kingma and Welling, 2013)". This style, a pybtex plugin of sphinxcontrib-bibtex's
``sphinxcontrib.bibtex.style.referencing`` group, writes them as

- ``{cite:t}``: "Kingma 和 Welling（2013）", "Burda 等人（2016）";
- ``{cite:p}``: "（Kingma 和 Welling，2013）", "（Burda 等人，2016）", several references separated
  by "；" (and those of one ``{cite:t}`` by "、");

with full-width brackets and punctuation, "和" between two authors, "等人" (et al.) after the first of
three or more, and "、" between the authors when all are named. ``book/editions.py`` selects it for the
Chinese edition only (``bibtex_reference_style: author_year_zh``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sphinx.application import Sphinx
from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing import BracketStyle, PersonStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

STYLE = "author_year_zh"


def _brackets() -> BracketStyle:
    return BracketStyle(left="（", right="）", sep="；", sep2="；", last_sep="；")


def _textual_brackets() -> BracketStyle:  # between the references of one {cite:t}: "A（2013）、B（2014）"
    return BracketStyle(left="（", right="）", sep="、", sep2="、", last_sep="、")


def _authors() -> PersonStyle:
    return PersonStyle(sep="、", sep2=" 和 ", last_sep=" 和 ", other=" 等人")


@dataclass
class ChineseAuthorYearReferenceStyle(AuthorYearReferenceStyle):
    """Author-year references with Chinese brackets, separators and "等人"."""

    bracket_textual: BracketStyle = field(default_factory=_textual_brackets)
    bracket_parenthetical: BracketStyle = field(default_factory=_brackets)
    bracket_author: BracketStyle = field(default_factory=_brackets)
    bracket_label: BracketStyle = field(default_factory=_brackets)
    bracket_year: BracketStyle = field(default_factory=_brackets)
    person: PersonStyle = field(default_factory=_authors)
    author_year_sep: str = "，"
    text_reference_sep: str = ""
    post_text_sep: str = "，"


register_plugin("sphinxcontrib.bibtex.style.referencing", STYLE, ChineseAuthorYearReferenceStyle)


def setup(app: Sphinx) -> dict[str, object]:
    return {"parallel_read_safe": True, "parallel_write_safe": True}

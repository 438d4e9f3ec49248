"""The Chinese edition's citation style (``book/_ext/chinese_citations.py``): the text it writes for one,
two and three or more authors, textual (``{cite:t}``) and parenthetical (``{cite:p}``), next to what the
English edition's ``author_year`` writes for the same references."""

import importlib.util
import sys
import types
from pathlib import Path

import pytest

pytest.importorskip("sphinxcontrib.bibtex")
pybtex_docutils = pytest.importorskip("pybtex_docutils")
from pybtex.database import Entry, Person  # noqa: E402
from pybtex.plugin import find_plugin  # noqa: E402
from sphinxcontrib.bibtex.plugin import find_plugin as find_bibtex_plugin  # noqa: E402
from sphinxcontrib.bibtex.style.referencing import format_references  # noqa: E402
from sphinxcontrib.bibtex.style.template import SphinxReferenceInfo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("chinese_citations", ROOT / "book" / "_ext" / "chinese_citations.py")
chinese_citations = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = chinese_citations  # its dataclasses look their module up
_spec.loader.exec_module(chinese_citations)

KINGMA = ("kingma", ["Kingma, Diederik P."], "2013")
KINGMA_WELLING = ("kingma2013", ["Kingma, Diederik P.", "Welling, Max"], "2013")
BURDA = ("burda2016", ["Burda, Yuri", "Grosse, Roger", "Salakhutdinov, Ruslan"], "2016")
REZENDE = ("rezende2014", ["Rezende, Danilo J.", "Mohamed, Shakir", "Wierstra, Daan"], "2014")


def cite(style_name: str, role: str, *references: tuple) -> str:
    """The text ``style_name`` writes for ``{cite:<role>}`` of ``references`` (key, authors, year)."""
    style = find_bibtex_plugin("sphinxcontrib.bibtex.style.referencing", style_name)()
    formatting = find_plugin("pybtex.style.formatting", "plain")()
    builder = types.SimpleNamespace(name="html", get_relative_uri=lambda source, target: "references.html")
    info = SphinxReferenceInfo(builder, "book/intro", "book/references", "id1", None, "", "")
    entries = []
    for key, authors, year in references:
        entry = Entry("article", fields={"title": "A title", "journal": "A journal", "year": year})
        entry.persons["author"] = [Person(name) for name in authors]
        entry.key = key
        entries.append((entry, formatting.format_entry(key, entry), info))
    nodes = format_references(style, role, entries).render(pybtex_docutils.Backend())
    return "".join(node.astext() for node in nodes)


@pytest.mark.parametrize(
    ("role", "references", "english", "chinese"),
    [
        ("t", [KINGMA], "Kingma [2013]", "Kingma（2013）"),
        ("p", [KINGMA], "[Kingma, 2013]", "（Kingma，2013）"),
        ("t", [KINGMA_WELLING], "Kingma and Welling [2013]", "Kingma 和 Welling（2013）"),
        ("p", [KINGMA_WELLING], "[Kingma and Welling, 2013]", "（Kingma 和 Welling，2013）"),
        ("t", [BURDA], "Burda et al. [2016]", "Burda 等人（2016）"),
        ("p", [BURDA], "[Burda et al., 2016]", "（Burda 等人，2016）"),
        ("ts", [BURDA], "Burda, Grosse, and Salakhutdinov [2016]", "Burda、Grosse 和 Salakhutdinov（2016）"),
        (
            "p",
            [KINGMA_WELLING, REZENDE],
            "[Kingma and Welling, 2013, Rezende et al., 2014]",
            "（Kingma 和 Welling，2013；Rezende 等人，2014）",
        ),
        (
            "t",
            [KINGMA_WELLING, REZENDE],
            "Kingma and Welling [2013], Rezende et al. [2014]",
            "Kingma 和 Welling（2013）、Rezende 等人（2014）",
        ),
    ],
)
def test_citations_read_the_chinese_way_and_the_english_ones_do_not_change(role, references, english, chinese):
    assert cite("author_year", role, *references) == english
    assert cite(chinese_citations.STYLE, role, *references) == chinese

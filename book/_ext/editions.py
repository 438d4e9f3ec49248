"""The book's two editions, English and Chinese (中文), built from the same pages: what Sphinx needs of them.

- **A link on every page to the same page in the other edition.** The editions have the same page
  names, the English one at the site's root and the Chinese one under ``zh_CN/``, so the link is the
  page's own path below the other edition's root. ``edition_switch`` in the Sphinx configuration names
  that root relative to this edition's root (``"zh_CN/"`` from the English edition, ``"../"`` from the
  Chinese one), the link's text and its language. Empty (the default): no link.
- **The table of contents' part captions are translated too.** jupyter-book inserts them into the root
  page after Sphinx's translation step, so they are looked up in that page's catalog afterwards.
- **Chinese search that finds what a reader types.** Sphinx splits the Chinese edition's text into words
  with ``jieba`` when it builds the search index, but the browser cannot run ``jieba`` on a query, and
  its splitter keeps a run of Chinese characters as one term, which is rarely a word of the index
  (重参数化 is indexed as 重, 参数 and 化). So every pair of neighbouring Chinese characters is indexed
  as well, and a query's Chinese is split into the same pairs.
- **Equations are not messages to translate.** A display equation is the same in both languages, so
  its ``math_block`` is marked untranslatable before Sphinx's translation step; Chinese inside
  mathematics only appears within ``\\text{}`` of an inline formula, and never has to.

``book/editions.py`` builds both editions and checks the translations.
"""

from __future__ import annotations

import html
import re
from typing import Any

from docutils import nodes
from sphinx import addnodes, locale
from sphinx.application import Sphinx
from sphinx.search.zh import SearchChinese
from sphinx.transforms import SphinxTransform
from sphinx.util.i18n import docname_to_domain

HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


class ChineseSearch(SearchChinese):
    """Sphinx's Chinese search (``jieba`` words) with every pair of neighbouring Chinese characters too."""

    js_splitter_code = r"""
function splitQuery(query) {
  const terms = [];
  for (const part of query.split(/[^\p{Letter}\p{Number}_]+/gu)) {
    for (const run of part.match(/[\u3400-\u9fff\uf900-\ufaff]+|[^\u3400-\u9fff\uf900-\ufaff]+/gu) || []) {
      if (!/[\u3400-\u9fff\uf900-\ufaff]/u.test(run) || run.length < 2) { terms.push(run); continue; }
      for (let i = 0; i + 1 < run.length; i++) terms.push(run.slice(i, i + 2));
    }
  }
  return terms;
}
"""

    def split(self, input: str) -> list[str]:
        pairs = [run[i : i + 2] for run in HAN.findall(input) for i in range(len(run) - 1)]
        return super().split(input) + pairs


class KeepEquations(SphinxTransform):
    """Mark display equations untranslatable, before ``sphinx.transforms.i18n.Locale`` (priority 20)."""

    default_priority = 10

    def apply(self, **kwargs: Any) -> None:
        for node in self.document.findall(nodes.math_block):
            node["translatable"] = False


class TranslateTocCaptions(SphinxTransform):
    """Translate toctree captions inserted by ``sphinx_external_toc`` (its transform has priority 100)."""

    default_priority = 101

    def apply(self, **kwargs: Any) -> None:
        if not self.config.language or self.config.language == "en":
            return
        dirs = [str(self.env.srcdir / d) for d in self.config.locale_dirs]
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        catalog, found = locale.init(dirs, self.config.language, domain)
        if not found:
            return
        for toctree in self.document.findall(addnodes.toctree):
            if toctree.get("caption"):
                toctree["caption"] = toctree["rawcaption"] = catalog.gettext(toctree["caption"])


def _switch_link(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    switch = app.config.edition_switch
    if not switch or "body" not in context:
        return
    depth = pagename.count("/")  # "book/02_lower_bound" is one folder below this edition's root
    href = "../" * depth + switch["root"] + pagename + ".html"
    link = (
        f'<p class="edition-switch" style="text-align: right; margin: 0">'
        f'<a href="{html.escape(href)}" hreflang="{switch["lang"]}" lang="{switch["lang"]}">'
        f"{html.escape(switch['label'])}</a></p>\n"
    )
    context["body"] = link + context["body"]


def setup(app: Sphinx) -> dict[str, object]:
    app.add_config_value("edition_switch", {}, "html", types=[dict])
    app.add_search_language(ChineseSearch)
    app.add_transform(KeepEquations)
    app.add_transform(TranslateTocCaptions)
    app.connect("html-page-context", _switch_link)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
